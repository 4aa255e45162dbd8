// coturn's address ranges ("A" or "A-B") to CIDR blocks, and taking holes out of them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/coturn_import_ranges.hpp"

namespace callrelay::config::coturn {
namespace {

std::vector<std::string> cidrs(const std::string& text) {
  std::string why;
  const auto r = parse_range(text, why);
  EXPECT_TRUE(r.has_value()) << text << ": " << why;
  return r ? to_cidrs(*r) : std::vector<std::string>{};
}

IpRange range(const std::string& text) {
  std::string why;
  return *parse_range(text, why);
}

TEST(CoturnRanges, AlignedRangesAreOneBlock) {
  EXPECT_EQ(cidrs("10.0.0.0-10.255.255.255"), std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(cidrs("172.16.0.0-172.31.255.255"), std::vector<std::string>{"172.16.0.0/12"});
  EXPECT_EQ(cidrs("0.0.0.0-255.255.255.255"), std::vector<std::string>{"0.0.0.0/0"});
  EXPECT_EQ(cidrs("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), std::vector<std::string>{"::/0"});
  EXPECT_EQ(cidrs("192.0.2.7"), std::vector<std::string>{"192.0.2.7"});
  EXPECT_EQ(cidrs("2001:db8::1"), std::vector<std::string>{"2001:db8::1"});
  EXPECT_EQ(cidrs("255.255.255.255"), std::vector<std::string>{"255.255.255.255"});
}

TEST(CoturnRanges, UnalignedRangesAreTheFewestBlocks) {
  EXPECT_EQ(cidrs("192.0.2.5-192.0.2.20"),
            (std::vector<std::string>{"192.0.2.5", "192.0.2.6/31", "192.0.2.8/29", "192.0.2.16/30",
                                      "192.0.2.20"}));
  EXPECT_EQ(cidrs("83.166.64.0-83.166.95.255"), std::vector<std::string>{"83.166.64.0/19"});
  EXPECT_EQ(cidrs("255.255.255.254-255.255.255.255"),
            std::vector<std::string>{"255.255.255.254/31"});
  EXPECT_EQ(
      cidrs("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
      std::vector<std::string>{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"});
}

TEST(CoturnRanges, BadRangesSayWhy) {
  std::string why;
  EXPECT_FALSE(parse_range("10.0.0.9-10.0.0.1", why));
  EXPECT_NE(why.find("below"), std::string::npos);
  EXPECT_FALSE(parse_range("10.0.0.1-::1", why));
  EXPECT_NE(why.find("mixes"), std::string::npos);
  for (const char* bad : {"", "-", "10.0.0.1-", "10.0.0.0/8", "host.example", "1.2.3.4-x"})
    EXPECT_FALSE(parse_range(bad, why)) << bad;
}

TEST(CoturnRanges, SubtractPunchesHoles) {
  const auto out = subtract({range("10.0.0.0-10.0.0.255")},
                            {range("10.0.0.16"), range("10.0.0.200-10.0.1.50"), range("::1")});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(to_cidrs(out[0]), (std::vector<std::string>{"10.0.0.0/28"}));
  EXPECT_EQ(
      to_cidrs(out[1]),
      (std::vector<std::string>{"10.0.0.17", "10.0.0.18/31", "10.0.0.20/30", "10.0.0.24/29",
                                "10.0.0.32/27", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/29"}));
  EXPECT_TRUE(subtract({range("10.0.0.1")}, {range("10.0.0.0-10.0.0.9")}).empty());
  EXPECT_EQ(subtract({range("::-::ff")}, {range("::")}).size(), 1u);
}

}  // namespace
}  // namespace callrelay::config::coturn
