// relay.bind_ipv4 / bind_ipv6: one address (as before) or a list, each a unicast address of its
// family, none twice; external_ipv4/6 only with one bind address; the JSON view as written.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/config_json.hpp"
#include "tests/config/config_test_support.hpp"
#include "config/coturn_import.hpp"

namespace callrelay::config {
namespace {

using test::error_of;

std::vector<std::string> ips(const std::vector<stun::Endpoint>& list) {
  std::vector<std::string> out;
  for (const auto& ip : list) out.push_back(ip.ip_string());
  return out;
}

TEST(RelayAddressesConfig, SingleStringStillAccepted) {
  const Config c = parse("relay:\n  bind_ipv4: \"192.0.2.10\"\n  bind_ipv6: \"2001:db8::10\"\n");
  EXPECT_EQ(ips(c.relay.bind_ipv4), std::vector<std::string>{"192.0.2.10"});
  EXPECT_EQ(ips(c.relay.bind_ipv6), std::vector<std::string>{"2001:db8::10"});
}

TEST(RelayAddressesConfig, ListsKeepTheirOrder) {
  const Config c = parse(
      "relay:\n"
      "  bind_ipv4: [127.0.0.3, 127.0.0.2, 192.0.2.10]\n"
      "  bind_ipv6:\n"
      "    - \"2001:db8::10\"\n"
      "    - \"[2001:db8::11]\"\n");
  EXPECT_EQ(ips(c.relay.bind_ipv4),
            (std::vector<std::string>{"127.0.0.3", "127.0.0.2", "192.0.2.10"}));
  EXPECT_EQ(ips(c.relay.bind_ipv6), (std::vector<std::string>{"2001:db8::10", "2001:db8::11"}));
}

TEST(RelayAddressesConfig, EmptyListOrNullMeansTheAddressTheClientReached) {
  EXPECT_TRUE(parse("relay:\n  bind_ipv4: []\n").relay.bind_ipv4.empty());
  EXPECT_TRUE(parse("relay:\n  bind_ipv6: ~\n").relay.bind_ipv6.empty());
  EXPECT_TRUE(parse("").relay.bind_ipv4.empty());
}

TEST(RelayAddressesConfig, DuplicateNamesItsItem) {
  EXPECT_EQ(error_of("relay:\n  bind_ipv4: [127.0.0.2, 127.0.0.3, 127.0.0.2]\n"),
            "test.yaml:2: key 'relay.bind_ipv4[2]': '127.0.0.2' is listed twice");
  // The same IPv6 address written two ways is still the same address.
  EXPECT_NE(error_of("relay:\n  bind_ipv6: [\"2001:db8::1\", \"2001:db8:0::1\"]\n")
                .find("key 'relay.bind_ipv6[1]': '2001:db8:0::1' is listed twice"),
            std::string::npos);
}

TEST(RelayAddressesConfig, WrongFamilyOrPortInAListIsRefused) {
  EXPECT_NE(error_of("relay:\n  bind_ipv4: [127.0.0.2, \"::1\"]\n")
                .find("test.yaml:2: key 'relay.bind_ipv4[1]': must be an IPv4 address"),
            std::string::npos);
  EXPECT_NE(error_of("relay:\n  bind_ipv6: [\"127.0.0.1\"]\n")
                .find("key 'relay.bind_ipv6[0]': must be an IPv6 address"),
            std::string::npos);
  EXPECT_NE(error_of("relay:\n  bind_ipv4: [\"127.0.0.2:5000\"]\n")
                .find("key 'relay.bind_ipv4[0]': must be an IPv4 address like '203.0.113.7' "
                      "(no port)"),
            std::string::npos);
  EXPECT_NE(error_of("relay:\n  bind_ipv4: {a: 1}\n").find("key 'relay.bind_ipv4'"),
            std::string::npos);
}

TEST(RelayAddressesConfig, OnlyConcreteUnicastAddresses) {
  struct Case {
    const char* yaml;
    const char* why;
  };
  for (const Case& c : {
           Case{"bind_ipv4: 0.0.0.0", "is a wildcard"},
           Case{"bind_ipv4: [127.0.0.2, 0.0.0.0]", "is a wildcard"},
           Case{"bind_ipv4: 224.0.0.1", "is not a unicast address"},
           Case{"bind_ipv4: 239.255.255.250", "is not a unicast address"},
           Case{"bind_ipv4: 255.255.255.255", "is not a unicast address"},
           Case{"bind_ipv6: \"::\"", "is the wildcard address"},
           Case{"bind_ipv6: \"ff02::1\"", "is a multicast address"},
           Case{"bind_ipv6: \"::ffff:192.0.2.1\"", "IPv4-mapped"},
       }) {
    const std::string message = error_of(std::string("relay:\n  ") + c.yaml + "\n");
    EXPECT_NE(message.find(c.why), std::string::npos) << c.yaml << " -> " << message;
    EXPECT_EQ(message.rfind("test.yaml:2: key 'relay.bind_ipv", 0), 0u) << message;
  }
  // Private, loopback and documentation addresses are ordinary unicast ones.
  EXPECT_NO_THROW(parse("relay:\n  bind_ipv4: [10.1.2.3, 127.0.0.2, 198.51.100.1]\n"
                        "  bind_ipv6: [\"::1\", \"fd00::1\", \"fe80::1\"]\n",
                        "test.yaml"));
}

TEST(RelayAddressesConfig, ExternalAddressOnlyWithOneBindAddress) {
  EXPECT_NO_THROW(parse("relay:\n  bind_ipv4: [10.0.0.5]\n  external_ipv4: 203.0.113.7\n", "test.yaml"));
  // The other family's external address is unaffected.
  EXPECT_NO_THROW(parse(
      "relay:\n  bind_ipv4: [10.0.0.5, 10.0.0.6]\n  external_ipv6: \"2001:db8::7\"\n", "test.yaml"));
  const std::string message =
      error_of("relay:\n  bind_ipv4: [10.0.0.5, 10.0.0.6]\n  external_ipv4: 203.0.113.7\n");
  EXPECT_EQ(message.rfind("test.yaml:3: key 'relay.external_ipv4': cannot be given with 2 "
                          "relay.bind_ipv4 addresses",
                          0),
            0u)
      << message;
  // Written before the bind list, the error still lands on the external key.
  EXPECT_EQ(error_of("relay:\n  external_ipv6: \"2001:db8::7\"\n"
                     "  bind_ipv6: [\"2001:db8::1\", \"2001:db8::2\"]\n")
                .rfind("test.yaml:2: key 'relay.external_ipv6'", 0),
            0u);
}

TEST(RelayAddressesConfig, JsonShowsNoneOneOrSeveral) {
  EXPECT_TRUE(to_masked_json(parse(""))["relay"]["bind_ipv4"].is_null());
  const auto one = to_masked_json(parse("relay:\n  bind_ipv4: 127.0.0.2\n"));
  EXPECT_EQ(one["relay"]["bind_ipv4"], "127.0.0.2");
  const auto two = to_masked_json(parse("relay:\n  bind_ipv4: [127.0.0.2, 127.0.0.3]\n"));
  EXPECT_EQ(two["relay"]["bind_ipv4"], nlohmann::json::array({"127.0.0.2", "127.0.0.3"}));
}

TEST(RelayAddressesConfig, CoturnsRepeatedRelayIpBecomesAList) {
  const CoturnImport imp = import_coturn(
      "relay-ip=10.0.0.5\nrelay-ip=10.0.0.6\nrelay-ip=10.0.0.5\nrelay-ip=2001:db8::5\n"
      "relay-ip=0.0.0.0\n");
  const Config cfg = parse(imp.yaml, "<imported>");
  EXPECT_EQ(ips(cfg.relay.bind_ipv4), (std::vector<std::string>{"10.0.0.5", "10.0.0.6"}))
      << imp.yaml;
  EXPECT_EQ(ips(cfg.relay.bind_ipv6), std::vector<std::string>{"2001:db8::5"});
  ASSERT_EQ(imp.not_imported.size(), 1u) << "the wildcard is no relay address";
  EXPECT_EQ(imp.not_imported[0].option, "relay-ip");

  // With external-ip callrelay keeps one relay address of that family.
  const CoturnImport nat =
      import_coturn("relay-ip=10.0.0.5\nrelay-ip=10.0.0.6\nexternal-ip=203.0.113.7\n");
  const Config behind = parse(nat.yaml, "<imported>");
  EXPECT_EQ(ips(behind.relay.bind_ipv4), std::vector<std::string>{"10.0.0.5"}) << nat.yaml;
  ASSERT_EQ(nat.not_imported.size(), 1u);
  EXPECT_EQ(nat.not_imported[0].option, "relay-ip");
}

}  // namespace
}  // namespace callrelay::config
