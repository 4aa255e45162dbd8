// Dual-stack allocations at work: relaying from the relay of the peer's family (RFC 8656
// sections 11 and 12), per-family Refresh (section 8), and both relay ports released however the
// allocation ends.
#include "dual_stack_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

TEST(DualStack, RelaysFromTheRelayOfThePeersFamily) {
  Harness h;
  Client c = h.rest_client();
  const auto [v4, v6] = dual(h, c);
  ASSERT_EQ(h.create_permission(c, kPeer4, kT0).code(), 0);
  ASSERT_EQ(h.create_permission(c, kPeer6, kT0).code(), 0);

  // Client -> peers: Send indications leave from the matching relay.
  auto out = h.server->on_client_packet(c.tuple, send_indication(c, kPeer4, {1, 2}), kT0 + 1);
  ASSERT_EQ(out.kind, Output::Kind::kToPeer);
  EXPECT_EQ(out.relay, v4);
  EXPECT_EQ(out.peer, kPeer4);
  out = h.server->on_client_packet(c.tuple, send_indication(c, kPeer6, {3}), kT0 + 1);
  ASSERT_EQ(out.kind, Output::Kind::kToPeer);
  EXPECT_EQ(out.relay, v6);
  EXPECT_EQ(out.peer, kPeer6);

  // ChannelData to an IPv6 peer, too.
  ASSERT_EQ(h.channel_bind(c, 0x4001, kPeer6, kT0).code(), 0);
  const auto cd = channel_data(0x4001, {9, 8, 7});
  out = h.server->on_client_packet(c.tuple, cd, kT0 + 2);
  ASSERT_EQ(out.kind, Output::Kind::kToPeer);
  EXPECT_EQ(out.relay, v6);
  EXPECT_EQ(out.peer, kPeer6);
  EXPECT_EQ(std::vector<uint8_t>(out.data.begin(), out.data.end()),
            (std::vector<uint8_t>{9, 8, 7}));

  // Peers -> client: a datagram at either relay socket reaches the client.
  out = h.from_peer(v4, kPeer4, {5}, kT0 + 3);
  ASSERT_EQ(out.kind, Output::Kind::kToClient);
  EXPECT_EQ(out.client, c.tuple);
  const auto data_ind = stun::MessageView::parse(out.data);
  ASSERT_TRUE(data_ind.has_value());
  EXPECT_EQ(*data_ind->xor_address(at::kXorPeerAddress), kPeer4);
  out = h.from_peer(v6, kPeer6, {6, 6}, kT0 + 3);
  ASSERT_EQ(out.kind, Output::Kind::kToClient);
  const auto parsed = stun::parse_channel_data(out.data);
  ASSERT_TRUE(parsed.has_value()) << "the IPv6 peer is bound to channel 0x4001";
  EXPECT_EQ(parsed->channel, 0x4001);

  // A datagram claiming a family other than its relay socket's is not relayed.
  EXPECT_EQ(h.from_peer(v4, kPeer6, {1}, kT0 + 4).kind, Output::Kind::kNone);
  EXPECT_EQ(h.from_peer(v6, kPeer4, {1}, kT0 + 4).kind, Output::Kind::kNone);
  const auto c4 = h.server->on_client_packet(c.tuple, send_indication(c, kPeer4, {1}), kT0 + 5);
  EXPECT_EQ(c4.relay, v4);
  const auto& info = *h.observer.created[0];
  EXPECT_EQ(info.traffic.packets_to_peer.get(), 4u);
  EXPECT_EQ(info.traffic.packets_to_client.get(), 2u);
}

TEST(DualStack, SendToAFamilyWithoutRelayIsDiscarded) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, family_attr(at::kRequestedAddressFamily, 0x02));
  ASSERT_EQ(h.create_permission(c, kPeer6, kT0).code(), 0);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, send_indication(c, kPeer4, {1}), kT0 + 1).kind,
            Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kPeerDenied);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, send_indication(c, kPeer6, {1}), kT0 + 1).kind,
            Output::Kind::kToPeer);
}

TEST(DualStack, RefreshNamesOneFamily) {
  Harness h;
  Client c = h.rest_client();
  const auto [v4, v6] = dual(h, c);
  auto refresh_family = [&](uint8_t family, uint32_t lifetime, TimeMs now) {
    return h.request(
        c, Method::kRefresh,
        [=](stun::MessageBuilder& b) {
          family_attr(at::kRequestedAddressFamily, family)(b);
          b.add_u32(at::kLifetime, lifetime);
        },
        now);
  };
  // Only IPv4 is refreshed to 1200 s at 500 s; IPv6 keeps its 600 s.
  auto r = refresh_family(0x01, 1200, kT0 + 500 * kSecond);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(*r.view().u32(at::kLifetime), 1200u);
  ASSERT_EQ(h.create_permission(c, kPeer4, kT0 + 500 * kSecond).code(), 0);
  h.server->on_timer(kT0 + 600 * kSecond - 1);
  EXPECT_TRUE(h.ports.open_ids.count(v6));
  h.server->on_timer(kT0 + 600 * kSecond);
  EXPECT_FALSE(h.ports.open_ids.count(v6)) << "the IPv6 relay's own lifetime ended";
  EXPECT_TRUE(h.ports.open_ids.count(v4));
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_TRUE(h.observer.ended.empty());
  // The IPv6 half is gone: 443 for it, IPv4 still relays. (A fresh nonce first: 600 s passed.)
  h.challenge(c, kT0 + 601 * kSecond);
  EXPECT_EQ(refresh_family(0x02, 600, kT0 + 601 * kSecond).code(), 443);
  EXPECT_EQ(h.create_permission(c, kPeer6, kT0 + 601 * kSecond).code(), 443);
  EXPECT_EQ(h.from_peer(v4, kPeer4, {1}, kT0 + 601 * kSecond).kind, Output::Kind::kToClient);
  EXPECT_EQ(h.from_peer(v6, kPeer6, {1}, kT0 + 601 * kSecond).kind, Output::Kind::kNone);
  // The allocation ends with its IPv4 relay at 1700 s.
  h.server->on_timer(kT0 + 1700 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kExpired);
  EXPECT_TRUE(h.ports.open_ids.empty());
}

TEST(DualStack, RefreshZeroWithFamilyDeletesOnlyThatRelay) {
  Harness h;
  Client c = h.rest_client();
  const auto [v4, v6] = dual(h, c);
  ASSERT_EQ(h.create_permission(c, kPeer6, kT0).code(), 0);
  auto r = h.request(
      c, Method::kRefresh,
      [](stun::MessageBuilder& b) {
        family_attr(at::kRequestedAddressFamily, 0x02)(b);
        b.add_u32(at::kLifetime, 0);
      },
      kT0 + 1);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(*r.view().u32(at::kLifetime), 0u);
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{v6});
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(h.from_peer(v6, kPeer6, {1}, kT0 + 2).kind, Output::Kind::kNone);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, send_indication(c, kPeer6, {1}), kT0 + 2).kind,
            Output::Kind::kNone);
  // Deleting the last family deletes the allocation.
  r = h.request(
      c, Method::kRefresh,
      [](stun::MessageBuilder& b) {
        family_attr(at::kRequestedAddressFamily, 0x01)(b);
        b.add_u32(at::kLifetime, 0);
      },
      kT0 + 3);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kRefreshZero);
  EXPECT_TRUE(h.ports.open_ids.empty());
}

TEST(DualStack, RefreshFamilyRules) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, family_attr(at::kRequestedAddressFamily, 0x02));
  EXPECT_EQ(
      h.request(c, Method::kRefresh, family_attr(at::kRequestedAddressFamily, 0x01), kT0).code(),
      443);
  EXPECT_EQ(
      h.request(c, Method::kRefresh, family_attr(at::kRequestedAddressFamily, 0x03), kT0).code(),
      400)
      << "the codec rejects a family value that is neither IPv4 nor IPv6";
  EXPECT_EQ(h.request(
                 c, Method::kRefresh,
                 [](stun::MessageBuilder& b) {
                   b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x02});
                 },
                 kT0)
                .code(),
            400);
  EXPECT_EQ(
      h.request(c, Method::kRefresh, family_attr(at::kRequestedAddressFamily, 0x02), kT0).code(),
      0);
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST(DualStack, RefreshWithoutFamilyAppliesToBoth) {
  Harness h;
  Client c = h.rest_client();
  dual(h, c);
  ASSERT_EQ(h.refresh(c, 1200, kT0 + 500 * kSecond).code(), 0);
  h.server->on_timer(kT0 + 1000 * kSecond);
  EXPECT_EQ(h.ports.open_ids.size(), 2u) << "both relays were refreshed";
  h.server->on_timer(kT0 + 1700 * kSecond);
  EXPECT_TRUE(h.ports.open_ids.empty());
  EXPECT_EQ(h.server->allocation_count(), 0u);
  // Refresh 0 without a family deletes both at once.
  Client d = h.rest_client("198.51.100.8:1");
  dual(h, d, kT0 + 1700 * kSecond);
  EXPECT_EQ(h.ports.open_ids.size(), 2u);
  ASSERT_EQ(h.refresh(d, 0, kT0 + 1701 * kSecond).code(), 0);
  EXPECT_TRUE(h.ports.open_ids.empty());
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(DualStack, EveryEndReleasesBothRelayPorts) {
  Harness h;
  Client expired = h.rest_client("198.51.100.7:1");
  Client closed = h.rest_client("198.51.100.7:2");
  closed.tuple.transport = Transport::kTcp;
  Client at_shutdown = h.rest_client("198.51.100.7:3");
  dual(h, expired);
  dual(h, closed);
  dual(h, at_shutdown);
  EXPECT_EQ(h.ports.open_ids.size(), 6u);
  h.server->on_timer(kT0 + 600 * kSecond);  // all three expire together
  EXPECT_TRUE(h.ports.open_ids.empty());
  EXPECT_EQ(h.observer.ended.size(), 3u);

  Harness h2;
  Client a = h2.rest_client("198.51.100.7:1");
  Client b = h2.rest_client("198.51.100.7:2");
  b.tuple.transport = Transport::kTcp;
  dual(h2, a);
  const auto [b4, b6] = dual(h2, b);
  h2.server->on_client_closed(b.tuple, kT0 + 1);
  EXPECT_EQ(h2.ports.closed.size(), 2u);
  EXPECT_FALSE(h2.ports.open_ids.count(b4));
  EXPECT_FALSE(h2.ports.open_ids.count(b6));
  h2.server->shutdown(kT0 + 2);
  EXPECT_TRUE(h2.ports.open_ids.empty());
  EXPECT_EQ(h2.server->allocation_count(), 0u);
}

TEST(DualStack, ReusedRelayIdReachesOnlyItsNewAllocation) {
  Harness h;
  Client c = h.rest_client("198.51.100.7:1");
  const auto [v4, v6] = dual(h, c);
  ASSERT_EQ(h.request(
                 c, Method::kRefresh,
                 [](stun::MessageBuilder& b) {
                   family_attr(at::kRequestedAddressFamily, 0x02)(b);
                   b.add_u32(at::kLifetime, 0);
                 },
                 kT0 + 1)
                .code(),
            0);
  // relay/net reuses ids: the next allocation gets v6's id for its relay.
  h.ports.next_id = v6;
  Client d = h.rest_client("198.51.100.7:2");
  h.allocate(d, kT0 + 2, family_attr(at::kRequestedAddressFamily, 0x02));
  ASSERT_EQ(h.create_permission(d, kPeer6, kT0 + 2).code(), 0);
  const auto out = h.from_peer(v6, kPeer6, {1}, kT0 + 3);
  ASSERT_EQ(out.kind, Output::Kind::kToClient);
  EXPECT_EQ(out.client, d.tuple);
  // Ending the first allocation later must not unhook the second from that id.
  ASSERT_EQ(h.refresh(c, 0, kT0 + 4).code(), 0);
  EXPECT_EQ(h.from_peer(v6, kPeer6, {1}, kT0 + 5).kind, Output::Kind::kToClient);
}

TEST(DualStack, IPv6ClientGetsIPv4RelayByDefault) {
  Harness h;
  Client c = h.rest_client("[2001:db8:1::7]:40000");
  const auto relayed = h.allocate(c, kT0);
  EXPECT_TRUE(relayed.is_v4()) << "RFC 8656 section 7.2 step 8: no family attribute means IPv4";
  const auto r = allocate_raw(h, c, {});
  EXPECT_EQ(r.code(), 437);
  Client d = h.rest_client("[2001:db8:1::7]:40001");
  const auto dr = allocate_raw(h, d, additional_v6());
  ASSERT_EQ(dr.code(), 0);
  EXPECT_EQ(relayed_addresses(dr).size(), 2u);
  EXPECT_EQ(*dr.view().xor_address(at::kXorMappedAddress), d.tuple.client);
}

TEST(DualStack, DualAllocationCountsOnceAgainstTheQuota) {
  CoreConfig cfg;
  cfg.max_allocations_per_user = 1;
  Harness h(cfg);
  Client c = h.rest_client("198.51.100.7:1");
  dual(h, c);
  Client d = h.rest_client("198.51.100.7:2");
  EXPECT_EQ(allocate_raw(h, d, additional_v6()).code(), 486);
  EXPECT_EQ(h.ports.open_ids.size(), 2u);
}

}  // namespace
}  // namespace callrelay::core::testing
