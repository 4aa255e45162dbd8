// Percent-decoding, form parsing, request parameters, the flat JSON reader and JSON bodies.
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

TEST(Codec, FlatJsonKeepsNumbersAsTextAndTheLastDuplicate) {
  const auto p =
      parse_flat_json(R"({"ttl": 1.5, "big": 99999999999, "neg": -5, "a": "1", "a": "2"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(find_param(*p, "ttl"), "1.5");
  EXPECT_EQ(find_param(*p, "big"), "99999999999");
  EXPECT_EQ(find_param(*p, "neg"), "-5");
  EXPECT_EQ(find_param(*p, "a"), "2");
  EXPECT_FALSE(parse_flat_json("{\"a\": \"\xff\"}"));  // not UTF-8
  EXPECT_FALSE(parse_flat_json("{\"a\\u0000\": 1}"));  // NUL in a name
}

TEST(Codec, JsonText) {
  // Control characters, quotes and backslashes are escaped; the text parses back.
  const std::string tricky = "a\"b\\c\nd\x01";
  EXPECT_EQ(json_text(nlohmann::ordered_json{{"k", tricky}}),
            "{\"k\":\"a\\\"b\\\\c\\nd\\u0001\"}\n");
  const auto p = parse_flat_json(json_text(nlohmann::ordered_json{{"k", "x\"y\x1f"}}));
  ASSERT_TRUE(p);
  EXPECT_EQ(find_param(*p, "k"), "x\"y\x1f");
  // Bytes that are not UTF-8 (echoed from a client) never throw: they become U+FFFD.
  EXPECT_EQ(json_text(nlohmann::json{{"e", "bad \xff byte"}}),
            "{\"e\":\"bad \xef\xbf\xbd byte\"}\n");
  // Keys keep the order they were given in.
  EXPECT_EQ(json_text(nlohmann::ordered_json{{"z", 1}, {"a", true}}), "{\"z\":1,\"a\":true}\n");
}

TEST(Codec, JsonError) {
  const Response r = json_error(404, "no such path '\x80'");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"error\":\"no such path '\xef\xbf\xbd'\"}\n");
}

TEST(Codec, ReadParams) {
  Request req;
  req.query = "a=1&b=q";
  req.content_type = "Application/JSON; charset=utf-8";
  req.body = R"({"b": "body", "c": true})";
  Params p;
  ASSERT_FALSE(read_params(req, p));
  EXPECT_EQ(find_param(p, "a"), "1");
  EXPECT_EQ(find_param(p, "b"), "body");  // the body wins
  EXPECT_EQ(find_param(p, "c"), "true");
  req.content_type = "";
  req.body = "b=form";
  ASSERT_FALSE(read_params(req, p));
  EXPECT_EQ(find_param(p, "b"), "form");
  req.body = "{\"b\": ";
  req.content_type = "application/json";
  EXPECT_EQ(read_params(req, p)->status, 400);
  req.content_type = "text/xml";
  EXPECT_EQ(read_params(req, p)->status, 415);
  req.query = "%zz";
  EXPECT_EQ(read_params(req, p)->status, 400);
}

}  // namespace
}  // namespace callrelay::http
