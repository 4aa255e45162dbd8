// The `limits:` section: defaults on, every key read, bad values named with their fix, and the
// example documenting the defaults.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"

namespace callrelay::config {
namespace {

TEST(LimitsConfig, DefaultsAreOn) {
  const core::AbuseConfig a = parse("").core.abuse;
  EXPECT_TRUE(a.reflection_enabled);
  EXPECT_EQ(a.table_slots, 16384u);
  EXPECT_EQ(a.allowance_bytes, 2048u);
  EXPECT_EQ(a.challenges_per_s, 10u);
  EXPECT_EQ(a.tcp_max_per_address, 256u);
  EXPECT_EQ(a.tcp_unauth_bytes, 32768u);
  EXPECT_EQ(a.tls_handshakes_per_s, 200u);
  EXPECT_EQ(a.fd_reserve, 512u);
}

TEST(LimitsConfig, EveryKeyIsRead) {
  const core::AbuseConfig a = parse(
      "limits:\n"
      "  unauthenticated: {enabled: false, table_slots: 1024, allowance_bytes: 4096,\n"
      "    allowance_bytes_per_s: 128, challenges_per_s: 0, challenge_burst: 7}\n"
      "  tcp: {max_per_address: 8, max_total: 100, unauthenticated_bytes: 0, fd_reserve: 64}\n"
      "  tls: {handshakes_per_s: 50}\n").core.abuse;
  EXPECT_FALSE(a.reflection_enabled);
  EXPECT_EQ(a.table_slots, 1024u);
  EXPECT_EQ(a.allowance_bytes, 4096u);
  EXPECT_EQ(a.allowance_bytes_per_s, 128u);
  EXPECT_EQ(a.challenges_per_s, 0u);
  EXPECT_EQ(a.challenge_burst, 7u);
  EXPECT_EQ(a.tcp_max_per_address, 8u);
  EXPECT_EQ(a.tcp_max_total, 100u);
  EXPECT_EQ(a.tcp_unauth_bytes, 0u);
  EXPECT_EQ(a.fd_reserve, 64u);
  EXPECT_EQ(a.tls_handshakes_per_s, 50u);
}

TEST(LimitsConfig, BadValuesNameTheKey) {
  const auto error_of = [](const std::string& yaml) -> std::string {
    try {
      parse(yaml);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return {};
  };
  EXPECT_NE(error_of("limits:\n  tcp: {unauthenticated_bytes: 100}\n").find("at least 1024"),
            std::string::npos);
  EXPECT_NE(error_of("limits:\n  unauthenticated: {allowance_bytes: 10}\n")
                .find("limits.unauthenticated.allowance_bytes"),
            std::string::npos);
  EXPECT_NE(error_of("limits:\n  unauthenticated: {table_slots: 0}\n").find("table_slots"),
            std::string::npos);
  EXPECT_NE(error_of("limits:\n  tcp: {max_per_adress: 3}\n").find("max_per_adress"),
            std::string::npos);
}

TEST(LimitsConfig, TheExampleDocumentsTheDefaults) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const core::AbuseConfig example = parse(text.str(), "callrelay.example.yaml").core.abuse;
  const core::AbuseConfig defaults = parse("").core.abuse;
  EXPECT_EQ(example.table_slots, defaults.table_slots);
  EXPECT_EQ(example.allowance_bytes, defaults.allowance_bytes);
  EXPECT_EQ(example.allowance_bytes_per_s, defaults.allowance_bytes_per_s);
  EXPECT_EQ(example.challenges_per_s, defaults.challenges_per_s);
  EXPECT_EQ(example.challenge_burst, defaults.challenge_burst);
  EXPECT_EQ(example.tcp_max_per_address, defaults.tcp_max_per_address);
  EXPECT_EQ(example.tcp_max_total, defaults.tcp_max_total);
  EXPECT_EQ(example.tcp_unauth_bytes, defaults.tcp_unauth_bytes);
  EXPECT_EQ(example.fd_reserve, defaults.fd_reserve);
  EXPECT_EQ(example.tls_handshakes_per_s, defaults.tls_handshakes_per_s);
}

}  // namespace
}  // namespace callrelay::config
