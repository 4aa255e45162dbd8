// The listener's limits on real loopback sockets from distinct 127.0.0.x source addresses:
// 3,000 connections from one address that never finish their request head cannot keep another
// address from /metrics, /healthz and /readyz; silent connections from many addresses are
// evicted (oldest first) for a real request; a slow head is closed at its deadline; kept-alive
// connections serve several requests; signaling WebSockets have their own per-address and
// total limits. Every refusal is counted in LimitCounters. No timing is asserted: conditions
// are polled with generous limits and durations only reported.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/server.hpp"

namespace callrelay::http {
namespace {

using base::Limit;
using Clock = std::chrono::steady_clock;
constexpr auto kPatience = std::chrono::seconds(30);

/// A blocking TCP client from a chosen loopback source address, with a receive timeout.
class Client {
 public:
  Client(const char* source, uint16_t port, int timeout_s = 10)
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    if (fd_ < 0) return;
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &from.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  /// One response: the head, then Content-Length bytes of body. Empty on EOF or timeout.
  std::string read_response() {
    while (buf_.find("\r\n\r\n") == std::string::npos)
      if (!fill()) return {};
    const size_t head_end = buf_.find("\r\n\r\n") + 4;
    size_t length = 0;
    const size_t cl = buf_.find("Content-Length: ");
    if (cl != std::string::npos && cl < head_end) length = std::stoul(buf_.substr(cl + 16));
    while (buf_.size() < head_end + length)
      if (!fill()) return {};
    std::string out = buf_.substr(0, head_end + length);
    buf_.erase(0, head_end + length);
    return out;
  }
  /// Whether the server ended the connection (EOF or reset) before the receive timeout.
  bool closed_by_server() {
    char c;
    while (true) {
      const ssize_t n = ::recv(fd_, &c, 1, 0);
      if (n == 0) return true;
      if (n < 0 && errno == EINTR) continue;  // SO_RCVTIMEO: never restarted (signal(7))
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  bool fill() {
    char tmp[4096];
    ssize_t n = 0;
    do {
      n = ::recv(fd_, tmp, sizeof tmp, 0);
    } while (n < 0 && errno == EINTR);  // SO_RCVTIMEO: never restarted (signal(7))
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_;
  bool connected_ = false;
  std::string buf_;
};

std::string get(const char* source, uint16_t port, const std::string& path) {
  Client c(source, port);
  if (!c.connected()) return "not connected";
  c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  return c.read_response();
}

bool eventually(const std::function<bool()>& cond) {
  const auto until = Clock::now() + kPatience;
  while (Clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

/// Raises the soft descriptor limit to the hard one; false (the test skips) when even that
/// is below `needed`.
bool enough_descriptors(rlim_t needed) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur >= needed;
}

/// Accepts every upgrade on /ws; limits set by the test.
class OpenEndpoint : public WsEndpoint {
 public:
  std::variant<Accepted, Response> on_upgrade(const Request&) override { return Accepted{++last_}; }
  void on_open(uint64_t, std::shared_ptr<WsConnection>) override {}
  void on_message(uint64_t, std::string) override {}
  void on_close(uint64_t) override {}
  size_t max_message_bytes() const override { return 1024; }
  WsLimits limits() const override { return limits_; }
  WsLimits limits_{2, 3};

 private:
  std::atomic<uint64_t> last_{0};
};

class ServerLimitsTest : public ::testing::Test {
 protected:
  /// Starts the server with cfg_ (the defaults unless the test changed them).
  void start() {
    ready_.set_listeners_bound(true);
    cfg_.listen = *stun::Endpoint::parse("127.0.0.1:0");
    router_.set_websocket("/ws", &endpoint_);
    server_ = std::make_unique<HttpServer>(cfg_, router_, [](core::TimeMs) {}, &counters_);
    port_ = server_->local_endpoint().port;
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
  }

  core::Authenticator auth_{core::AuthConfig{}};
  ApiKeys keys_{{}};
  CredentialApi api_{ApiConfig{}, {}, ':', auth_, keys_};
  Readiness ready_;
  Router router_{65536, api_, ready_, [](core::TimeMs) { return std::string("x_total 1\n"); }};
  OpenEndpoint endpoint_;
  base::LimitCounters counters_;
  HttpConfig cfg_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ServerLimitsTest, ThreeThousandSlowClientsFromOneAddressDoNotLockOutAnother) {
  constexpr size_t kSlow = 3000;
  if (!enough_descriptors(kSlow + 500))
    GTEST_SKIP() << "RLIMIT_NOFILE hard limit below " << kSlow + 500
                 << ": cannot hold 3,000 connections (raise it with ulimit -Hn)";
  start();  // the defaults: 32 per address, 1024 in total, 10 s head deadline
  const auto t0 = Clock::now();
  std::vector<std::unique_ptr<Client>> slow;
  for (size_t i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<Client>("127.0.0.2", port_));
    ASSERT_TRUE(slow.back()->connected()) << i;
    slow.back()->send("GET /metrics HTTP/1.1\r\nHost: x\r\n");  // never finished
  }
  const auto opened = Clock::now();
  for (const char* path : {"/metrics", "/healthz", "/readyz"}) {
    const std::string r = get("127.0.0.3", port_, path);
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << path << ": " << r;
  }
  const auto served = Clock::now();
  EXPECT_TRUE(eventually([&] { return counters_.hits(Limit::kHttpPerAddress) == kSlow - 32; }))
      << counters_.hits(Limit::kHttpPerAddress);
  EXPECT_EQ(counters_.hits(Limit::kHttpTotal), 0u);
  // The other address's connections close on the client side first: wait until the server has
  // seen them go; what stays open is the slow address's share.
  EXPECT_TRUE(eventually([&] { return server_->connections() <= 32u; })) << server_->connections();
  using std::chrono::duration_cast;
  using ms = std::chrono::milliseconds;
  std::cout << "[ info ] 3000 slow connections opened in "
            << duration_cast<ms>(opened - t0).count() << " ms; /metrics, /healthz, /readyz from "
            << "another address answered in " << duration_cast<ms>(served - opened).count()
            << " ms\n";
}

TEST_F(ServerLimitsTest, SilentConnectionsFromManyAddressesGiveWayToARequest) {
  cfg_.max_connections = 64;
  cfg_.max_connections_per_address = 4;
  start();
  std::vector<std::unique_ptr<Client>> silent;
  for (int host = 0; host < 16; ++host) {
    const std::string ip = "127.0.1." + std::to_string(host + 1);
    for (int i = 0; i < 4; ++i) {
      silent.push_back(std::make_unique<Client>(ip.c_str(), port_));
      ASSERT_TRUE(silent.back()->connected());
    }
    // Accepted in the order they connected, so the first client waited longest.
    ASSERT_TRUE(eventually([&] { return server_->connections() == silent.size(); }));
  }
  const std::string r = get("127.0.0.3", port_, "/metrics");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_GE(counters_.hits(Limit::kHttpTotal), 1u);
  EXPECT_TRUE(silent.front()->closed_by_server());
  EXPECT_LE(server_->connections(), 64u);
}

TEST_F(ServerLimitsTest, SlowHeadClosedAtItsDeadlineIdleKeepAliveAtItsOwn) {
  cfg_.header_timeout = std::chrono::milliseconds(300);
  cfg_.idle_timeout = std::chrono::milliseconds(300);
  start();
  Client slow("127.0.0.2", port_);
  ASSERT_TRUE(slow.connected());
  slow.send("GET /healthz HTTP/1.1\r\nHost:");
  EXPECT_TRUE(slow.closed_by_server());
  EXPECT_TRUE(eventually([&] { return counters_.hits(Limit::kHttpSlowHeaders) == 1; }));
  // Kept alive: two requests on one connection, then the idle deadline ends it (not counted
  // as a slow head).
  Client kept("127.0.0.3", port_);
  ASSERT_TRUE(kept.connected());
  for (const char* path : {"/healthz", "/metrics"}) {
    kept.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string r = kept.read_response();
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
    EXPECT_NE(r.find("Connection: keep-alive"), std::string::npos) << r;
  }
  EXPECT_TRUE(kept.closed_by_server());
  EXPECT_EQ(counters_.hits(Limit::kHttpSlowHeaders), 1u);
}

std::string upgrade(Client& c) {
  c.send(
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return c.read_response();
}

TEST_F(ServerLimitsTest, WebSocketsPerAddressAndInTotal) {
  start();
  std::vector<std::unique_ptr<Client>> ws;
  auto open_from = [&](const char* ip) {
    ws.push_back(std::make_unique<Client>(ip, port_));
    return upgrade(*ws.back());
  };
  EXPECT_EQ(open_from("127.0.0.2").rfind("HTTP/1.1 101", 0), 0u);
  EXPECT_EQ(open_from("127.0.0.2").rfind("HTTP/1.1 101", 0), 0u);
  EXPECT_EQ(open_from("127.0.0.2").rfind("HTTP/1.1 429", 0), 0u);
  EXPECT_EQ(open_from("127.0.0.3").rfind("HTTP/1.1 101", 0), 0u);
  EXPECT_EQ(open_from("127.0.0.4").rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_EQ(counters_.hits(Limit::kWsPerAddress), 1u);
  EXPECT_EQ(counters_.hits(Limit::kWsTotal), 1u);
  EXPECT_EQ(server_->websockets(), 3u);
  // WebSockets left the HTTP count; the HTTP listener still serves that address.
  EXPECT_EQ(get("127.0.0.2", port_, "/healthz").rfind("HTTP/1.1 200", 0), 0u);
  ws.front().reset();  // one from 127.0.0.2 ends: its slot comes back
  ASSERT_TRUE(eventually([&] { return server_->websockets() == 2; }));
  EXPECT_EQ(open_from("127.0.0.4").rfind("HTTP/1.1 101", 0), 0u);
}

}  // namespace
}  // namespace callrelay::http
