// IPv6 and dual-stack Allocate (RFC 8656 section 7.2 steps 5-9, section 18.13
// ADDRESS-ERROR-CODE): which relays are opened, the 400/440/508 answers, retransmissions, and
// permissions and channels per family (443). Relaying and Refresh: dual_stack_relay_test.cpp.
#include "dual_stack_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

TEST(DualStack, AdditionalFamilyIPv6AllocatesBothFamilies) {
  Harness h;
  Client c = h.rest_client();
  const auto r = allocate_raw(h, c, additional_v6());
  ASSERT_EQ(r.code(), 0);
  const auto relayed = relayed_addresses(r);
  ASSERT_EQ(relayed.size(), 2u) << "RFC 8656 section 7.2: two XOR-RELAYED-ADDRESS";
  EXPECT_TRUE(relayed[0].is_v4());
  EXPECT_FALSE(relayed[1].is_v4());
  EXPECT_FALSE(address_error(r).has_value());
  EXPECT_TRUE(r.has(at::kLifetime));
  EXPECT_TRUE(r.has(at::kXorMappedAddress));
  EXPECT_EQ(h.ports.open_ids.size(), 2u);
  EXPECT_EQ(h.ports.opened_families, (std::vector<Family>{Family::kIPv4, Family::kIPv6}));
  EXPECT_EQ(h.server->allocation_count(), 1u);
  ASSERT_EQ(h.observer.created.size(), 1u);
  EXPECT_EQ(h.observer.created[0]->relayed, relayed[0]);
  ASSERT_TRUE(h.observer.created[0]->relayed_additional.has_value());
  EXPECT_EQ(*h.observer.created[0]->relayed_additional, relayed[1]);
}

TEST(DualStack, RequestedIPv6AllocatesOnlyIPv6) {
  Harness h;
  Client c = h.rest_client();
  const auto r = allocate_raw(h, c, family_attr(at::kRequestedAddressFamily, 0x02));
  ASSERT_EQ(r.code(), 0);
  const auto relayed = relayed_addresses(r);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_FALSE(relayed[0].is_v4());
  EXPECT_EQ(h.ports.opened_families, std::vector<Family>{Family::kIPv6});
  EXPECT_FALSE(h.observer.created[0]->relayed_additional.has_value());
  // An IPv4 peer has no relay to be reached from: 443 for both request kinds.
  EXPECT_EQ(h.create_permission(c, kPeer4, kT0).code(), 443);
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer4, kT0).code(), 443);
  EXPECT_EQ(h.create_permission(c, kPeer6, kT0).code(), 0);
}

TEST(DualStack, FamilyAttributeRulesGet400) {
  Harness h;
  Client c = h.rest_client();
  // Step 7: both family attributes.
  EXPECT_EQ(allocate_raw(h, c,
                         [](stun::MessageBuilder& b) {
                           family_attr(at::kRequestedAddressFamily, 0x01)(b);
                           additional_v6()(b);
                         })
                .code(),
            400);
  // Step 9: ADDITIONAL-ADDRESS-FAMILY must be IPv6.
  EXPECT_EQ(allocate_raw(h, c, family_attr(at::kAdditionalAddressFamily, 0x01)).code(), 400);
  EXPECT_EQ(allocate_raw(h, c, family_attr(at::kAdditionalAddressFamily, 0x03)).code(), 400);
  // A malformed length.
  EXPECT_EQ(allocate_raw(h, c,
                         [](stun::MessageBuilder& b) {
                           b.add_bytes(at::kAdditionalAddressFamily, std::vector<uint8_t>{0x02});
                         })
                .code(),
            400);
  // Step 5: RESERVATION-TOKEN with ADDITIONAL-ADDRESS-FAMILY.
  EXPECT_EQ(allocate_raw(h, c,
                         [](stun::MessageBuilder& b) {
                           b.add_u64(at::kReservationToken, 42);
                           additional_v6()(b);
                         })
                .code(),
            400);
  // Step 6: EVEN-PORT with R=1 and ADDITIONAL-ADDRESS-FAMILY.
  EXPECT_EQ(allocate_raw(h, c,
                         [](stun::MessageBuilder& b) {
                           b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x80});
                           additional_v6()(b);
                         })
                .code(),
            400);
  EXPECT_EQ(h.ports.open_calls, 0) << "nothing opened for a rejected request";
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(DualStack, EvenPortWithoutReserveAppliesToBothRelays) {
  Harness h;
  h.ports.next_port = 61001;
  Client c = h.rest_client();
  const auto r = allocate_raw(h, c, [](stun::MessageBuilder& b) {
    b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x00});
    additional_v6()(b);
  });
  ASSERT_EQ(r.code(), 0);
  const auto relayed = relayed_addresses(r);
  ASSERT_EQ(relayed.size(), 2u);
  EXPECT_EQ(relayed[0].port % 2, 0);
  EXPECT_EQ(relayed[1].port % 2, 0);
}

TEST(DualStack, UnsupportedFamiliesGet440) {
  Harness h;
  h.ports.ipv6 = false;
  Client c = h.rest_client();
  EXPECT_EQ(allocate_raw(h, c, family_attr(at::kRequestedAddressFamily, 0x02)).code(), 440);
  h.ports.ipv6 = true;
  h.ports.ipv4 = false;
  // Step 8: no REQUESTED-ADDRESS-FAMILY means IPv4, which this server cannot relay.
  EXPECT_EQ(allocate_raw(h, c, {}).code(), 440);
  EXPECT_EQ(allocate_raw(h, c, family_attr(at::kRequestedAddressFamily, 0x01)).code(), 440);
  h.ports.ipv6 = false;
  EXPECT_EQ(allocate_raw(h, c, additional_v6()).code(), 440)
      << "neither family of a dual allocation";
  EXPECT_EQ(h.ports.open_calls, 0);
}

TEST(DualStack, UnsupportedIPv6HalfIsNamedInAddressErrorCode) {
  Harness h;
  h.ports.ipv6 = false;
  Client c = h.rest_client();
  const auto r = allocate_raw(h, c, additional_v6());
  ASSERT_EQ(r.code(), 0);
  const auto relayed = relayed_addresses(r);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_TRUE(relayed[0].is_v4());
  const auto e = address_error(r);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->family, 0x02);
  EXPECT_EQ(e->code, 440);
  EXPECT_EQ(h.ports.opened_families, std::vector<Family>{Family::kIPv4});
  EXPECT_EQ(h.create_permission(c, kPeer6, kT0).code(), 443);
}

TEST(DualStack, UnsupportedIPv4HalfIsNamedInAddressErrorCode) {
  Harness h;
  h.ports.ipv4 = false;
  Client c = h.rest_client();
  const auto r = allocate_raw(h, c, additional_v6());
  ASSERT_EQ(r.code(), 0);
  const auto relayed = relayed_addresses(r);
  ASSERT_EQ(relayed.size(), 1u);
  EXPECT_FALSE(relayed[0].is_v4());
  const auto e = address_error(r);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->family, 0x01);
  EXPECT_EQ(e->code, 440);
  EXPECT_EQ(h.observer.created[0]->relayed, relayed[0]);
  EXPECT_EQ(h.create_permission(c, kPeer4, kT0).code(), 443);
  EXPECT_EQ(h.create_permission(c, kPeer6, kT0).code(), 0);
}

TEST(DualStack, NoPortForOneFamilyIs508InAddressErrorCode) {
  Harness h;
  h.ports.no_port_for = Family::kIPv6;
  Client c = h.rest_client();
  const auto r = allocate_raw(h, c, additional_v6());
  ASSERT_EQ(r.code(), 0);
  ASSERT_EQ(relayed_addresses(r).size(), 1u);
  const auto e = address_error(r);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->family, 0x02);
  EXPECT_EQ(e->code, 508);
  // No port at all: the whole request fails, nothing stays open.
  Harness h2;
  h2.ports.capacity = 0;
  Client c2 = h2.rest_client();
  EXPECT_EQ(allocate_raw(h2, c2, additional_v6()).code(), 508);
  EXPECT_TRUE(h2.ports.open_ids.empty());
  EXPECT_EQ(h2.server->allocation_count(), 0u);
}

TEST(DualStack, RetransmittedAllocateRepeatsBothAddressesAndTheError) {
  Harness h;
  h.ports.no_port_for = Family::kIPv6;
  Client c = h.rest_client();
  h.challenge(c, kT0);
  const auto tid = c.next_tid();
  const auto first = allocate_raw(h, c, additional_v6(), kT0, tid);
  const auto again = allocate_raw(h, c, additional_v6(), kT0 + 500, tid);
  ASSERT_EQ(again.code(), 0);
  EXPECT_EQ(relayed_addresses(again), relayed_addresses(first));
  ASSERT_TRUE(address_error(again).has_value());
  EXPECT_EQ(address_error(again)->code, 508);
  EXPECT_EQ(h.ports.open_calls, 2) << "a retransmission opens nothing";

  Harness d;
  Client dc = d.rest_client();
  d.challenge(dc, kT0);
  const auto dtid = dc.next_tid();
  const auto a1 = allocate_raw(d, dc, additional_v6(), kT0, dtid);
  const auto a2 = allocate_raw(d, dc, additional_v6(), kT0 + 1, dtid);
  EXPECT_EQ(relayed_addresses(a2).size(), 2u);
  EXPECT_EQ(relayed_addresses(a1), relayed_addresses(a2));
}

TEST(DualStack, PermissionsAndChannelsPerFamily) {
  Harness h;
  Client c = h.rest_client();
  dual(h, c);
  EXPECT_EQ(h.request(
                 c, Method::kCreatePermission,
                 [](stun::MessageBuilder& b) {
                   b.add_xor_address(at::kXorPeerAddress, kPeer4);
                   b.add_xor_address(at::kXorPeerAddress, kPeer6);
                 },
                 kT0)
                .code(),
            0)
      << "one CreatePermission may name peers of both families";
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer4, kT0).code(), 0);
  EXPECT_EQ(h.channel_bind(c, 0x4001, kPeer6, kT0).code(), 0);
  // Channel numbers are per allocation, shared by the families.
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer6, kT0).code(), 400);
}

TEST(DualStack, MixedFamiliesInOneCreatePermissionIsAllOrNothing) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);  // IPv4 only
  EXPECT_EQ(h.request(
                 c, Method::kCreatePermission,
                 [](stun::MessageBuilder& b) {
                   b.add_xor_address(at::kXorPeerAddress, kPeer4);
                   b.add_xor_address(at::kXorPeerAddress, kPeer6);
                 },
                 kT0)
                .code(),
            443);
  // Nothing was installed: a datagram from the IPv4 peer is still dropped.
  EXPECT_EQ(h.from_peer(0, kPeer4, {1}, kT0 + 1).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kFamilyMismatch);
}

}  // namespace
}  // namespace callrelay::core::testing
