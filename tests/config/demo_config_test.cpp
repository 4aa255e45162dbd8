// The demo section: off by default in the schema, on in the embedded default configuration,
// its key validated, the sections it depends on checked, and documented in the example file.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace callrelay::config {
namespace {

using test::error_of;

TEST(DemoConfig, OffUnlessConfigured) {
  EXPECT_FALSE(parse("", "test.yaml").demo.enabled);
  EXPECT_FALSE(parse("demo: {}\n", "test.yaml").demo.enabled);
  EXPECT_FALSE(parse("demo:\n  enabled: false\n", "test.yaml").demo.enabled);
  EXPECT_TRUE(parse("demo:\n  enabled: true\n", "test.yaml").demo.enabled);
}

TEST(DemoConfig, EmbeddedDefaultTurnsItOn) {
  const Config c = parse(default_yaml(), "<embedded default>");
  EXPECT_TRUE(c.demo.enabled);
  EXPECT_TRUE(c.calls.enabled);
  EXPECT_TRUE(c.http.enabled);
  // Only this machine reaches the demo's token endpoint.
  EXPECT_EQ(c.http.listen.ip_string(), "127.0.0.1");
}

TEST(DemoConfig, BadValuesNameTheKeyAndLine) {
  const std::string e = error_of("log: {level: info}\ndemo:\n  enabled: maybe\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("demo.enabled"), std::string::npos) << e;
  const std::string unknown = error_of("demo:\n  enable: true\n");
  EXPECT_NE(unknown.find("demo.enable"), std::string::npos) << unknown;
  EXPECT_NE(error_of("demo: true\n").find("demo"), std::string::npos);
}

TEST(DemoConfig, NeedsCallsAndHttp) {
  const std::string no_calls = error_of("calls: {enabled: false}\ndemo:\n  enabled: true\n");
  EXPECT_NE(no_calls.find("test.yaml:3"), std::string::npos) << no_calls;
  EXPECT_NE(no_calls.find("calls.enabled"), std::string::npos) << no_calls;
  const std::string no_http = error_of("demo: {enabled: true}\nhttp: {enabled: false}\n");
  EXPECT_NE(no_http.find("demo.enabled"), std::string::npos) << no_http;
  EXPECT_NE(no_http.find("http.enabled"), std::string::npos) << no_http;
  // Off, it needs nothing.
  EXPECT_FALSE(parse("calls: {enabled: false}\ndemo: {enabled: false}\n", "t").demo.enabled);
}

TEST(DemoConfig, ExampleFileDocumentsIt) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  ASSERT_TRUE(in) << CALLRELAY_EXAMPLE_CONFIG;
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  EXPECT_NE(example.find("\ndemo:\n  enabled: false\n"), std::string::npos);
  EXPECT_NE(example.find("NEVER FOR PRODUCTION"), std::string::npos);
  EXPECT_FALSE(parse(example, "callrelay.example.yaml").demo.enabled);
}

TEST(DemoConfig, LocalDemoFileKeepsEverythingOnLoopback) {
  std::ifstream in(CALLRELAY_DEMO_LOCAL_CONFIG);
  ASSERT_TRUE(in) << CALLRELAY_DEMO_LOCAL_CONFIG;
  std::stringstream text;
  text << in.rdbuf();
  const Config cfg = parse(text.str(), "demo-local.yaml");
  EXPECT_TRUE(cfg.demo.enabled);
  // The demo's open token endpoint and the loopback peers are only acceptable because nothing
  // in this file listens beyond 127.0.0.1.
  ASSERT_FALSE(cfg.listen.udp.empty());
  const auto loopback = *stun::Endpoint::parse_ip("127.0.0.1", 0);
  for (const auto& l : cfg.listen.udp) EXPECT_TRUE(l.same_ip(loopback)) << l.to_string();
  for (const auto& l : cfg.listen.tcp) EXPECT_TRUE(l.same_ip(loopback)) << l.to_string();
  EXPECT_TRUE(cfg.http.listen.same_ip(loopback)) << cfg.http.listen.to_string();
}

}  // namespace
}  // namespace callrelay::config
