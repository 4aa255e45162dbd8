// The request parser without sockets: requests arriving byte by byte, pipelined requests and
// the bytes after an upgrade left to the caller, keep-alive rules, and every limit refusing
// with its status before the bytes it would take arrive.
#include <gtest/gtest.h>

#include <string>

#include "http/request_parser.hpp"

namespace callrelay::http {
namespace {

using State = RequestParser::State;

RequestParser::Limits small() {
  RequestParser::Limits l;
  l.max_head_bytes = 512;
  l.max_body_bytes = 64;
  l.max_fields = 4;
  l.max_field_name = 24;
  return l;
}

TEST(RequestParser, ByteByByte) {
  RequestParser p(small());
  const std::string req =
      "POST /api/v1/x?a=1&b=2 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k\r\n"
      "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
  for (size_t i = 0; i < req.size(); ++i) {
    EXPECT_FALSE(p.state() == State::kComplete) << i;
    EXPECT_EQ(p.feed(std::string_view(req).substr(i, 1)), 1u) << i;
    if (i + 1 < req.size() - 5) {
      EXPECT_EQ(p.state(), State::kHead) << i;
    }
  }
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_TRUE(p.keep_alive());
  const Request r = p.take();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/api/v1/x");
  EXPECT_EQ(r.query, "a=1&b=2");
  EXPECT_EQ(r.authorization, "Bearer k");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, "hello");
  EXPECT_GT(r.size, r.body.size() + r.path.size());
  EXPECT_EQ(p.state(), State::kHead);
  EXPECT_FALSE(p.started());
}

TEST(RequestParser, PipelinedRequestsOneAtATime) {
  RequestParser p(small());
  const std::string two =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const size_t used = p.feed(two);
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_EQ(two.substr(used, 6), "GET /b");
  EXPECT_EQ(p.take().path, "/a");
  EXPECT_EQ(p.feed(std::string_view(two).substr(used)), two.size() - used);
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.take().path, "/b");
}

TEST(RequestParser, UpgradeLeavesTheFramesBehindIt) {
  RequestParser p(small());
  const std::string req =
      "GET /ws?token=t HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: keep-alive, "
      "Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n\x81\x80";
  const size_t used = p.feed(req);
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_EQ(req.substr(used), "\x81\x80");
  const Request r = p.take();
  EXPECT_EQ(r.upgrade, "websocket");
  EXPECT_TRUE(r.connection_upgrade);
  EXPECT_EQ(r.sec_websocket_key, "k");
}

TEST(RequestParser, Http10ClosesUnlessKeptAlive) {
  RequestParser p(small());
  p.feed("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_FALSE(p.keep_alive());
  p.take();
  p.feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_TRUE(p.keep_alive());
}

TEST(RequestParser, AbsoluteFormTarget) {
  RequestParser p(small());
  p.feed("GET http://h:9641/metrics?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(p.state(), State::kComplete);
  const Request r = p.take();
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "x=1");
}

TEST(RequestParser, ChunkedBodyWithinTheLimit) {
  RequestParser p(small());
  p.feed("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  ASSERT_EQ(p.state(), State::kComplete);
  EXPECT_EQ(p.take().body, "hello");
  p.feed("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" + std::string(65, 'a'));
  EXPECT_EQ(p.state(), State::kBad);
  EXPECT_EQ(p.status(), 413);
}

TEST(RequestParser, DeclaredBodyTooLargeBeforeItArrives) {
  RequestParser p(small());
  p.feed("POST /x HTTP/1.1\r\nContent-Length: 100000000000\r\n\r\n");
  EXPECT_EQ(p.state(), State::kBad);
  EXPECT_EQ(p.status(), 413);
}

TEST(RequestParser, HeadLimits) {
  {
    RequestParser p(small());
    p.feed("GET /" + std::string(600, 'a'));
    EXPECT_EQ(p.state(), State::kBad);
    EXPECT_EQ(p.status(), 431);
  }
  {
    RequestParser p(small());
    p.feed("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
    EXPECT_EQ(p.state(), State::kBad);
    EXPECT_EQ(p.status(), 431);
  }
  {
    RequestParser p(small());
    p.feed("GET / HTTP/1.1\r\nAVeryVeryLongHeaderName-X: 1\r\n\r\n");
    EXPECT_EQ(p.state(), State::kBad);
    EXPECT_EQ(p.status(), 431);
  }
}

TEST(RequestParser, GarbageIs400) {
  RequestParser p(small());
  p.feed("\x16\x03\x01\x02\x00 hello\r\n\r\n");
  EXPECT_EQ(p.state(), State::kBad);
  EXPECT_EQ(p.status(), 400);
  EXPECT_FALSE(p.error().empty());
  EXPECT_EQ(p.feed("more"), 0u);  // stays bad
}

}  // namespace
}  // namespace callrelay::http
