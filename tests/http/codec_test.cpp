// Percent-decoding, form parsing, the flat JSON reader and JSON quoting.
#include <gtest/gtest.h>

#include "http/codec.hpp"

namespace callrelay::http {
namespace {

TEST(Codec, PercentDecode) {
  EXPECT_EQ(percent_decode("a%20b+c%2Bd"), "a b c+d");
  EXPECT_EQ(percent_decode("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_FALSE(percent_decode("%zz"));
  EXPECT_FALSE(percent_decode("a%00b"));  // NUL would cut the user id in C strings
}

TEST(Codec, ParseForm) {
  const auto p = parse_form("service=turn&&username=al%40ice&flag&ttl=60");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->size(), 4u);
  EXPECT_EQ(find_param(*p, "username"), "al@ice");
  EXPECT_EQ(find_param(*p, "flag"), "");
  EXPECT_EQ(find_param(*p, "missing"), std::nullopt);
  EXPECT_FALSE(parse_form("a=%G1"));
  EXPECT_EQ(find_param(*parse_form("a=1&a=2"), "a"), "2");  // the last one wins
}

TEST(Codec, FlatJson) {
  const auto p = parse_flat_json(R"( {"service": "turn", "ttl": 600, "x": true, "n": null,
                                      "u": "a\"b\\c\u00e9\ud83d\ude00"} )");
  ASSERT_TRUE(p);
  EXPECT_EQ(find_param(*p, "service"), "turn");
  EXPECT_EQ(find_param(*p, "ttl"), "600");
  EXPECT_EQ(find_param(*p, "x"), "true");
  EXPECT_EQ(find_param(*p, "n"), "");
  EXPECT_EQ(find_param(*p, "u"), "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(parse_flat_json("{}"));
}

TEST(Codec, FlatJsonRejects) {
  for (const char* bad : {"", "[]", "{", "{\"a\": {}}", "{\"a\": [1]}", "{\"a\": 1} x", "{\"a\" 1}",
                          "{\"a\": \"\\x\"}", "{\"a\": \"\\ud800\"}", "{\"a\": \"\\u0000\"}",
                          "{\"a\": \"tab\there\"}", "{\"a\": 1,}", "{a: 1}", "{\"a\": tru}"}) {
    EXPECT_FALSE(parse_flat_json(bad)) << bad;
  }
}

TEST(Codec, JsonQuote) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  // Round trip through the reader.
  const auto p = parse_flat_json("{\"k\": " + json_quote("x\"y\x1f") + "}");
  ASSERT_TRUE(p);
  EXPECT_EQ(find_param(*p, "k"), "x\"y\x1f");
}

}  // namespace
}  // namespace callrelay::http
