// The `bandwidth:` section: rates with suffixes, bounds, off, and the example's values.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"

namespace callrelay::config {
namespace {

TEST(BandwidthConfig, DefaultsAreGenerousAndOn) {
  const Config c = parse("");
  EXPECT_EQ(c.core.bandwidth.max_bps, 100'000'000u);
  EXPECT_EQ(c.core.bandwidth.user_max_bps, 1'000'000'000u);
  EXPECT_EQ(c.core.bandwidth.total_max_bps, 0u);
  EXPECT_EQ(c.core.bandwidth.burst_ms, 500u);
}

TEST(BandwidthConfig, RatesTakeNumbersAndDecimalSuffixes) {
  const Config c = parse(
      "bandwidth:\n  max_bps: 2.5M\n  user_max_bps: 64k\n  total_max_bps: 10G\n  burst_ms: 250\n");
  EXPECT_EQ(c.core.bandwidth.max_bps, 2'500'000u);
  EXPECT_EQ(c.core.bandwidth.user_max_bps, 64'000u);
  EXPECT_EQ(c.core.bandwidth.total_max_bps, 10'000'000'000u);
  EXPECT_EQ(c.core.bandwidth.burst_ms, 250u);
  EXPECT_EQ(parse("bandwidth:\n  max_bps: 8000\n").core.bandwidth.max_bps, 8000u);
  EXPECT_EQ(parse("bandwidth:\n  max_bps: 0\n").core.bandwidth.max_bps, 0u);
}

TEST(BandwidthConfig, BadValuesNameTheKeyAndTheFix) {
  for (const char* bad : {"abc", "1000", "5T", "2X", "-1M", "1.M5", "M", "99999999999999999999"}) {
    try {
      parse(std::string("bandwidth:\n  max_bps: ") + bad + "\n");
      ADD_FAILURE() << "accepted max_bps: " << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("bandwidth.max_bps"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bits per second"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse("bandwidth:\n  burst_ms: 5\n"), ConfigError);
  EXPECT_THROW(parse("bandwidth:\n  max_bsp: 1M\n"), ConfigError);  // unknown key
}

TEST(BandwidthConfig, TheExampleDocumentsEveryKeyWithItsDefault) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const Config example = parse(text.str(), "callrelay.example.yaml");
  EXPECT_EQ(example.core.bandwidth, parse("").core.bandwidth);
}

}  // namespace
}  // namespace callrelay::config
