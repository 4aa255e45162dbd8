// The HTTP client of `callrelay ctl` against a scripted loopback server: the request it
// sends, the answer it reads, and each kind of failure (refused, silent, not HTTP).
#include "app/ctl_http.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace callrelay::app {
namespace {

using namespace std::chrono_literals;

/// A loopback TCP listener that takes one connection, reads one request head and body and
/// answers `answer` (nothing at all when `silent`, until the client gives up).
class ScriptedServer {
 public:
  ScriptedServer(std::string answer, bool silent = false)
      : answer_(std::move(answer)), silent_(silent) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  Url url() const { return Url{false, "127.0.0.1", port_}; }
  /// What the client sent (complete once http_call returned).
  const std::string& request() const { return request_; }

 private:
  void serve() {
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    char buf[4096];
    // Read the head, then as much body as Content-Length says (the test's own requests).
    for (;;) {
      const auto head_end = request_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const auto cl = request_.find("Content-Length: ");
        const size_t body = cl == std::string::npos ? 0 : std::stoul(request_.substr(cl + 16));
        if (request_.size() >= head_end + 4 + body) break;
      }
      const ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request_.append(buf, static_cast<size_t>(n));
    }
    if (silent_) {
      while (::read(c, buf, sizeof buf) > 0) {
      }
    } else {
      (void)::write(c, answer_.data(), answer_.size());
    }
    ::close(c);
  }

  std::string answer_;
  bool silent_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

TEST(CtlHttp, SendsTheRequestAndReadsTheAnswer) {
  ScriptedServer server(
      "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
      "Connection: close\r\n\r\n{\"ended\":2}");
  const HttpAnswer a = http_call(
      server.url(),
      HttpRequest{"POST", "/api/v1/admin/allocations/end", R"({"user":"alice"})", "key-0123456789"},
      30s, false);
  EXPECT_EQ(a.status, 202);
  EXPECT_EQ(a.content_type, "application/json");
  EXPECT_EQ(a.body, "{\"ended\":2}");
  const std::string& r = server.request();
  EXPECT_EQ(r.rfind("POST /api/v1/admin/allocations/end HTTP/1.1\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nHost: 127.0.0.1:" + std::to_string(server.url().port) + "\r\n"),
            std::string::npos);
  EXPECT_NE(r.find("\r\nAuthorization: Bearer key-0123456789\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nContent-Length: 16\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - 16), R"({"user":"alice"})");
}

TEST(CtlHttp, RefusedConnectionIsUnreachable) {
  // A bound socket that does not listen: connecting to its port is refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const Url url{false, "127.0.0.1", ntohs(a.sin_port)};
  try {
    http_call(url, HttpRequest{"GET", "/api/v1/admin/status", "", "k"}, 30s, false);
    ADD_FAILURE() << "answered";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::kUnreachable);
    EXPECT_NE(std::string(e.what()).find(url.text()), std::string::npos) << e.what();
  }
  ::close(fd);
}

TEST(CtlHttp, SilentServerTimesOut) {
  ScriptedServer server("", true);
  try {
    http_call(server.url(), HttpRequest{"GET", "/api/v1/admin/status", "", "k"}, 1s, false);
    ADD_FAILURE() << "answered";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::kTimeout);
    EXPECT_NE(std::string(e.what()).find("did not answer within 1 s"), std::string::npos);
  }
}

TEST(CtlHttp, NotHttpIsAProtocolError) {
  ScriptedServer server("SSH-2.0-OpenSSH_9.2\r\n");
  try {
    http_call(server.url(), HttpRequest{"GET", "/", "", "k"}, 30s, false);
    ADD_FAILURE() << "answered";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::kProtocol);
  }
}

TEST(CtlHttp, AnswerCutShortIsAProtocolError) {
  ScriptedServer server("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"partial\":");
  try {
    http_call(server.url(), HttpRequest{"GET", "/", "", "k"}, 30s, false);
    ADD_FAILURE() << "answered";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::kProtocol);
    EXPECT_NE(std::string(e.what()).find("closed in the middle"), std::string::npos);
  }
}

TEST(CtlHttp, LineBreaksCannotBeSent) {
  const Url url{false, "127.0.0.1", 9};
  EXPECT_THROW(http_call(url, HttpRequest{"GET", "/", "", "k\r\nX-Evil: 1"}, 1s, false),
               std::invalid_argument);
}

}  // namespace
}  // namespace callrelay::app
