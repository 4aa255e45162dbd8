// The HTTP response reader of `callrelay ctl`: whole and split answers, chunked bodies, bodies
// that run to the close, and answers that lie about their length or exceed the limits.
#include "app/ctl_response.hpp"

#include <gtest/gtest.h>

#include <string>

namespace callrelay::app {
namespace {

using State = ResponseParser::State;

TEST(CtlResponse, WholeAnswer) {
  ResponseParser p;
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n"
                   "\r\n{\"a\":1}"),
            State::kComplete);
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.content_type(), "application/json");
  EXPECT_EQ(p.body(), "{\"a\":1}");
}

TEST(CtlResponse, ByteByByte) {
  const std::string answer =
      "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nContent-Length: 17\r\n\r\n"
      "{\"error\":\"gone\"}\n";
  ResponseParser p;
  for (size_t i = 0; i < answer.size(); ++i) {
    EXPECT_EQ(p.state(), State::kIncomplete) << i;
    p.feed(answer.substr(i, 1));
  }
  EXPECT_EQ(p.state(), State::kComplete);
  EXPECT_EQ(p.status(), 404);
  EXPECT_EQ(p.content_type(), "application/json");
  EXPECT_EQ(p.body(), "{\"error\":\"gone\"}\n");
}

TEST(CtlResponse, Chunked) {
  ResponseParser p;
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
                   "0\r\n\r\n"),
            State::kComplete);
  EXPECT_EQ(p.body(), "abcde");
}

TEST(CtlResponse, BodyUntilClose) {
  ResponseParser p;
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello"), State::kIncomplete);
  EXPECT_EQ(p.finish(), State::kComplete);
  EXPECT_EQ(p.body(), "hello");
}

TEST(CtlResponse, InterimAnswerIsSkipped) {
  ResponseParser p;
  EXPECT_EQ(p.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n"
                   "\r\n{}"),
            State::kComplete);
  EXPECT_EQ(p.status(), 202);
  EXPECT_EQ(p.body(), "{}");
}

TEST(CtlResponse, ClosedEarly) {
  ResponseParser p;
  p.feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  EXPECT_EQ(p.finish(), State::kBad);
  EXPECT_NE(p.error().find("closed in the middle"), std::string::npos);
  ResponseParser nothing;
  EXPECT_EQ(nothing.finish(), State::kBad);
  EXPECT_NE(nothing.error().find("before an HTTP answer"), std::string::npos);
}

TEST(CtlResponse, NotHttp) {
  ResponseParser p;
  EXPECT_EQ(p.feed("SSH-2.0-OpenSSH_9.2\r\n"), State::kBad);
  EXPECT_NE(p.error().find("not an HTTP answer"), std::string::npos);
}

TEST(CtlResponse, DeclaredLengthIsNotTrusted) {
  ResponseParser p(ResponseParser::Limits{1024, 10});
  // A length far beyond the limit: refused as the bytes arrive, nothing reserved for it.
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n0123456789"),
            State::kIncomplete);
  EXPECT_EQ(p.feed("X"), State::kBad);
  EXPECT_NE(p.error().find("larger than 10 bytes"), std::string::npos);
}

TEST(CtlResponse, HugeHeadersRefused) {
  ResponseParser p(ResponseParser::Limits{64, 1024});
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nX-Filler: " + std::string(100, 'a') + "\r\n\r\n"),
            State::kBad);
  EXPECT_NE(p.error().find("headers are longer than 64"), std::string::npos);
}

TEST(CtlResponse, BytesAfterTheAnswerAreIgnored) {
  ResponseParser p;
  EXPECT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE"), State::kComplete);
  EXPECT_EQ(p.body(), "ok");
  EXPECT_EQ(p.feed("more garbage"), State::kComplete);
}

}  // namespace
}  // namespace callrelay::app
