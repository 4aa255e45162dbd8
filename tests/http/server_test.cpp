// The HTTP server on a real loopback socket (port 0): routes reach the Router, errors come
// back as JSON with the right status, malformed and oversized input closes only that
// connection, and stop() ends cleanly with clients still connected.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "http/server.hpp"

namespace callrelay::http {
namespace {

constexpr const char* kKey = "key-0123456789abcdef";

/// A blocking TCP client with a receive timeout (a hang fails the test instead of stalling it).
class Client {
 public:
  explicit Client(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  /// Everything until the server closes the connection (or the timeout).
  std::string read_all() {
    std::string out;
    char buf[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;  // SO_RCVTIMEO: never restarted (signal(7))
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string roundtrip(uint16_t port, const std::string& request) {
  Client c(port);
  EXPECT_TRUE(c.connected());
  c.send(request);
  return c.read_all();
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ready_.set_listeners_bound(true);
    HttpConfig cfg;
    cfg.listen = *stun::Endpoint::parse("127.0.0.1:0");
    cfg.max_request_bytes = 2048;
    server_ = std::make_unique<HttpServer>(cfg, router_, [](core::TimeMs) {});
    port_ = server_->local_endpoint().port;
    ASSERT_NE(port_, 0);
    server_->start();
  }

  core::Authenticator auth_{core::AuthConfig{"callrelay", {"s"}, ':', {}}};
  ApiKeys keys_{{ApiKey{"k", kKey, 3600, {}}}};
  CredentialApi api_{ApiConfig{{}, {}, "", 3600}, {"turn:127.0.0.1:3478?transport=udp"}, ':',
                     auth_, keys_};
  Readiness ready_;
  Router router_{2048, api_, ready_, [](core::TimeMs) { return std::string("x_total 1\n"); }};
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ServerTest, ServesRoutes) {
  std::string r = roundtrip(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  r = roundtrip(port_, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
  EXPECT_NE(r.find("x_total 1"), std::string::npos);
  r = roundtrip(port_,
                std::string("GET /api/v1/turn/credentials?service=turn&username=a HTTP/1.1\r\n"
                            "Host: x\r\nAuthorization: Bearer ") +
                    kKey + "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_NE(r.find("\"iceServers\""), std::string::npos);
  r = roundtrip(port_,
                "POST /api/v1/turn/credentials HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 24\r\n"
                "Connection: close\r\n\r\nservice=turn&username=a&");
  EXPECT_EQ(r.rfind("HTTP/1.1 401", 0), 0u) << r;
  EXPECT_NE(r.find("{\"error\":\"missing API key"), std::string::npos) << r;
  r = roundtrip(port_, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << r;
}

TEST_F(ServerTest, OversizedAndMalformedRequestsOnlyCloseTheirConnection) {
  const std::string body(3000, 'a');
  std::string r =
      roundtrip(port_, "POST /api/v1/turn/revoke HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0u) << r;
  // Far above the limit: cut off without reading the body.
  r = roundtrip(
      port_, "POST /api/v1/turn/revoke HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n");
  EXPECT_EQ(r.find("200"), std::string::npos) << r;
  r = roundtrip(port_, "\x16\x03\x01 garbage \r\n\r\n");
  EXPECT_EQ(r.find("HTTP/1.1 200"), std::string::npos) << r;
  // An idle client holding a connection open does not block others.
  Client idle(port_);
  ASSERT_TRUE(idle.connected());
  idle.send("GET /healthz HTTP/1.1\r\n");
  r = roundtrip(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  server_->stop();  // with the idle connection still open
}

TEST(HttpServer, BindFailureNamesTheAddress) {
  core::Authenticator auth(core::AuthConfig{});
  ApiKeys keys({});
  CredentialApi api(ApiConfig{}, {}, ':', auth, keys);
  Readiness ready;
  Router router(1024, api, ready, {});
  HttpConfig cfg;
  cfg.listen = *stun::Endpoint::parse("127.0.0.1:0");
  HttpServer first(cfg, router, {});
  cfg.listen = first.local_endpoint();
  try {
    HttpServer second(cfg, router, {});
    FAIL() << "a second server bound the same port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(cfg.listen.to_string()), std::string::npos) << e.what();
  }
}

TEST(HttpServer, MissingTlsFilesAreReported) {
  core::Authenticator auth(core::AuthConfig{});
  ApiKeys keys({});
  CredentialApi api(ApiConfig{}, {}, ':', auth, keys);
  Readiness ready;
  Router router(1024, api, ready, {});
  HttpConfig cfg;
  cfg.listen = *stun::Endpoint::parse("127.0.0.1:0");
  cfg.tls = TlsFiles{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  try {
    HttpServer s(cfg, router, {});
    FAIL() << "started without its certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("http.tls.cert"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace callrelay::http
