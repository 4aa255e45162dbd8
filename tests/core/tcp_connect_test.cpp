// RFC 6062 core tests: TCP Allocate (section 5.1), Connect (5.2) and ConnectionAttempt (5.3).
#include "tests/core/tcp_relay_support.hpp"

namespace callrelay::core::testing {
namespace {

// ---------------------------------------------------------------------------------------------
// Allocate (RFC 6062 section 5.1)

TEST(TcpAllocate, OverTcpOrTlsRelaysTheAddressOpenTcpReturned) {
  for (const Transport t : {Transport::kTcp, Transport::kTls}) {
    SCOPED_TRACE(to_string(t));
    Harness h;
    h.ports.next_port = 62000;
    Client c = stream_client(h, t);
    c.fingerprint = true;
    h.challenge(c, kT0);
    const auto r = allocate_with(h, c, kProtocolTcp);
    ASSERT_EQ(r.code(), 0);
    ASSERT_EQ(h.ports.open_tcp_calls.size(), 1u);
    EXPECT_EQ(h.ports.open_tcp_calls[0].family, Family::kIPv4);
    EXPECT_EQ(h.ports.open_tcp_calls[0].server, c.tuple.server);
    ASSERT_EQ(h.ports.tcp_opened.size(), 1u);
    EXPECT_EQ(h.ports.tcp_opened[0].address, ep("192.0.2.1:62000"));
    const auto v = r.view();
    EXPECT_EQ(v.xor_address(at::kXorRelayedAddress), h.ports.tcp_opened[0].address);
    EXPECT_EQ(v.xor_address(at::kXorMappedAddress), c.tuple.client);
    EXPECT_EQ(v.u32(at::kLifetime), 600u);
    EXPECT_FALSE(v.find(at::kReservationToken));
    EXPECT_EQ(stun::check_integrity(v, c.key()), stun::Integrity::kOk);
    EXPECT_TRUE(v.find(at::kFingerprint));
    EXPECT_EQ(h.ports.open_calls, 0) << "no UDP relay for a TCP allocation";
    EXPECT_EQ(h.server->allocation_count(), 1u);
    ASSERT_EQ(h.observer.created.size(), 1u);
    EXPECT_EQ(h.observer.created[0]->client, c.tuple);
    EXPECT_EQ(h.observer.created[0]->relayed, ep("192.0.2.1:62000"));
  }
}

TEST(TcpAllocate, OverUdpGets400) {
  Harness h;
  Client c = h.rest_client();  // UDP
  const auto r = allocate_with(h, c, kProtocolTcp);
  EXPECT_EQ(r.code(), 400);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(h.ports.open_tcp_calls.empty());
  EXPECT_EQ(h.ports.open_calls, 0);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(TcpAllocate, DontFragmentEvenPortOrReservationTokenGets400) {
  const std::vector<std::pair<const char*, AttrFn>> cases{
      {"DONT-FRAGMENT", [](stun::MessageBuilder& b) { b.add_bytes(at::kDontFragment, std::vector<uint8_t>{}); }},
      {"EVEN-PORT", [](stun::MessageBuilder& b) { b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x00}); }},
      {"EVEN-PORT R=1", [](stun::MessageBuilder& b) { b.add_bytes(at::kEvenPort, std::vector<uint8_t>{0x80}); }},
      {"RESERVATION-TOKEN", [](stun::MessageBuilder& b) { b.add_u64(at::kReservationToken, 0x0102030405060708ULL); }},
  };
  for (const auto& [name, extra] : cases) {
    SCOPED_TRACE(name);
    Harness h;
    Client c = stream_client(h);
    const auto r = allocate_with(h, c, kProtocolTcp, extra);
    EXPECT_EQ(r.code(), 400);
    EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
    EXPECT_TRUE(h.ports.open_tcp_calls.empty());
    EXPECT_EQ(h.ports.open_calls, 0);
    EXPECT_EQ(h.server->allocation_count(), 0u);
    // The same attributes are fine in a UDP Allocate on that connection.
    EXPECT_EQ(allocate_with(h, c, kProtocolUdp, extra).code(), name == std::string("RESERVATION-TOKEN") ? 508 : 0);
  }
}

TEST(TcpAllocate, DisabledGets442) {
  CoreConfig cfg;
  cfg.tcp_relay = false;
  Harness h(cfg);
  Client c = stream_client(h);
  const auto r = allocate_with(h, c, kProtocolTcp);
  EXPECT_EQ(r.code(), 442);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(h.ports.open_tcp_calls.empty());
  EXPECT_EQ(h.ports.open_calls, 0);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_EQ(allocate_with(h, c, kProtocolUdp).code(), 0) << "UDP allocations over TCP are unaffected";
  EXPECT_EQ(h.ports.open_calls, 1);
}

TEST(TcpAllocate, NoTcpPortGets508) {
  Harness h;
  h.ports.tcp_port_free = false;
  Client c = stream_client(h);
  const auto r = allocate_with(h, c, kProtocolTcp);
  EXPECT_EQ(r.code(), 508);
  EXPECT_EQ(h.ports.open_tcp_calls.size(), 1u);
  EXPECT_EQ(h.ports.open_calls, 0);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_TRUE(h.observer.created.empty());
}

TEST(TcpAllocate, OtherTransportGets442) {
  for (const uint8_t protocol : {uint8_t{0}, uint8_t{1}, uint8_t{132}, uint8_t{255}}) {
    SCOPED_TRACE(static_cast<int>(protocol));
    Harness h;
    Client c = stream_client(h);
    EXPECT_EQ(allocate_with(h, c, protocol).code(), 442);
    EXPECT_TRUE(h.ports.open_tcp_calls.empty());
    EXPECT_EQ(h.ports.open_calls, 0);
    EXPECT_EQ(h.server->allocation_count(), 0u);
  }
}

// ---------------------------------------------------------------------------------------------
// Connect (RFC 6062 section 5.2)

TEST(Connect, OnUdpAllocationGets400) {
  Harness h;
  Client over_tcp = stream_client(h);
  ASSERT_EQ(allocate_with(h, over_tcp, kProtocolUdp).code(), 0);
  const auto r = h.request(over_tcp, Method::kConnect, peer_attr(kPeer), kT0);
  EXPECT_EQ(r.code(), 400);
  EXPECT_EQ(stun::check_integrity(r.view(), over_tcp.key()), stun::Integrity::kOk);
  Client over_udp = h.rest_client("198.51.100.8:5000");
  h.allocate(over_udp, kT0);
  EXPECT_EQ(h.request(over_udp, Method::kConnect, peer_attr(kPeer), kT0).code(), 400);
  EXPECT_TRUE(h.ports.connects.empty());
}

TEST(Connect, WithoutAllocationGets437AndNeedsAuth) {
  Harness h;
  Client c = stream_client(h);
  const auto unsigned_r = h.request(c, Method::kConnect, peer_attr(kPeer), kT0, false);
  ASSERT_EQ(unsigned_r.code(), 401);
  EXPECT_TRUE(unsigned_r.has(at::kRealm));
  ASSERT_TRUE(unsigned_r.view().string(at::kNonce));
  c.nonce = std::string(*unsigned_r.view().string(at::kNonce));
  const auto r = h.request(c, Method::kConnect, peer_attr(kPeer), kT0);
  EXPECT_EQ(r.code(), 437);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(h.ports.connects.empty());
}

TEST(Connect, MissingOrMalformedPeerAddressGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const auto missing = h.request(c, Method::kConnect, {}, kT0);
  EXPECT_EQ(missing.code(), 400);
  EXPECT_EQ(stun::check_integrity(missing.view(), c.key()), stun::Integrity::kOk);
  const std::vector<std::vector<uint8_t>> malformed{
      {0x00, 0x01, 0x1B},                                // too short
      {0x00, 0x03, 0x1B, 0x58, 1, 2, 3, 4},              // unknown family
      {0x00, 0x01, 0x1B, 0x58, 1, 2, 3, 4, 5, 6, 7, 8},  // IPv4 with a wrong length
      {0x00, 0x02, 0x1B, 0x58, 1, 2, 3, 4},              // IPv6 with a wrong length
  };
  for (const auto& value : malformed) {
    const auto r = h.request(c, Method::kConnect, [&](stun::MessageBuilder& b) { b.add_bytes(at::kXorPeerAddress, value); },
                             kT0);
    EXPECT_EQ(r.code(), 400) << value.size();
    EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  }
  EXPECT_TRUE(h.ports.connects.empty());
}

TEST(Connect, PeerDeniedByPolicyGets403) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  EXPECT_EQ(h.request(c, Method::kConnect, peer_attr(ep("10.0.0.1:80")), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kPrivate);
  EXPECT_EQ(h.request(c, Method::kConnect, peer_attr(ep("127.0.0.1:80")), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kLoopback);
  EXPECT_EQ(h.request(c, Method::kConnect, peer_attr(ep("169.254.169.254:80")), kT0).code(), 403);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kLinkLocal);
  EXPECT_TRUE(h.ports.connects.empty());
}

TEST(Connect, WrongFamilyGets443) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const auto r = h.request(c, Method::kConnect, peer_attr(ep("[2606:4700::1111]:7000")), kT0);
  EXPECT_EQ(r.code(), 443);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.observer.peer_denied.back(), PeerDenyReason::kFamilyMismatch);
  EXPECT_TRUE(h.ports.connects.empty());
}

TEST(Connect, AnsweredWhenThePeerConnectionIsMade) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);

  // First Connect with FINGERPRINT, second without, both pending at once.
  c.fingerprint = true;
  const auto tid1 = c.next_tid();
  EXPECT_EQ(send_connect(h, c, kPeer, kT0 + 1, tid1).kind, Output::Kind::kNone);
  c.fingerprint = false;
  const auto tid2 = c.next_tid();
  EXPECT_EQ(send_connect(h, c, kPeer2, kT0 + 2, tid2).kind, Output::Kind::kNone);
  ASSERT_EQ(h.ports.connects.size(), 2u);
  EXPECT_EQ(h.ports.connects[0].relay, relay.id);
  EXPECT_EQ(h.ports.connects[0].peer, kPeer);
  EXPECT_EQ(h.ports.connects[1].relay, relay.id);
  EXPECT_EQ(h.ports.connects[1].peer, kPeer2);
  const ConnectionId cid1 = h.ports.connects[0].cid;
  const ConnectionId cid2 = h.ports.connects[1].cid;
  EXPECT_NE(cid1, cid2);
  EXPECT_TRUE(h.observer.requests.empty() || h.observer.requests.back().method != Method::kConnect)
      << "nothing answered yet";

  // The second one connects first: answered with its own transaction id, no FINGERPRINT.
  const Output out2 = h.server->on_peer_connected(cid2, true, kT0 + 3);
  ASSERT_EQ(out2.kind, Output::Kind::kToClient);
  EXPECT_EQ(out2.client, c.tuple) << "over the control connection";
  const Response r2 = *response_of(out2);
  EXPECT_EQ(message_type(r2), 0x010A) << "Connect success response";
  const auto v2 = r2.view();
  EXPECT_EQ(v2.transaction_id(), tid2);
  EXPECT_EQ(v2.u32(at::kConnectionId), cid2);
  EXPECT_EQ(v2.string(at::kSoftware), "callrelay");
  EXPECT_EQ(stun::check_integrity(v2, c.key()), stun::Integrity::kOk);
  EXPECT_FALSE(v2.find(at::kFingerprint));
  EXPECT_FALSE(v2.find(at::kErrorCode));

  const Output out1 = h.server->on_peer_connected(cid1, true, kT0 + 4);
  ASSERT_EQ(out1.kind, Output::Kind::kToClient);
  EXPECT_EQ(out1.client, c.tuple);
  const Response r1 = *response_of(out1);
  EXPECT_EQ(message_type(r1), 0x010A);
  const auto v1 = r1.view();
  EXPECT_EQ(v1.transaction_id(), tid1) << "the ORIGINAL Connect's transaction id";
  EXPECT_EQ(v1.u32(at::kConnectionId), cid1);
  EXPECT_EQ(stun::check_integrity(v1, c.key()), stun::Integrity::kOk);
  const Client carol = h.rest_client("198.51.100.9:1", "carol");
  EXPECT_NE(stun::check_integrity(v1, carol.key()), stun::Integrity::kOk) << "signed with bob's key only";
  EXPECT_TRUE(v1.find(at::kFingerprint)) << "the request had FINGERPRINT";

  ASSERT_GE(h.observer.requests.size(), 2u);
  EXPECT_EQ(h.observer.requests.back().method, Method::kConnect);
  EXPECT_EQ(h.observer.requests.back().code, 0);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  // A repeated report for a connection already answered sends nothing.
  EXPECT_EQ(h.server->on_peer_connected(cid1, false, kT0 + 5).kind, Output::Kind::kNone);
}

TEST(Connect, PeerConnectionFailureGets447) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  c.fingerprint = true;
  const auto tid = c.next_tid();
  EXPECT_EQ(send_connect(h, c, kPeer, kT0, tid).kind, Output::Kind::kNone);
  ASSERT_EQ(h.ports.connects.size(), 1u);
  const ConnectionId cid = h.ports.connects[0].cid;
  const Output out = h.server->on_peer_connected(cid, false, kT0 + 30 * kSecond);
  ASSERT_EQ(out.kind, Output::Kind::kToClient);
  EXPECT_EQ(out.client, c.tuple);
  const Response r = *response_of(out);
  EXPECT_EQ(message_type(r), 0x011A) << "Connect error response";
  EXPECT_EQ(r.code(), 447);
  const auto v = r.view();
  EXPECT_EQ(v.transaction_id(), tid);
  EXPECT_FALSE(v.find(at::kConnectionId));
  EXPECT_EQ(stun::check_integrity(v, c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(v.find(at::kFingerprint));
  EXPECT_TRUE(h.ports.closed_peers.empty()) << "relay/net closed the failed connection itself";
  // Forgotten: no second answer, and the peer may be tried again.
  EXPECT_EQ(h.server->on_peer_connected(cid, false, kT0 + 31 * kSecond).kind, Output::Kind::kNone);
  Client d = data_connection(c, 40001, 2);
  EXPECT_EQ(connection_bind(h, d, cid, kT0 + 31 * kSecond).code(), 400);
  EXPECT_TRUE(h.ports.binds.empty());
  c.fingerprint = false;
  EXPECT_TRUE(connect_started(h, c, kPeer, kT0 + 32 * kSecond).has_value());
}

TEST(Connect, ConnectPeerRefusingGets447AtOnce) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  h.ports.connect_result = false;
  const auto r = h.request(c, Method::kConnect, peer_attr(kPeer), kT0);
  EXPECT_EQ(r.code(), 447);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_FALSE(r.view().find(at::kConnectionId));
  ASSERT_EQ(h.ports.connects.size(), 1u);
  EXPECT_EQ(h.ports.connects[0].peer, kPeer);
  const ConnectionId cid = h.ports.connects[0].cid;
  // Nothing kept: a report for that id is ignored, the same peer can be tried again.
  EXPECT_EQ(h.server->on_peer_connected(cid, false, kT0).kind, Output::Kind::kNone);
  h.ports.connect_result = true;
  EXPECT_TRUE(connect_started(h, c, kPeer, kT0 + 1).has_value());
}

TEST(Connect, SamePeerWhileConnectingOrConnectedGets446) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const auto cid = connect_started(h, c, kPeer, kT0);
  ASSERT_TRUE(cid);
  const auto connecting = h.request(c, Method::kConnect, peer_attr(kPeer), kT0 + 1);
  EXPECT_EQ(connecting.code(), 446) << "a Connect to that peer is in progress";
  EXPECT_EQ(stun::check_integrity(connecting.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.ports.connects.size(), 1u);

  ASSERT_EQ(response_of(h.server->on_peer_connected(*cid, true, kT0 + 2))->code(), 0);
  EXPECT_EQ(h.request(c, Method::kConnect, peer_attr(kPeer), kT0 + 3).code(), 446) << "pending ConnectionBind";
  Client d = data_connection(c, 40001, 2);
  ASSERT_EQ(connection_bind(h, d, *cid, kT0 + 4).code(), 0);
  EXPECT_EQ(h.request(c, Method::kConnect, peer_attr(kPeer), kT0 + 5).code(), 446) << "active";
  EXPECT_EQ(h.ports.connects.size(), 1u);

  // Another port of the same peer IP is another peer transport address.
  Endpoint other_port = kPeer;
  other_port.port = 7001;
  EXPECT_TRUE(connect_started(h, c, other_port, kT0 + 6).has_value());
  EXPECT_EQ(h.ports.connects.back().peer, other_port);
}

TEST(Connect, PerAllocationLimitGets508) {
  CoreConfig cfg;
  cfg.max_tcp_connections_per_allocation = 2;
  Harness h(cfg);
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  const auto first = connect_started(h, c, ep("93.184.216.34:7000"), kT0);
  ASSERT_TRUE(first);
  ASSERT_NE(connect_ok(h, c, ep("93.184.216.34:7001"), kT0), 0u);
  const auto r = h.request(c, Method::kConnect, peer_attr(ep("93.184.216.34:7002")), kT0);
  EXPECT_EQ(r.code(), 508);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(h.ports.connects.size(), 2u);
  // Inbound connections count too: refused (closed by relay/net) beyond the limit.
  ASSERT_EQ(h.create_permission(c, kPeer2, kT0).code(), 0);
  std::optional<ConnectionId> cid;
  EXPECT_FALSE(peer_connects(h, relay.id, kPeer2, kT0, &cid).has_value());
  EXPECT_FALSE(cid.has_value());
  EXPECT_EQ(h.observer.drops.back(), DropReason::kOverQuota);
  // The limit is per allocation.
  Client other = stream_client(h, Transport::kTcp, "198.51.100.8:40000");
  allocate_tcp(h, other);
  EXPECT_TRUE(connect_started(h, other, ep("93.184.216.34:7002"), kT0).has_value());
  // A failed connection frees its slot.
  ASSERT_EQ(response_of(h.server->on_peer_connected(*first, false, kT0 + 1))->code(), 447);
  EXPECT_TRUE(connect_started(h, c, ep("93.184.216.34:7002"), kT0 + 2).has_value());
}

// ---------------------------------------------------------------------------------------------
// ConnectionAttempt (RFC 6062 section 5.3)

TEST(ConnectionAttempt, PeerWithoutPermissionIsRefused) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  std::optional<ConnectionId> cid;
  EXPECT_FALSE(peer_connects(h, relay.id, kPeer, kT0, &cid).has_value());
  EXPECT_EQ(h.server->on_peer_connection(relay.id, kPeer, kT0, &cid).kind, Output::Kind::kNone);
  EXPECT_FALSE(cid.has_value());
  EXPECT_EQ(h.observer.drops.back(), DropReason::kNoPermission);
  // A permission for another IP does not help.
  ASSERT_EQ(h.create_permission(c, kPeer2, kT0).code(), 0);
  EXPECT_FALSE(peer_connects(h, relay.id, kPeer, kT0, &cid).has_value());
  EXPECT_FALSE(cid.has_value());
  // An expired permission does not either.
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  EXPECT_FALSE(peer_connects(h, relay.id, kPeer, kT0 + 300 * kSecond, &cid).has_value());
  EXPECT_FALSE(cid.has_value());
  EXPECT_TRUE(h.ports.closed_peers.empty()) << "relay/net closes refused connections itself";
}

TEST(ConnectionAttempt, IndicatedToTheControlConnectionOncePermitted) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  Endpoint permit = kPeer;
  permit.port = 1;  // permissions ignore the port
  ASSERT_EQ(h.create_permission(c, permit, kT0).code(), 0);
  std::optional<ConnectionId> cid;
  const Output out = h.server->on_peer_connection(relay.id, kPeer, kT0 + 1, &cid);
  ASSERT_EQ(out.kind, Output::Kind::kToClient);
  ASSERT_TRUE(cid.has_value());
  EXPECT_EQ(out.client, c.tuple) << "over the control connection";
  const Response r = *response_of(out);
  EXPECT_EQ(message_type(r), 0x001C) << "ConnectionAttempt (0x000C) indication";
  const auto v = r.view();
  EXPECT_EQ(v.method(), Method::kConnectionAttempt);
  EXPECT_EQ(v.cls(), stun::Class::kIndication);
  EXPECT_EQ(v.u32(at::kConnectionId), *cid);
  EXPECT_EQ(v.xor_address(at::kXorPeerAddress), kPeer);
  EXPECT_FALSE(v.find(at::kMessageIntegrity));
  EXPECT_TRUE(h.ports.connects.empty()) << "the peer connected to us";

  // Another peer connection gets another id and another transaction id.
  std::optional<ConnectionId> cid2;
  const auto r2 = peer_connects(h, relay.id, ep("93.184.216.34:7100"), kT0 + 2, &cid2);
  ASSERT_TRUE(r2 && cid2);
  EXPECT_NE(*cid2, *cid);
  EXPECT_NE(r2->view().transaction_id(), v.transaction_id());

  // The client claims it with a ConnectionBind on a new connection.
  Client d = data_connection(c, 40001, 2);
  ASSERT_EQ(connection_bind(h, d, *cid, kT0 + 3).code(), 0);
  ASSERT_EQ(h.ports.binds.size(), 1u);
  EXPECT_EQ(h.ports.binds[0].cid, *cid);
  EXPECT_EQ(h.ports.binds[0].client, d.tuple);
}

TEST(ConnectionAttempt, OnlyAtLiveTcpRelaysOfThePeersFamily) {
  Harness h;
  Client udp = stream_client(h, Transport::kTcp, "198.51.100.8:40000");
  ASSERT_EQ(allocate_with(h, udp, kProtocolUdp).code(), 0);
  ASSERT_EQ(h.create_permission(udp, kPeer, kT0).code(), 0);
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  std::optional<ConnectionId> cid;
  EXPECT_FALSE(peer_connects(h, 0, kPeer, kT0, &cid).has_value()) << "relay 0 is a UDP allocation's";
  EXPECT_FALSE(cid.has_value());
  EXPECT_FALSE(peer_connects(h, 999, kPeer, kT0, &cid).has_value()) << "no such relay";
  EXPECT_FALSE(cid.has_value());
  EXPECT_FALSE(peer_connects(h, relay.id, ep("[2606:4700::1]:7000"), kT0, &cid).has_value());
  EXPECT_FALSE(cid.has_value());
  EXPECT_TRUE(peer_connects(h, relay.id, kPeer, kT0, &cid).has_value());
  EXPECT_TRUE(cid.has_value());
}

}  // namespace
}  // namespace callrelay::core::testing
