// The JSON pieces of a log line: escaping that always yields valid JSON (checked with an
// independent parser, nlohmann::json), RFC 3339 timestamps, numbers, and the object check the
// logger applies to records it is handed already encoded.
#include "base/log_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace callrelay::log {
namespace {

std::string json_quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(LogJson, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quoted("line\nnext\ttab"), R"("line\nnext\u0009tab")");
  EXPECT_EQ(json_quoted(std::string_view("nul\0x", 5)), R"("nul\u0000x")");
  EXPECT_EQ(json_quoted("\x7f"), R"("\u007f")");
  EXPECT_EQ(nlohmann::json::parse(json_quoted("a\"b\\c\n\r\x01")).get<std::string>(), "a\"b\\c\n\r\x01");
}

TEST(LogJson, KeepsWellFormedUtf8AndReplacesTheRest) {
  EXPECT_EQ(json_quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e\"");
  EXPECT_EQ(json_quoted("\xff"), R"("\ufffd")");
  EXPECT_EQ(json_quoted("\xc0\xaf"), R"("\ufffd\ufffd")");       // overlong '/'
  EXPECT_EQ(json_quoted("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a UTF-16 surrogate
  EXPECT_EQ(json_quoted("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // above U+10FFFF
  EXPECT_EQ(json_quoted("ab\xe2\x82"), R"("ab\ufffd\ufffd")");   // cut short at the end
}

TEST(LogJson, EveryByteStringBecomesValidJson) {
  // Every single byte and every pair of bytes: the parser must accept each result.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 7) {
      const std::string s{static_cast<char>(a), static_cast<char>(b), 'z'};
      const std::string q = json_quoted(s);
      ASSERT_TRUE(nlohmann::json::accept(q)) << a << " " << b;
      ASSERT_TRUE(is_json_object("{\"k\":" + q + "}")) << a << " " << b;
    }
  }
}

TEST(LogJson, Rfc3339InUtcWithMilliseconds) {
  EXPECT_EQ(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_ms(1'700'000'061'500), "2023-11-14T22:14:21.500Z");
  EXPECT_EQ(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
}

TEST(LogJson, NumbersAreShortAndNonFiniteIsNull) {
  auto num = [](double v) {
    std::string out;
    append_json_number(out, v);
    return out;
  };
  EXPECT_EQ(num(0.1), "0.1");
  EXPECT_EQ(num(3.0), "3");
  EXPECT_EQ(num(-2.5e-7), "-2.5e-07");
  EXPECT_EQ(num(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(num(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(num(std::numeric_limits<double>::infinity()), "null");
}

TEST(LogJson, ObjectCheckAcceptsObjectsOnly) {
  for (const char* good : {"{}", R"({"a":1})", R"( {"a":[1,2.5e3,-0.1,true,false,null,{}],"b":"\u00e9\n"} )",
                           R"({"event":"allocation_ended","x":{"y":[[]]}})"}) {
    EXPECT_TRUE(is_json_object(good)) << good;
    EXPECT_TRUE(nlohmann::json::accept(good)) << good;
  }
  for (const char* bad : {"", "[]", "1", "\"s\"", "{", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
                          "{\"a\":1}x", "{\"a\":1}{}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":tru}",
                          "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\n\"}",
                          "{\"a\":\"\xff\"}", "{\"a\":\"open}"}) {
    EXPECT_FALSE(is_json_object(bad)) << bad;
  }
  // Nesting deeper than the checker goes is refused, not a stack overflow.
  EXPECT_FALSE(is_json_object("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}"));
}

}  // namespace
}  // namespace callrelay::log
