// WebSockets on the real listener over loopback (port 0), through ws_test_client: upgrades
// accepted and refused by the endpoint, echo, sends from another thread, the refusals (binary
// 1003, oversized 1009) with the server still serving, keepalive dropping a silent client, the
// thread pool answering /metrics while a handler blocks, and more sockets at once than the
// HTTP connection limit.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "http/server.hpp"
#include "tests/http/ws_test_client.hpp"

namespace callrelay::http {
namespace {

using test::WsTestClient;
constexpr auto kWait = std::chrono::seconds(10);

/// Accepts "?token=good", echoes text as "echo:TEXT", closes on "close-me"; records every
/// open and close per session.
class EchoEndpoint : public WsEndpoint {
 public:
  std::variant<Accepted, Response> on_upgrade(const Request& req) override {
    const std::lock_guard lock(m_);
    if (req.query != "token=good") return json_error(401, "bad token");
    if (accepted_ - closed_ >= capacity) return json_error(503, "too many connections");
    ++accepted_;
    return Accepted{++last_};
  }
  void on_open(uint64_t s, std::shared_ptr<WsConnection> c) override {
    const std::lock_guard lock(m_);
    conns_[s] = std::move(c);
    cv_.notify_all();
  }
  void on_message(uint64_t s, std::string text) override {
    std::shared_ptr<WsConnection> c;
    {
      const std::lock_guard lock(m_);
      c = conns_[s];
    }
    if (text == "close-me") {
      c->close(4000, "bye");
    } else {
      c->send_text("echo:" + text);
    }
  }
  void on_close(uint64_t s) override {
    const std::lock_guard lock(m_);
    ++closes_[s];
    ++closed_;
    cv_.notify_all();
  }
  size_t max_message_bytes() const override { return 1024; }

  std::shared_ptr<WsConnection> wait_open(uint64_t s) {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, kWait, [&] { return conns_.count(s) > 0; });
    return conns_.count(s) ? conns_[s] : nullptr;
  }
  bool wait_closed(size_t n) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, kWait, [&] { return closed_ >= n; });
  }
  /// Every session that closed closed exactly once.
  bool closes_once() {
    const std::lock_guard lock(m_);
    for (const auto& [s, n] : closes_)
      if (n != 1) return false;
    return true;
  }
  size_t capacity = 1000;

 private:
  std::mutex m_;
  std::condition_variable cv_;
  uint64_t last_ = 0;
  size_t accepted_ = 0;
  size_t closed_ = 0;
  std::map<uint64_t, std::shared_ptr<WsConnection>> conns_;
  std::map<uint64_t, int> closes_;
};

std::string http_get(uint16_t port, const std::string& path) {
  WsTestClient c(port);
  c.send_raw("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto h = c.read_http_response();
  return h.head + h.body;
}

class WsServerTest : public ::testing::Test {
 protected:
  void start(HttpConfig cfg = {}) {
    cfg.listen = *stun::Endpoint::parse("127.0.0.1:0");
    router_.set_websocket("/ws", &endpoint_);
    router_.add_route("/block", [this](const Request&, core::TimeMs) -> std::optional<Response> {
      entered_.set_value();
      release_.get_future().wait();
      return json_error(200, "released");
    });
    server_ = std::make_unique<HttpServer>(cfg, router_, [](core::TimeMs) {});
    port_ = server_->local_endpoint().port;
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stop();
    EXPECT_TRUE(endpoint_.closes_once());
  }

  core::Authenticator auth_{core::AuthConfig{}};
  ApiKeys keys_{{}};
  CredentialApi api_{ApiConfig{}, {}, ':', auth_, keys_};
  Readiness ready_;
  Router router_{65536, api_, ready_, [](core::TimeMs) { return std::string("x_total 1\n"); }};
  EchoEndpoint endpoint_;
  std::promise<void> entered_, release_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(WsServerTest, UpgradeAcceptedAndRefusedWithTheEndpointsAnswer) {
  start();
  WsTestClient bad(port_);
  const auto refused = bad.handshake("/ws?token=bad");
  EXPECT_EQ(refused.status, 401) << refused.head;
  EXPECT_EQ(refused.body, "{\"error\":\"bad token\"}\n");
  endpoint_.capacity = 0;
  WsTestClient full(port_);
  EXPECT_EQ(full.handshake("/ws?token=good").status, 503);
  endpoint_.capacity = 1000;
  WsTestClient ok(port_);
  const auto accepted = ok.handshake("/ws?token=good");
  EXPECT_EQ(accepted.status, 101) << accepted.head;
  EXPECT_NE(accepted.head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            std::string::npos)
      << accepted.head;
  WsTestClient old_version(port_);
  EXPECT_EQ(old_version.handshake("/ws?token=good", "", "8").status, 426);
}

TEST_F(WsServerTest, TextEchoPingAndCloseHandshake) {
  start();
  WsTestClient c(port_);
  ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
  c.send_text("hi");
  auto m = c.read_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->opcode, 0x1);
  EXPECT_EQ(m->payload, "echo:hi");
  c.send_frame(0x1, "hel", /*fin=*/false);
  c.send_frame(0x9, "p1");
  c.send_frame(0x0, "lo");
  auto pong = c.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 0xA);
  EXPECT_EQ(pong->payload, "p1");
  m = c.read_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "echo:hello");
  c.send_close(1000);
  const auto closed = c.read_message();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->opcode, 0x8);
  EXPECT_EQ(closed->close_code(), 1000);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(endpoint_.wait_closed(1));
}

TEST_F(WsServerTest, SendAndCloseFromAnotherThread) {
  start();
  WsTestClient c(port_);
  ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
  const auto conn = endpoint_.wait_open(1);
  ASSERT_TRUE(conn);
  std::thread([conn] { conn->send_text("from another thread"); }).join();
  auto m = c.read_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "from another thread");
  // Many sends at once (gathered into fewer writes) arrive whole and in order.
  std::thread([conn] {
    for (int i = 0; i < 1000; ++i) conn->send_text(std::to_string(i) + std::string(i % 300, 'x'));
  }).join();
  for (int i = 0; i < 1000; ++i) {
    m = c.read_message();
    ASSERT_TRUE(m) << i;
    ASSERT_EQ(m->payload, std::to_string(i) + std::string(i % 300, 'x'));
  }
  std::thread([conn] { conn->close(4001, "done"); }).join();
  m = c.read_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->opcode, 0x8);
  EXPECT_EQ(m->close_code(), 4001);
  EXPECT_TRUE(endpoint_.wait_closed(1));
  conn->send_text("after close");  // harmless
  conn->close(1000, "again");
  c.send_close(4001);
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(WsServerTest, BinaryIsRefusedWith1003) {
  start();
  WsTestClient c(port_);
  ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
  c.send_frame(0x2, "\x01\x02");
  const auto f = c.read_message();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x8);
  EXPECT_EQ(f->close_code(), 1003);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(endpoint_.wait_closed(1));
}

TEST_F(WsServerTest, OversizedIs1009AndTheServerKeepsServing) {
  start();
  {
    // Declares 2^40 bytes and sends none: refused on the header.
    WsTestClient c(port_);
    ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
    c.send_frame(0x1, "", true, uint64_t{1} << 40);
    const auto f = c.read_message();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->close_code(), 1009);
    EXPECT_TRUE(c.wait_closed());
  }
  {
    WsTestClient c(port_);
    ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
    c.send_frame(0x1, std::string(600, 'a'), false);
    c.send_frame(0x0, std::string(600, 'a'));
    const auto f = c.read_message();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->close_code(), 1009);
  }
  WsTestClient c(port_);
  ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
  c.send_text(std::string(1000, 'b'));
  const auto m = c.read_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->payload, "echo:" + std::string(1000, 'b'));
  EXPECT_EQ(http_get(port_, "/healthz").rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(WsServerTest, MetricsAnsweredWhileAHandlerBlocksAnotherThread) {
  start();  // two threads by default
  std::thread blocked([this] { http_get(port_, "/block"); });
  entered_.get_future().wait();
  // With a single thread this request would wait behind /block (and time out).
  const std::string r = http_get(port_, "/metrics");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_NE(r.find("x_total 1"), std::string::npos);
  release_.set_value();
  blocked.join();
}

TEST_F(WsServerTest, SilentClientIsDropped) {
  HttpConfig cfg;
  cfg.ws_ping_interval = std::chrono::milliseconds(50);
  cfg.ws_idle_timeout = std::chrono::milliseconds(200);
  start(cfg);
  WsTestClient c(port_);
  ASSERT_EQ(c.handshake("/ws?token=good").status, 101);
  // Read pings without answering them: the server gives up on the client.
  std::optional<WsTestClient::Frame> f;
  int pings = 0;
  while ((f = c.read_frame()) && f->opcode == 0x9) ++pings;
  EXPECT_GE(pings, 1);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x8);
  EXPECT_EQ(f->close_code(), 1001);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(endpoint_.wait_closed(1));
}

TEST_F(WsServerTest, ThreeHundredWebSocketsAboveTheHttpConnectionLimit) {
  HttpConfig cfg;
  cfg.max_connections = 64;  // WebSockets leave the HTTP connection count once upgraded
  start(cfg);
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 300; ++i) {
    clients.push_back(std::make_unique<WsTestClient>(port_));
    ASSERT_EQ(clients.back()->handshake("/ws?token=good").status, 101) << i;
  }
  EXPECT_EQ(server_->websockets(), 300u);
  for (size_t i = 0; i < clients.size(); ++i) clients[i]->send_text(std::to_string(i));
  for (size_t i = 0; i < clients.size(); ++i) {
    const auto m = clients[i]->read_message();
    ASSERT_TRUE(m) << i;
    EXPECT_EQ(m->payload, "echo:" + std::to_string(i));
  }
  // Stopping the server ends every socket, each reported closed once.
  server_->stop();
  EXPECT_TRUE(endpoint_.wait_closed(300));
  EXPECT_EQ(server_->websockets(), 0u);
}

}  // namespace
}  // namespace callrelay::http
