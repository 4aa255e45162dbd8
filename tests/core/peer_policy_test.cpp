// PeerPolicy: the built-in denial table, every IPv6 form embedding IPv4 (mapped, compatible,
// 6to4, Teredo, NAT64), operator allow/deny, the server's own listeners, live reconfiguration.
#include <atomic>
#include <thread>

#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

std::optional<PeerDenyReason> check(const PeerPolicy& p, const char* ip) {
  const auto e = Endpoint::parse_ip(ip, 9);
  EXPECT_TRUE(e.has_value()) << ip;
  return p.check(e.value_or(Endpoint{}));
}

Cidr cidr(const char* text) {
  auto c = Cidr::parse(text);
  EXPECT_TRUE(c.has_value()) << text;
  return c.value_or(Cidr{});
}

struct Denied {
  const char* ip;
  PeerDenyReason reason;
};

TEST(PeerPolicy, DeniesEverySpecialRangeByDefault) {
  PeerPolicy policy;
  const Denied table[] = {
      {"0.0.0.0", PeerDenyReason::kUnspecified},
      {"0.255.255.255", PeerDenyReason::kUnspecified},
      {"10.0.0.1", PeerDenyReason::kPrivate},
      {"10.255.255.255", PeerDenyReason::kPrivate},
      {"100.64.0.1", PeerDenyReason::kPrivate},
      {"100.127.255.255", PeerDenyReason::kPrivate},
      {"127.0.0.1", PeerDenyReason::kLoopback},
      {"127.255.0.9", PeerDenyReason::kLoopback},
      {"169.254.169.254", PeerDenyReason::kLinkLocal},
      {"169.254.0.1", PeerDenyReason::kLinkLocal},
      {"172.16.0.1", PeerDenyReason::kPrivate},
      {"172.31.255.255", PeerDenyReason::kPrivate},
      {"192.0.0.8", PeerDenyReason::kReserved},
      {"192.0.2.33", PeerDenyReason::kDocumentation},
      {"192.168.1.1", PeerDenyReason::kPrivate},
      {"198.18.0.1", PeerDenyReason::kReserved},
      {"198.19.255.255", PeerDenyReason::kReserved},
      {"198.51.100.7", PeerDenyReason::kDocumentation},
      {"203.0.113.200", PeerDenyReason::kDocumentation},
      {"224.0.0.1", PeerDenyReason::kMulticast},
      {"239.255.255.250", PeerDenyReason::kMulticast},
      {"240.0.0.1", PeerDenyReason::kReserved},
      {"255.255.255.254", PeerDenyReason::kReserved},
      {"255.255.255.255", PeerDenyReason::kBroadcast},
      {"::", PeerDenyReason::kUnspecified},
      {"::1", PeerDenyReason::kLoopback},
      {"fc00::1", PeerDenyReason::kPrivate},
      {"fd12:3456::1", PeerDenyReason::kPrivate},
      {"fe80::1", PeerDenyReason::kLinkLocal},
      {"febf:ffff::1", PeerDenyReason::kLinkLocal},
      {"ff02::1", PeerDenyReason::kMulticast},
      {"ff0e::1", PeerDenyReason::kMulticast},
      {"2001:db8::1", PeerDenyReason::kDocumentation},
      {"2001:db8:ffff::1", PeerDenyReason::kDocumentation},
      {"100::1", PeerDenyReason::kReserved},
      {"fec0::1", PeerDenyReason::kPrivate},  // deprecated site-local
      // IPv4-mapped and NAT64 forms are judged by the IPv4 address they reach.
      {"::ffff:127.0.0.1", PeerDenyReason::kLoopback},
      {"::ffff:10.1.2.3", PeerDenyReason::kPrivate},
      {"::ffff:169.254.169.254", PeerDenyReason::kLinkLocal},
      {"::ffff:0.0.0.0", PeerDenyReason::kUnspecified},
      {"::ffff:255.255.255.255", PeerDenyReason::kBroadcast},
      {"64:ff9b::a00:1", PeerDenyReason::kPrivate},
      {"64:ff9b::7f00:1", PeerDenyReason::kLoopback},
      {"64:ff9b::a9fe:a9fe", PeerDenyReason::kLinkLocal},
      {"64:ff9b::e000:1", PeerDenyReason::kMulticast},
  };
  for (const auto& d : table) {
    const auto got = check(policy, d.ip);
    ASSERT_TRUE(got.has_value()) << d.ip << " should be denied";
    EXPECT_EQ(*got, d.reason) << d.ip << ": " << to_string(*got) << " vs " << to_string(d.reason);
  }
}

TEST(PeerPolicy, AllowsPublicAddresses) {
  PeerPolicy policy;
  for (const char* ip : {"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.15.255.255",
                         "172.32.0.0", "169.253.255.255", "11.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.255",
                         "198.17.255.255", "198.20.0.0", "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8",
                         "64:ff9b::808:808", "2001:db9::1", "fbff::1"}) {
    const auto got = check(policy, ip);
    EXPECT_FALSE(got.has_value()) << ip << " denied as " << to_string(*got);
  }
}

TEST(PeerPolicy, AllowListOverridesBuiltinDenials) {
  PeerPolicyConfig cfg;
  cfg.allow = {cidr("127.0.0.0/8"), cidr("::1"), cidr("10.1.0.0/16")};
  PeerPolicy policy(cfg);
  EXPECT_FALSE(check(policy, "127.0.0.1"));
  EXPECT_FALSE(check(policy, "::1"));
  EXPECT_FALSE(check(policy, "::ffff:127.0.0.1"));
  EXPECT_FALSE(check(policy, "10.1.200.3"));
  EXPECT_EQ(check(policy, "10.2.0.1"), PeerDenyReason::kPrivate);
  EXPECT_EQ(check(policy, "169.254.169.254"), PeerDenyReason::kLinkLocal);
}

TEST(PeerPolicy, DenyListBeatsAllowAndPublic) {
  PeerPolicyConfig cfg;
  cfg.allow = {cidr("127.0.0.0/8")};
  cfg.deny = {cidr("127.0.0.53/32"), cidr("8.8.0.0/16"), cidr("2606:4700::/32")};
  PeerPolicy policy(cfg);
  EXPECT_FALSE(check(policy, "127.0.0.1"));
  EXPECT_EQ(check(policy, "127.0.0.53"), PeerDenyReason::kDeniedByConfig);
  EXPECT_EQ(check(policy, "8.8.8.8"), PeerDenyReason::kDeniedByConfig);
  EXPECT_EQ(check(policy, "::ffff:8.8.4.4"), PeerDenyReason::kDeniedByConfig);
  EXPECT_EQ(check(policy, "64:ff9b::808:808"), PeerDenyReason::kDeniedByConfig);
  EXPECT_EQ(check(policy, "2606:4700::1111"), PeerDenyReason::kDeniedByConfig);
  EXPECT_FALSE(check(policy, "9.9.9.9"));
}

TEST(Cidr, ParseAndContains) {
  const Cidr a = cidr("10.0.0.0/8");
  EXPECT_EQ(a.prefix, 8);
  EXPECT_TRUE(a.contains(ep("10.200.3.4:1")));
  EXPECT_FALSE(a.contains(ep("11.0.0.0:1")));
  EXPECT_FALSE(a.contains(ep("[::ffff:10.0.0.1]:1"))) << "Cidr itself is family-exact";
  const Cidr odd = cidr("100.64.0.0/10");
  EXPECT_TRUE(odd.contains(ep("100.127.1.1:1")));
  EXPECT_FALSE(odd.contains(ep("100.128.0.0:1")));
  const Cidr host = cidr("192.0.2.7");
  EXPECT_EQ(host.prefix, 32);
  EXPECT_TRUE(host.contains(ep("192.0.2.7:99")));
  EXPECT_FALSE(host.contains(ep("192.0.2.8:99")));
  const Cidr v6 = cidr("fe80::/10");
  EXPECT_TRUE(v6.contains(ep("[febf::1]:1")));
  EXPECT_FALSE(v6.contains(ep("[fec0::1]:1")));
  EXPECT_EQ(cidr("::/0").prefix, 0);
  EXPECT_TRUE(cidr("::/0").contains(ep("[2001:db8::1]:1")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(ep("1.2.3.4:1")));
  // Host bits beyond the prefix are masked off.
  EXPECT_TRUE(cidr("10.9.9.9/8").contains(ep("10.0.0.1:1")));
  EXPECT_EQ(cidr("::1/128").prefix, 128);
}

TEST(Cidr, RejectsMalformed) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/8x", "banana/8",
                          "10.0.0/8", "1.2.3.4:80"}) {
    EXPECT_FALSE(Cidr::parse(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace callrelay::core::testing

namespace callrelay::core::testing {
namespace {

TEST(PeerPolicy, EmbeddedIPv4FormsAreJudgedAsTheirIPv4) {
  PeerPolicy policy;
  const Denied denied[] = {
      {"::10.0.0.1", PeerDenyReason::kPrivate},           // IPv4-compatible (RFC 4291)
      {"::127.0.0.1", PeerDenyReason::kLoopback},
      {"::8.8.8.8", PeerDenyReason::kReserved},           // public, but ::/96 is deprecated
      {"2002:a00:1::1", PeerDenyReason::kPrivate},        // 6to4 of 10.0.0.1 (RFC 3056)
      {"2002:7f00:1::", PeerDenyReason::kLoopback},       // 6to4 of 127.0.0.1
      {"2002:a9fe:a9fe:1::5", PeerDenyReason::kLinkLocal},  // 6to4 of the metadata address
      // Teredo (RFC 4380): the client's address is the last 32 bits, inverted.
      {"2001:0:4136:e378:8000:63bf:f5ff:fffe", PeerDenyReason::kPrivate},   // 10.0.0.1
      {"2001:0:4136:e378:8000:63bf:80ff:fffe", PeerDenyReason::kLoopback},  // 127.0.0.1
      {"2001:0:4136:e378:8000:63bf:5601:5601", PeerDenyReason::kLinkLocal},  // 169.254.169.254
      {"64:ff9b::a9fe:a9fe", PeerDenyReason::kLinkLocal},  // NAT64 (RFC 6052)
      {"::ffff:192.168.1.1", PeerDenyReason::kPrivate},    // IPv4-mapped
  };
  for (const auto& d : denied) {
    const auto got = check(policy, d.ip);
    ASSERT_TRUE(got.has_value()) << d.ip << " allowed";
    EXPECT_EQ(*got, d.reason) << d.ip << " denied as " << to_string(*got);
  }
  for (const char* ip : {"2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "::1:0:0:0:1"}) {
    const auto got = check(policy, ip);
    EXPECT_FALSE(got.has_value()) << ip << " denied as " << to_string(*got);
  }
}

TEST(PeerPolicy, CanonicalFormKeepsThePort) {
  const Endpoint teredo = ep("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]:5000");
  EXPECT_EQ(canonical_peer(teredo), ep("8.8.8.8:5000"));
  EXPECT_EQ(canonical_peer(ep("[2002:808:808::1]:7")), ep("8.8.8.8:7"));
  EXPECT_EQ(canonical_peer(ep("[::ffff:1.2.3.4]:9")), ep("1.2.3.4:9"));
  EXPECT_EQ(canonical_peer(ep("[::1]:9")), ep("[::1]:9"));
  EXPECT_EQ(canonical_peer(ep("[2606:4700::1111]:9")), ep("[2606:4700::1111]:9"));
}

TEST(PeerPolicy, OperatorListsApplyToTheCanonicalForm) {
  PeerPolicyConfig cfg;
  cfg.allow = {cidr("10.1.0.0/16")};
  cfg.deny = {cidr("8.8.0.0/16")};
  PeerPolicy policy(cfg);
  EXPECT_FALSE(check(policy, "2002:a01:203::1"));
  EXPECT_FALSE(check(policy, "2001:0:4136:e378:8000:63bf:f5fe:fdfc"));  // Teredo of 10.1.2.3
  EXPECT_EQ(check(policy, "2002:808:808::1"), PeerDenyReason::kDeniedByConfig);
  EXPECT_EQ(check(policy, "2001:0:4136:e378:8000:63bf:f7f7:f7f7"), PeerDenyReason::kDeniedByConfig);
}

TEST(PeerPolicy, OwnListenersAreNeverPeersWhateverTheAllowList) {
  PeerPolicyConfig cfg;
  cfg.allow = {cidr("127.0.0.0/8"), cidr("::1")};
  PeerPolicy policy(cfg);
  OwnAddresses own;
  own.listeners = {ep("127.0.0.1:3478"), ep("0.0.0.0:8080")};
  own.ips = {ep("93.184.216.34:0"), ep("127.0.0.1:0")};
  policy.set_own_addresses(own);
  EXPECT_EQ(policy.check(ep("127.0.0.1:3478")), PeerDenyReason::kOwnAddress);
  EXPECT_EQ(policy.check(ep("[::ffff:127.0.0.1]:3478")), PeerDenyReason::kOwnAddress);
  EXPECT_EQ(policy.check(ep("[2002:7f00:1::]:3478")), PeerDenyReason::kOwnAddress);
  EXPECT_FALSE(policy.check(ep("127.0.0.1:3479")));  // another local service the operator allows
  EXPECT_FALSE(policy.check(ep("127.0.0.2:3478")));  // the listener is on 127.0.0.1 only
  // The wildcard listener is reached on every address of the host, loopback included.
  EXPECT_EQ(policy.check(ep("93.184.216.34:8080")), PeerDenyReason::kOwnAddress);
  EXPECT_EQ(policy.check(ep("[2002:5db8:d822::1]:8080")), PeerDenyReason::kOwnAddress);
  EXPECT_EQ(policy.check(ep("127.0.0.9:8080")), PeerDenyReason::kOwnAddress);
  EXPECT_EQ(policy.check(ep("[::1]:8080")), PeerDenyReason::kOwnAddress);
  EXPECT_FALSE(policy.check(ep("93.184.216.34:8081")));
  EXPECT_FALSE(policy.check(ep("93.184.216.35:8080")));
}

TEST(PeerPolicy, ReconfigureSwapsTheListsWhileOthersCheck) {
  PeerPolicyConfig deny;
  deny.deny = {cidr("8.8.0.0/16")};
  PeerPolicy policy(deny);
  EXPECT_EQ(check(policy, "8.8.8.8"), PeerDenyReason::kDeniedByConfig);
  std::atomic<bool> stop{false};
  std::atomic<int> unexpected{0};
  std::thread checker([&] {
    // Each check sees one whole configuration: denied by the list, or allowed; nothing else.
    while (!stop.load()) {
      const auto got = check(policy, "8.8.8.8");
      if (got && *got != PeerDenyReason::kDeniedByConfig) ++unexpected;
      if (check(policy, "10.0.0.1") != PeerDenyReason::kPrivate) ++unexpected;
    }
  });
  for (int i = 0; i < 2000; ++i) policy.reconfigure(i % 2 == 0 ? PeerPolicyConfig{} : deny);
  policy.reconfigure(PeerPolicyConfig{});
  stop = true;
  checker.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_FALSE(check(policy, "8.8.8.8"));
}

TEST(PeerPolicy, RequestsToTheServersOwnListenerAreRefused) {
  PeerPolicyConfig cfg;
  cfg.allow = {cidr("192.0.2.0/24")};  // the harness's server address, allowed as a peer range
  Harness h(CoreConfig{}, Harness::default_auth(), cfg);
  OwnAddresses own;
  own.listeners = {ep("192.0.2.1:3478")};
  h.policy.set_own_addresses(own);
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.create_permission(c, ep("192.0.2.1:3478"), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kOwnAddress);
  EXPECT_EQ(h.channel_bind(c, 0x4001, ep("192.0.2.1:3478"), kT0).code(), 403);
  // Another port of the host (e.g. another allocation's relayed address) is a peer like any other.
  ASSERT_EQ(h.create_permission(c, ep("192.0.2.1:61010"), kT0).code(), 0);
  // ...but that permission for the host's address does not open its listener to Send.
  h.observer.drops.clear();
  const auto send_to = [&](const Endpoint& peer) {
    return h.server->on_client_packet(c.tuple,
                                      c.build(stun::Method::kSend,
                                              [&](stun::MessageBuilder& b) {
                                                b.add_xor_address(stun::attr::kXorPeerAddress, peer);
                                                b.add_bytes(stun::attr::kData, bytes_of("x"));
                                              },
                                              false, c.next_tid(), stun::Class::kIndication),
                                      kT0);
  };
  EXPECT_EQ(send_to(ep("192.0.2.1:3478")).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops, std::vector<DropReason>{DropReason::kPeerDenied});
  EXPECT_EQ(send_to(ep("192.0.2.1:61010")).kind, Output::Kind::kToPeer);
}

}  // namespace
}  // namespace callrelay::core::testing
