// Endpoint text forms, comparison and hashing.
#include "relay/stun/endpoint.hpp"

#include <gtest/gtest.h>

#include <unordered_set>

namespace callrelay::stun {
namespace {

TEST(Endpoint, ParsesAndPrintsBothFamilies) {
  for (const std::string_view text :
       {"1.2.3.4:5", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:3478", "[2001:db8::1]:61000",
        "[::]:0", "[::ffff:1.2.3.4]:80", "[fe80::1:2:3:4]:9"}) {
    const auto e = Endpoint::parse(text);
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->to_string(), text);
  }
  const auto v4 = Endpoint::parse("192.0.2.1:32853");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->port, 32853);
  EXPECT_EQ(v4->addr_len(), 4u);
  EXPECT_EQ(*v4, Endpoint::v4({192, 0, 2, 1}, 32853));
  EXPECT_EQ(v4->ip_string(), "192.0.2.1");
  const auto v6 = Endpoint::parse("[2001:db8::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, Family::kIPv6);
  EXPECT_EQ(v6->addr_len(), 16u);
  EXPECT_EQ(v6->ip_string(), "2001:db8::1");
}

TEST(Endpoint, RejectsMalformedText) {
  for (const std::string_view text :
       {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:+5", "1.2.3.4:5x",
        "1.2.3.4:000005", "300.1.1.1:5", "::1:5", "[::1]", "[::1]:", "[1.2.3.4]:5", "[::1:5",
        "[::g]:5", "host.example:80", ":5", "[]:5", "1.2.3:4"}) {
    EXPECT_FALSE(Endpoint::parse(text)) << text;
  }
}

TEST(Endpoint, ParseIpTakesABareAddress) {
  EXPECT_EQ(Endpoint::parse_ip("10.0.0.1", 7), Endpoint::v4({10, 0, 0, 1}, 7));
  const auto v6 = Endpoint::parse_ip("::1", 7);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "[::1]:7");
  EXPECT_EQ(Endpoint::parse_ip("[::1]", 7), v6);
  EXPECT_FALSE(Endpoint::parse_ip("", 1));
  EXPECT_FALSE(Endpoint::parse_ip("10.0.0.1:5", 1));
  EXPECT_FALSE(Endpoint::parse_ip(std::string(100, '1'), 1));
}

TEST(Endpoint, V4KeepsTheTailZeroForPlainCompares) {
  const auto e = Endpoint::v4({1, 2, 3, 4}, 5);
  for (size_t i = 4; i < e.addr.size(); ++i) EXPECT_EQ(e.addr[i], 0) << i;
  EXPECT_EQ(*Endpoint::parse("1.2.3.4:5"), e);
}

TEST(Endpoint, SameIpIgnoresThePort) {
  const auto a = *Endpoint::parse("1.2.3.4:5");
  const auto b = *Endpoint::parse("1.2.3.4:6");
  EXPECT_TRUE(a.same_ip(b));
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a.same_ip(*Endpoint::parse("1.2.3.5:5")));
  // The IPv4-mapped IPv6 form is a different endpoint value (policy decides what it means).
  EXPECT_FALSE(a.same_ip(*Endpoint::parse("[::ffff:1.2.3.4]:5")));
}

TEST(Endpoint, HashAgreesWithEqualityAndSpreads) {
  EndpointHash h;
  EXPECT_EQ(h(*Endpoint::parse("1.2.3.4:5")), h(Endpoint::v4({1, 2, 3, 4}, 5)));
  std::unordered_set<size_t> hashes;
  size_t count = 0;
  for (uint16_t port = 61000; port < 61100; ++port) {
    for (uint8_t last = 0; last < 20; ++last) {
      hashes.insert(h(Endpoint::v4({10, 0, 0, last}, port)));
      std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
      a[15] = last;
      hashes.insert(h(Endpoint::v6(a, port)));
      count += 2;
    }
  }
  EXPECT_EQ(hashes.size(), count);
}

}  // namespace
}  // namespace callrelay::stun
