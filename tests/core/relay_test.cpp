// CreatePermission, ChannelBind, Send/Data indications and ChannelData both ways.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

const Endpoint kPeer = ep("93.184.216.34:7000");
const Endpoint kPeer2 = ep("93.184.216.35:7001");

std::vector<uint8_t> channel_data(uint16_t channel, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(4 + payload.size());
  stun::write_channel_data_header(std::span<uint8_t, 4>(out.data(), 4), channel, static_cast<uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + 4);
  return out;
}

std::vector<uint8_t> send_indication(Client& c, const Endpoint& peer, const std::vector<uint8_t>& payload) {
  return c.build(Method::kSend, [&](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, peer);
    b.add_bytes(at::kData, payload);
  }, false, c.next_tid(), stun::Class::kIndication);
}

bool points_into(std::span<const uint8_t> inner, std::span<const uint8_t> outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

TEST(Relay, FullFlowChallengeAllocatePermissionChannelDataBothWays) {
  Harness h;
  Client c = h.rest_client();
  const Endpoint relayed = h.allocate(c, kT0);
  EXPECT_EQ(relayed, ep("192.0.2.1:61000"));
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  const auto bind = h.channel_bind(c, 0x4001, kPeer, kT0);
  ASSERT_EQ(bind.code(), 0);
  EXPECT_EQ(stun::check_integrity(bind.view(), c.key()), stun::Integrity::kOk);

  // Client -> peer: ChannelData, relayed without copying.
  const std::vector<uint8_t> payload{1, 2, 3, 4, 5};
  const auto cd = channel_data(0x4001, payload);
  const Output out = h.server->on_client_packet(c.tuple, cd, kT0 + 1);
  ASSERT_EQ(out.kind, Output::Kind::kToPeer);
  EXPECT_EQ(out.relay, 0u);
  EXPECT_EQ(out.peer, kPeer);
  EXPECT_EQ(std::vector<uint8_t>(out.data.begin(), out.data.end()), payload);
  EXPECT_EQ(out.data.data(), cd.data() + 4) << "zero copy";

  // Peer -> client: ChannelData header written in the headroom.
  const std::vector<uint8_t> reply{9, 8, 7};
  const Output back = h.from_peer(0, kPeer, reply, kT0 + 2);
  ASSERT_EQ(back.kind, Output::Kind::kToClient);
  EXPECT_EQ(back.client, c.tuple);
  EXPECT_EQ(back.data.data(), h.peer_buffer.data() + kPeerHeadroom - 4);
  ASSERT_EQ(back.data.size(), 7u) << "no padding over UDP";
  const auto parsed = stun::parse_channel_data(back.data);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->channel, 0x4001);
  EXPECT_EQ(std::vector<uint8_t>(parsed->payload.begin(), parsed->payload.end()), reply);

  // Counters on the data path.
  const AllocationInfo& info = *h.observer.created.at(0);
  EXPECT_EQ(info.traffic.packets_to_peer.get(), 1u);
  EXPECT_EQ(info.traffic.bytes_to_peer.get(), 5u);
  EXPECT_EQ(info.traffic.packets_to_client.get(), 1u);
  EXPECT_EQ(info.traffic.bytes_to_client.get(), 3u);
  EXPECT_EQ(info.peers_contacted, 1u);
  size_t visited = 0;
  h.server->for_each_allocation([&](const AllocationInfo& a) {
    ++visited;
    EXPECT_EQ(a.traffic.packets_to_client.get(), 1u);
  });
  EXPECT_EQ(visited, 1u);
  EXPECT_TRUE(h.observer.drops.empty());
}

TEST(Relay, SendAndDataIndications) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  const std::vector<uint8_t> payload{'h', 'e', 'l', 'l', 'o'};
  const auto ind = send_indication(c, ep("93.184.216.34:9999"), payload);
  const Output out = h.server->on_client_packet(c.tuple, ind, kT0 + 1);
  ASSERT_EQ(out.kind, Output::Kind::kToPeer);
  EXPECT_EQ(out.peer, ep("93.184.216.34:9999")) << "permissions ignore the port";
  EXPECT_EQ(std::vector<uint8_t>(out.data.begin(), out.data.end()), payload);
  EXPECT_TRUE(points_into(out.data, ind)) << "DATA value is not copied";

  // Peer -> client without a channel: a Data indication built around the payload in place.
  const Output back = h.from_peer(0, ep("93.184.216.34:9999"), payload, kT0 + 2);
  ASSERT_EQ(back.kind, Output::Kind::kToClient);
  EXPECT_TRUE(points_into(back.data, h.peer_buffer));
  const auto msg = stun::MessageView::parse(back.data);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->method(), Method::kData);
  EXPECT_EQ(msg->cls(), stun::Class::kIndication);
  EXPECT_EQ(msg->xor_address(at::kXorPeerAddress), ep("93.184.216.34:9999"));
  const auto data = msg->data();
  ASSERT_TRUE(data);
  EXPECT_EQ(std::vector<uint8_t>(data->begin(), data->end()), payload);
  EXPECT_EQ(data->data(), h.peer_buffer.data() + kPeerHeadroom);
  EXPECT_EQ(back.data.size() % 4, 0u);
}

TEST(Relay, DataIndicationForIPv6Peer) {
  Harness h;
  Client c = h.rest_client("[2606:4700::5]:4000");
  h.allocate(c, kT0, [](stun::MessageBuilder& b) {
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x02, 0, 0, 0});
  });
  const Endpoint peer6 = ep("[2606:4700::1111]:3333");
  ASSERT_EQ(h.create_permission(c, peer6, kT0).code(), 0);
  const std::vector<uint8_t> payload(1200, 0x5A);
  const Output back = h.from_peer(0, peer6, payload, kT0 + 1);
  ASSERT_EQ(back.kind, Output::Kind::kToClient);
  const auto msg = stun::MessageView::parse(back.data);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->xor_address(at::kXorPeerAddress), peer6);
  EXPECT_EQ(msg->data()->size(), 1200u);
}

TEST(Relay, PeerPacketWithoutPermissionIsDropped) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.from_peer(0, kPeer2, {1, 2, 3}, kT0 + 1).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops, std::vector<DropReason>{DropReason::kNoPermission});
  // Nor does a Send indication to it go out.
  EXPECT_EQ(h.server->on_client_packet(c.tuple, send_indication(c, kPeer2, {1}), kT0 + 1).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoPermission);
  // Unknown relay ids and packets for nobody are dropped too.
  EXPECT_EQ(h.from_peer(57, kPeer, {1}, kT0 + 1).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoAllocation);
  const auto info = h.observer.created.at(0);
  EXPECT_EQ(info->traffic.packets_to_client.get(), 0u);
}

TEST(Relay, ChannelDataOnUnboundChannelOrWithoutAllocationIsDropped) {
  Harness h;
  Client c = h.rest_client();
  const auto cd = channel_data(0x4000, {1, 2});
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoAllocation);
  h.allocate(c, kT0);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoChannel);
}

TEST(Relay, StreamClientsGetPaddedChannelData) {
  Harness h;
  Client c = h.rest_client();
  c.tuple.transport = Transport::kTcp;
  h.allocate(c, kT0);
  ASSERT_EQ(h.channel_bind(c, 0x4FFF, kPeer, kT0).code(), 0);
  const Output back = h.from_peer(0, kPeer, {1, 2, 3, 4, 5}, kT0 + 1);
  ASSERT_EQ(back.kind, Output::Kind::kToClient);
  ASSERT_EQ(back.data.size(), 12u);
  EXPECT_EQ(back.data[0], 0x4F);
  EXPECT_EQ(back.data[1], 0xFF);
  EXPECT_EQ(back.data[3], 5);
  EXPECT_EQ(back.data[9], 0);
  EXPECT_EQ(back.data[10], 0);
  EXPECT_EQ(back.data[11], 0);
  EXPECT_EQ(stun::stream_frame_size(back.data).size, 12u);
}

TEST(CreatePermission, SeveralPeersInOneRequest) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  const auto r = h.request(c, Method::kCreatePermission, [](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
    b.add_xor_address(at::kXorPeerAddress, kPeer2);
  }, kT0);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0).kind, Output::Kind::kToClient);
  EXPECT_EQ(h.from_peer(0, kPeer2, {1}, kT0).kind, Output::Kind::kToClient);
}

TEST(CreatePermission, Errors) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.request(c, Method::kCreatePermission, {}, kT0).code(), 400);
  EXPECT_EQ(h.create_permission(c, ep("[2606:4700::1111]:1"), kT0).code(), 443);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kFamilyMismatch);
  // Peer policy: 403 for each denied kind; a denied peer in a batch denies the whole batch.
  EXPECT_EQ(h.create_permission(c, ep("169.254.169.254:80"), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kLinkLocal);
  EXPECT_EQ(h.create_permission(c, ep("127.0.0.1:80"), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kLoopback);
  const auto batch = h.request(c, Method::kCreatePermission, [](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
    b.add_xor_address(at::kXorPeerAddress, ep("10.0.0.1:1"));
  }, kT0);
  EXPECT_EQ(batch.code(), 403);
  EXPECT_EQ(stun::check_integrity(batch.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.from_peer(0, kPeer, {1}, kT0).kind, Output::Kind::kNone) << "nothing installed";
}

TEST(CreatePermission, MappedLoopbackRefusedOnIPv6Allocation) {
  Harness h;
  Client c = h.rest_client("[2606:4700::5]:4000");
  h.allocate(c, kT0, [](stun::MessageBuilder& b) {
    b.add_bytes(at::kRequestedAddressFamily, std::vector<uint8_t>{0x02, 0, 0, 0});
  });
  EXPECT_EQ(h.create_permission(c, ep("[::ffff:127.0.0.1]:80"), kT0).code(), 403);
  EXPECT_EQ(h.create_permission(c, ep("[64:ff9b::a00:1]:80"), kT0).code(), 403);
  EXPECT_EQ(h.create_permission(c, ep("[::1]:80"), kT0).code(), 403);
}

TEST(CreatePermission, AllowListLetsLoopbackPeersThrough) {
  PeerPolicyConfig pcfg;
  pcfg.allow = {*Cidr::parse("127.0.0.0/8")};
  Harness h({}, Harness::default_auth(), pcfg);
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.create_permission(c, ep("127.0.0.1:5000"), kT0).code(), 0);
  EXPECT_EQ(h.create_permission(c, ep("10.0.0.1:5000"), kT0).code(), 403);
}

TEST(CreatePermission, CapacityGets508) {
  CoreConfig cfg;
  cfg.max_permissions_per_allocation = 2;
  Harness h(cfg);
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.create_permission(c, ep("93.184.216.1:1"), kT0).code(), 0);
  EXPECT_EQ(h.create_permission(c, ep("93.184.216.2:1"), kT0).code(), 0);
  EXPECT_EQ(h.create_permission(c, ep("93.184.216.2:9"), kT0).code(), 0) << "refresh needs no new slot";
  EXPECT_EQ(h.create_permission(c, ep("93.184.216.3:1"), kT0).code(), 508);
  // Expired permissions free their slots.
  EXPECT_EQ(h.create_permission(c, ep("93.184.216.3:1"), kT0 + 300 * kSecond).code(), 0);
}

TEST(ChannelBind, NumberRules) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.channel_bind(c, 0x3FFF, kPeer, kT0).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0x8000, kPeer, kT0).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0xFFFF, kPeer, kT0).code(), 400);
  EXPECT_EQ(h.request(c, Method::kChannelBind, [](stun::MessageBuilder& b) { b.add_channel_number(0x4000); }, kT0).code(),
            400);
  EXPECT_EQ(h.request(c, Method::kChannelBind, [](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
  }, kT0).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.channel_bind(c, 0x4FFF, kPeer2, kT0).code(), 0);
}

TEST(ChannelBind, Rfc5766RangeAcceptedUnlessStrict) {
  {
    Harness h;
    Client c = h.rest_client();
    h.allocate(c, kT0);
    EXPECT_EQ(h.channel_bind(c, 0x7FFF, kPeer, kT0).code(), 0) << "coturn's clients pick from 0x4000-0x7FFF";
    EXPECT_EQ(h.channel_bind(c, 0x5000, kPeer2, kT0).code(), 0);
  }
  CoreConfig strict;
  strict.accept_rfc5766_channels = false;
  Harness h(strict);
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.channel_bind(c, 0x5000, kPeer, kT0).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0x7FFF, kPeer, kT0).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0x4FFF, kPeer, kT0).code(), 0);
}

TEST(ChannelBind, RebindingRules) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, [](stun::MessageBuilder& b) { b.add_u32(at::kLifetime, 3600); });
  ASSERT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer2, kT0).code(), 400) << "channel bound to another peer";
  EXPECT_EQ(h.channel_bind(c, 0x4001, kPeer, kT0).code(), 400) << "peer bound to another channel";
  EXPECT_EQ(h.channel_bind(c, 0x4001, ep("93.184.216.34:7001"), kT0).code(), 0) << "other port, other peer";
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0 + 500 * kSecond).code(), 0) << "same pair refreshes";
  // Refreshed at +500 s: still bound at +1099.999 s, gone at +1100 s.
  const auto cd = channel_data(0x4000, {1});
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, kT0 + 1100 * kSecond - 1).kind, Output::Kind::kToPeer);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, kT0 + 1100 * kSecond).kind, Output::Kind::kNone);
}

TEST(ChannelBind, ExpiredBindingCoolsDownFiveMinutes) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0, [](stun::MessageBuilder& b) { b.add_u32(at::kLifetime, 3600); });
  ASSERT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  const TimeMs expired = kT0 + 600 * kSecond;
  h.challenge(c, expired);  // a fresh nonce: the first one lasts 600 s too
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer2, expired).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer2, expired + 300 * kSecond - 1).code(), 400);
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer2, expired + 300 * kSecond).code(), 0);
}

TEST(ChannelBind, InstallsPermissionAndRefusesDeniedPeers) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.from_peer(0, ep("93.184.216.34:1"), {1}, kT0).kind, Output::Kind::kToClient)
      << "the permission is per IP: another port of the peer gets a Data indication";
  EXPECT_EQ(h.channel_bind(c, 0x4002, ep("192.168.0.1:1"), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kPrivate);
  EXPECT_EQ(h.channel_bind(c, 0x4002, ep("[2606:4700::1]:1"), kT0).code(), 443);
}

TEST(ChannelBind, CapacityGets508) {
  CoreConfig cfg;
  cfg.max_channels_per_allocation = 1;
  Harness h(cfg);
  Client c = h.rest_client();
  h.allocate(c, kT0);
  EXPECT_EQ(h.channel_bind(c, 0x4000, kPeer, kT0).code(), 0);
  EXPECT_EQ(h.channel_bind(c, 0x4001, kPeer2, kT0).code(), 508);
}

TEST(SendIndication, InvalidOnesAreDiscarded) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  const auto no_data = c.build(Method::kSend, [&](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
  }, false, c.next_tid(), stun::Class::kIndication);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, no_data, kT0).kind, Output::Kind::kNone);
  const auto unknown = c.build(Method::kSend, [&](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
    b.add_bytes(at::kData, std::vector<uint8_t>{1});
    b.add_u32(0x0055, 1);
  }, false, c.next_tid(), stun::Class::kIndication);
  EXPECT_EQ(h.server->on_client_packet(c.tuple, unknown, kT0).kind, Output::Kind::kNone);
  const auto v6 = send_indication(c, ep("[2606:4700::1]:1"), {1});
  EXPECT_EQ(h.server->on_client_packet(c.tuple, v6, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.size(), 3u);
  // Send from a 5-tuple without allocation.
  Client stranger = h.rest_client("198.51.100.99:1");
  EXPECT_EQ(h.server->on_client_packet(stranger.tuple, send_indication(stranger, kPeer, {1}), kT0).kind,
            Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoAllocation);
}

}  // namespace
}  // namespace callrelay::core::testing
