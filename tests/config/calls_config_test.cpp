// The calls section: every key maps onto CallsConfig, bad values name the key and line, and
// the example file documents every key.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace callrelay::config {
namespace {

using test::error_of;

TEST(CallsConfig, DefaultsAreTheDocumentedOnes) {
  const Config c = parse("", "test.yaml");
  EXPECT_TRUE(c.calls.enabled);
  EXPECT_EQ(c.calls.engine.ring_timeout_ms, 45'000u);
  EXPECT_EQ(c.calls.engine.connect_timeout_ms, 30'000u);
  EXPECT_EQ(c.calls.engine.grace_ms, 20'000u);
  EXPECT_EQ(c.calls.engine.max_duration_ms, 14'400'000u);
  EXPECT_FALSE(c.calls.engine.call_waiting);
  EXPECT_EQ(c.calls.credential_ttl_s, 900u);
  EXPECT_TRUE(c.calls.token_secret.empty());
  EXPECT_TRUE(c.calls.records_path.empty());
  EXPECT_TRUE(c.calls.webhook.url.empty());
}

TEST(CallsConfig, EveryKeyMaps) {
  const Config c = parse(R"(
calls:
  enabled: false
  token_secret: "0123456789abcdef0123456789abcdef"
  max_token_ttl_s: 600
  credential_ttl_s: 120
  ring_timeout_s: 3
  connect_timeout_s: 4
  grace_s: 5
  max_duration_s: 60
  call_waiting: true
  max_devices_per_user: 3
  max_connections: 2000
  messages_per_second: 500
  max_message_bytes: 8192
  records: {path: /tmp/calls.db}
  webhook:
    url: https://billing.example.com/hook
    secret: "webhook-secret-16chars"
    timeout_s: 2
    max_attempts: 3
    queue_size: 50
)",
                         "test.yaml");
  const calls::CallsConfig& k = c.calls;
  EXPECT_FALSE(k.enabled);
  EXPECT_EQ(k.token_secret, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(k.max_token_ttl_s, 600u);
  EXPECT_EQ(k.credential_ttl_s, 120u);
  EXPECT_EQ(k.engine.ring_timeout_ms, 3000u);
  EXPECT_EQ(k.engine.connect_timeout_ms, 4000u);
  EXPECT_EQ(k.engine.grace_ms, 5000u);
  EXPECT_EQ(k.engine.max_duration_ms, 60'000u);
  EXPECT_TRUE(k.engine.call_waiting);
  EXPECT_EQ(k.engine.max_devices_per_user, 3u);
  EXPECT_EQ(k.max_connections, 2000u);
  EXPECT_EQ(k.messages_per_second, 500u);
  EXPECT_EQ(k.limits.max_message_bytes, 8192u);
  EXPECT_LE(k.limits.max_sdp_bytes + 1024, k.limits.max_message_bytes);
  EXPECT_EQ(k.records_path, "/tmp/calls.db");
  EXPECT_EQ(k.webhook.url, "https://billing.example.com/hook");
  EXPECT_EQ(k.webhook.timeout_ms, 2000u);
  EXPECT_EQ(k.webhook.max_attempts, 3u);
  EXPECT_EQ(k.webhook.queue_size, 50u);
}

TEST(CallsConfig, BadValuesNameTheKeyAndLine) {
  EXPECT_NE(error_of("calls:\n  token_secret: short\n")
                .find("test.yaml:2: key 'calls.token_secret': must have at least 32"),
            std::string::npos);
  EXPECT_NE(error_of("calls:\n  ring_timeout_s: 0\n").find("key 'calls.ring_timeout_s'"),
            std::string::npos);
  EXPECT_NE(error_of("calls:\n  webhook: {url: ftp://x}\n").find("key 'calls.webhook.url'"),
            std::string::npos);
  EXPECT_NE(error_of("calls:\n  webhook: {url: https://x.example}\n")
                .find("needs a secret"),
            std::string::npos);
  EXPECT_NE(error_of("calls:\n  ring_timeout: 3\n").find("did you mean 'calls.ring_timeout_s'"),
            std::string::npos);
}

TEST(CallsConfig, ExampleFileDocumentsEveryKey) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  for (const char* key :
       {"calls", "token_secret", "max_token_ttl_s", "credential_ttl_s", "ring_timeout_s",
        "connect_timeout_s", "grace_s", "max_duration_s", "call_waiting", "max_devices_per_user",
        "max_connections", "messages_per_second", "max_message_bytes", "records", "path",
        "webhook", "url", "secret", "timeout_s", "max_attempts", "queue_size"}) {
    const std::string k = key;
    EXPECT_TRUE(example.find(" " + k + ":") != std::string::npos ||
                example.find("\n" + k + ":") != std::string::npos)
        << "config/callrelay.example.yaml does not document calls key '" << key << "'";
  }
}

}  // namespace
}  // namespace callrelay::config
