// RFC 6455 framing without sockets: the accept key, server frames, and WsReader on every split
// of the input, with each refusal and its close code. Sizes are refused on the header.
#include <gtest/gtest.h>

#include "http/ws_frame.hpp"

namespace callrelay::http {
namespace {

/// A masked client frame.
std::string client_frame(uint8_t first_byte, std::string_view payload,
                         std::optional<uint64_t> declared = std::nullopt, bool masked = true) {
  std::string out(1, static_cast<char>(first_byte));
  const uint64_t len = declared.value_or(payload.size());
  const char m = masked ? static_cast<char>(0x80) : 0;
  if (len < 126) {
    out.push_back(static_cast<char>(m | static_cast<char>(len)));
  } else if (len <= 0xFFFF) {
    out.push_back(static_cast<char>(m | 126));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(len));
  } else {
    out.push_back(static_cast<char>(m | 127));
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(len >> s));
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) out.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
  return out;
}

std::vector<WsEvent> read_all(std::string_view bytes, size_t limit = 1024, size_t step = 0) {
  WsReader reader(limit);
  std::vector<WsEvent> out;
  if (step == 0) step = bytes.size() == 0 ? 1 : bytes.size();
  for (size_t i = 0; i < bytes.size(); i += step) reader.feed(bytes.substr(i, step), out);
  return out;
}

TEST(WsFrame, AcceptKeyFromTheRfcExample) {
  // RFC 6455 section 1.3.
  EXPECT_EQ(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(valid_ws_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_FALSE(valid_ws_key(""));
  EXPECT_FALSE(valid_ws_key("dGhlIHNhbXBsZSBub25jZQ"));
  EXPECT_FALSE(valid_ws_key("dGhlIHNhbXBsZSBub25j!Q=="));
}

TEST(WsFrame, ServerFramesAreUnmaskedWithTheShortestLength) {
  EXPECT_EQ(ws_frame(WsOpcode::kText, "hi"), std::string("\x81\x02hi", 4));
  const std::string mid = ws_frame(WsOpcode::kText, std::string(300, 'a'));
  EXPECT_EQ(mid.substr(0, 4), std::string("\x81\x7e\x01\x2c", 4));
  const std::string big = ws_frame(WsOpcode::kText, std::string(70000, 'a'));
  EXPECT_EQ(big.substr(0, 10), std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10));
  EXPECT_EQ(ws_close_frame(1009, "x"), std::string("\x88\x03\x03\xf1x", 5));
  // A long reason is cut to 123 bytes, never inside a UTF-8 character.
  const std::string euro = "\xe2\x82\xac";
  std::string reason;
  for (int i = 0; i < 50; ++i) reason += euro;
  const std::string f = ws_close_frame(1000, reason);
  EXPECT_EQ(f.size(), 2u + 2u + 41u * 3u);
  EXPECT_TRUE(valid_utf8(f.substr(4)));
}

TEST(WsFrame, Utf8) {
  EXPECT_TRUE(valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad : {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                          "\xc3", "\xe2\x82"}) {
    EXPECT_FALSE(valid_utf8(bad)) << bad;
  }
}

TEST(WsReader, TextPingPongAndCloseOnAnySplit) {
  const std::string stream = client_frame(0x01, "he") /* not final */.replace(0, 1, "\x01") +
                             client_frame(0x89, "p") + client_frame(0x80, "llo") +
                             client_frame(0x8A, "") +
                             client_frame(0x88,
                                          "\x03\xe8"
                                          "bye");
  for (size_t step = 1; step <= stream.size(); ++step) {
    const auto ev = read_all(stream, 1024, step);
    ASSERT_EQ(ev.size(), 4u) << step;
    EXPECT_EQ(ev[0].kind, WsEvent::Kind::kPing);  // control frames may come between fragments
    EXPECT_EQ(ev[0].payload, "p");
    EXPECT_EQ(ev[1].kind, WsEvent::Kind::kText);
    EXPECT_EQ(ev[1].payload, "hello");
    EXPECT_EQ(ev[2].kind, WsEvent::Kind::kPong);
    EXPECT_EQ(ev[3].kind, WsEvent::Kind::kClose);
    EXPECT_EQ(ev[3].code, 1000);
    EXPECT_EQ(ev[3].payload, "bye");
  }
}

TEST(WsReader, CloseWithoutCodeAndNothingAfterIt) {
  WsReader r(1024);
  std::vector<WsEvent> ev;
  r.feed(client_frame(0x88, "") + client_frame(0x81, "late"), ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].code, ws_close::kNoStatus);
  EXPECT_TRUE(r.done());
}

void expect_fail(const std::string& bytes, uint16_t code, size_t limit = 1024) {
  const auto ev = read_all(bytes, limit);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, WsEvent::Kind::kFail) << ev.back().payload;
  EXPECT_EQ(ev.back().code, code) << ev.back().payload;
}

TEST(WsReader, Refusals) {
  expect_fail(client_frame(0x82, "bin"), ws_close::kUnsupportedData);
  expect_fail(client_frame(0x81, "x", std::nullopt, /*masked=*/false), ws_close::kProtocolError);
  expect_fail(client_frame(0xC1, "x"), ws_close::kProtocolError);  // RSV1
  expect_fail(client_frame(0x83, "x"), ws_close::kProtocolError);  // reserved opcode
  expect_fail(client_frame(0x80, "x"), ws_close::kProtocolError);  // continuation first
  expect_fail(client_frame(0x01, "a") + client_frame(0x81, "b"), ws_close::kProtocolError);
  expect_fail(client_frame(0x09, "p"), ws_close::kProtocolError);  // fragmented ping
  expect_fail(client_frame(0x89, std::string(126, 'p')), ws_close::kProtocolError);
  expect_fail(client_frame(0x81, "\xff"), ws_close::kInvalidPayload);
  expect_fail(client_frame(0x88, "\x03"), ws_close::kProtocolError);      // 1-byte close
  expect_fail(client_frame(0x88, "\x03\xed"), ws_close::kProtocolError);  // 1005 is not sendable
  expect_fail(client_frame(0x88, "\x03\xe8\xff"), ws_close::kInvalidPayload);
}

TEST(WsReader, SizeIsRefusedOnTheHeader) {
  // A frame declaring 2^40 bytes, with none of them sent: refused at once.
  expect_fail(client_frame(0x81, "", uint64_t{1} << 40), ws_close::kTooBig);
  // The most significant bit of a 64-bit length must be 0.
  expect_fail(client_frame(0x81, "", uint64_t{1} << 63), ws_close::kProtocolError);
  expect_fail(client_frame(0x81, std::string(1025, 'a')), ws_close::kTooBig);
  // Fragments count together.
  expect_fail(client_frame(0x01, std::string(600, 'a')) + client_frame(0x80, std::string(600, 'a')),
              ws_close::kTooBig);
  const auto ok = read_all(client_frame(0x81, std::string(1024, 'a')));
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].payload.size(), 1024u);
}

}  // namespace
}  // namespace callrelay::http
