// RFC 6062 TCP allocations: Allocate with REQUESTED-TRANSPORT TCP (section 5.1), Connect
// (5.2), ConnectionAttempt (5.3), ConnectionBind (5.4), the 30 s ConnectionBind timer and the
// peer data connections' lifecycle (5.5). FakeRelayPorts records open_tcp, connect_peer,
// bind_peer and close_peer; relay/net's reports are played by calling on_peer_connected,
// on_peer_connection and on_peer_closed.
#include <algorithm>

#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

constexpr uint8_t kProtocolTcp = 6;
constexpr uint8_t kProtocolUdp = 17;
const Endpoint kPeer = ep("93.184.216.34:7000");
const Endpoint kPeer2 = ep("93.184.216.35:7001");

/// A REST client on a stream connection: the control connection of its allocation.
Client stream_client(const Harness& h, Transport t = Transport::kTcp, const char* addr = "198.51.100.7:40000",
                     const std::string& user = "bob") {
  Client c = h.rest_client(addr, user);
  c.tuple.transport = t;
  c.tuple.listener = 1;
  return c;
}

/// Another connection from the client's host (same IP: its nonce is valid there too), as a
/// client opens one for each ConnectionBind.
Client data_connection(const Client& control, uint16_t port, uint32_t listener, Transport t = Transport::kTcp) {
  Client d = control;
  d.tuple.transport = t;
  d.tuple.client.port = port;
  d.tuple.listener = listener;
  return d;
}

/// An authenticated Allocate with REQUESTED-TRANSPORT `protocol` (after the 401 round when
/// the client has no nonce yet) and `extra` attributes.
Response allocate_with(Harness& h, Client& c, uint8_t protocol, const AttrFn& extra = {}, TimeMs now = kT0) {
  if (c.nonce.empty()) h.challenge(c, now);
  return h.request(c, Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(protocol);
    if (extra) extra(b);
  }, now);
}

/// A TCP allocation; returns its relay as open_tcp returned it.
RelayAddress allocate_tcp(Harness& h, Client& c, TimeMs now = kT0) {
  const size_t before = h.ports.tcp_opened.size();
  const auto r = allocate_with(h, c, kProtocolTcp, {}, now);
  EXPECT_EQ(r.code(), 0);
  EXPECT_EQ(h.ports.tcp_opened.size(), before + 1);
  return h.ports.tcp_opened.size() == before + 1 ? h.ports.tcp_opened.back() : RelayAddress{};
}

/// A copy of an output to the client (the server's scratch buffer is reused by the next call).
std::optional<Response> response_of(const Output& out) {
  if (out.kind != Output::Kind::kToClient) return std::nullopt;
  return Response{std::vector<uint8_t>(out.data.begin(), out.data.end())};
}

uint16_t message_type(const Response& r) {
  return r.bytes.size() >= 2 ? static_cast<uint16_t>((r.bytes[0] << 8) | r.bytes[1]) : 0;
}

AttrFn peer_attr(const Endpoint& peer) {
  return [peer](stun::MessageBuilder& b) { b.add_xor_address(at::kXorPeerAddress, peer); };
}

/// Sends a signed Connect for `peer` with transaction id `tid`; the raw output (kNone while
/// relay/net connects).
Output send_connect(Harness& h, Client& c, const Endpoint& peer, TimeMs now, const stun::TransactionId& tid) {
  return h.server->on_client_packet(c.tuple, c.build(Method::kConnect, peer_attr(peer), true, tid), now);
}
Output send_connect(Harness& h, Client& c, const Endpoint& peer, TimeMs now) {
  return send_connect(h, c, peer, now, c.next_tid());
}

/// A Connect that relay/net accepts to start: kNone, and the connection id it was given.
std::optional<ConnectionId> connect_started(Harness& h, Client& c, const Endpoint& peer, TimeMs now) {
  const size_t before = h.ports.connects.size();
  const Output out = send_connect(h, c, peer, now);
  EXPECT_EQ(out.kind, Output::Kind::kNone) << "no answer until the peer connection is made";
  EXPECT_EQ(h.ports.connects.size(), before + 1);
  if (out.kind != Output::Kind::kNone || h.ports.connects.size() != before + 1) return std::nullopt;
  return h.ports.connects.back().cid;
}

/// Connect, then relay/net reports the connection made: the Connect success. Returns the cid.
ConnectionId connect_ok(Harness& h, Client& c, const Endpoint& peer, TimeMs now) {
  const auto cid = connect_started(h, c, peer, now);
  if (!cid) return 0;
  const auto r = response_of(h.server->on_peer_connected(*cid, true, now));
  EXPECT_TRUE(r.has_value()) << "Connect answered when the peer connection is made";
  if (!r) return 0;
  EXPECT_EQ(r->code(), 0);
  EXPECT_EQ(r->view().u32(at::kConnectionId), *cid);
  return *cid;
}

Response connection_bind(Harness& h, Client& d, std::optional<ConnectionId> cid, TimeMs now, bool sign = true) {
  return h.request(d, Method::kConnectionBind, [&](stun::MessageBuilder& b) {
    if (cid) b.add_u32(at::kConnectionId, *cid);
  }, now, sign);
}

/// relay/net reports a peer connecting to TCP relay `relay`; the ConnectionAttempt (if any).
std::optional<Response> peer_connects(Harness& h, RelayId relay, const Endpoint& peer, TimeMs now,
                                      std::optional<ConnectionId>* cid) {
  *cid = 0xDEADBEEF;  // the core must reset it when it refuses
  return response_of(h.server->on_peer_connection(relay, peer, now, cid));
}

std::vector<ConnectionId> sorted(std::vector<ConnectionId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

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

// ---------------------------------------------------------------------------------------------
// ConnectionBind (RFC 6062 section 5.4)

TEST(ConnectionBind, BindsThePendingConnectionToTheNewConnection) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  for (const Transport t : {Transport::kTcp, Transport::kTls}) {
    SCOPED_TRACE(to_string(t));
    const ConnectionId id = t == Transport::kTcp ? cid : connect_ok(h, c, kPeer2, kT0);
    Client d = data_connection(c, t == Transport::kTcp ? 40001 : 40002, t == Transport::kTcp ? 2 : 3, t);
    d.fingerprint = true;
    const size_t before = h.ports.binds.size();
    const auto r = connection_bind(h, d, id, kT0 + kSecond);
    ASSERT_EQ(r.code(), 0);
    EXPECT_EQ(message_type(r), 0x010B) << "ConnectionBind success response";
    EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
    EXPECT_TRUE(r.has(at::kFingerprint));
    EXPECT_EQ(h.last.client, d.tuple) << "answered on the data connection";
    ASSERT_EQ(h.ports.binds.size(), before + 1);
    EXPECT_EQ(h.ports.binds.back().cid, id);
    EXPECT_EQ(h.ports.binds.back().client, d.tuple);
    EXPECT_EQ(h.ports.binds.back().traffic, &h.observer.created.at(0)->traffic)
        << "the allocation's counters";
  }
  EXPECT_TRUE(h.ports.closed_peers.empty());
  EXPECT_EQ(h.server->allocation_count(), 1u) << "a data connection is no allocation";
}

TEST(ConnectionBind, UnknownOrNotPendingConnectionIdGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  const auto connecting = connect_started(h, c, kPeer2, kT0);
  ASSERT_TRUE(connecting);
  Client d = data_connection(c, 40001, 2);
  const auto unknown = connection_bind(h, d, cid ^ 0x5A5A5A5A, kT0);
  EXPECT_EQ(unknown.code(), 400);
  EXPECT_EQ(stun::check_integrity(unknown.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(connection_bind(h, d, *connecting, kT0).code(), 400) << "still connecting";
  EXPECT_TRUE(h.ports.binds.empty());
  EXPECT_EQ(connection_bind(h, d, cid, kT0).code(), 0) << "the connection is still there";
}

TEST(ConnectionBind, MissingConnectionIdGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  ASSERT_NE(connect_ok(h, c, kPeer, kT0), 0u);
  Client d = data_connection(c, 40001, 2);
  const auto r = connection_bind(h, d, std::nullopt, kT0);
  EXPECT_EQ(r.code(), 400);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(h.ports.binds.empty());
}

TEST(ConnectionBind, OverUdpGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  Client d = data_connection(c, 40001, 0, Transport::kUdp);
  EXPECT_EQ(connection_bind(h, d, cid, kT0).code(), 400);
  EXPECT_TRUE(h.ports.binds.empty());
  Client tcp = data_connection(c, 40001, 2);
  EXPECT_EQ(connection_bind(h, tcp, cid, kT0).code(), 0) << "still pending";
}

TEST(ConnectionBind, OnTheControlConnectionGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  const auto r = connection_bind(h, c, cid, kT0);
  EXPECT_EQ(r.code(), 400);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_TRUE(h.ports.binds.empty());
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST(ConnectionBind, SecondBindForTheSameIdGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  Client d1 = data_connection(c, 40001, 2);
  Client d2 = data_connection(c, 40002, 3);
  ASSERT_EQ(connection_bind(h, d1, cid, kT0).code(), 0);
  EXPECT_EQ(connection_bind(h, d2, cid, kT0).code(), 400);
  ASSERT_EQ(h.ports.binds.size(), 1u);
  EXPECT_EQ(h.ports.binds[0].client, d1.tuple);
}

TEST(ConnectionBind, WithoutCredentialsGets401) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  Client d = data_connection(c, 40001, 2);
  const auto r = connection_bind(h, d, cid, kT0, /*sign=*/false);
  ASSERT_EQ(r.code(), 401);
  const auto v = r.view();
  EXPECT_EQ(v.string(at::kRealm), kRealm);
  ASSERT_TRUE(v.string(at::kNonce));
  EXPECT_TRUE(h.nonces.valid(*v.string(at::kNonce), d.tuple.client, kT0));
  EXPECT_FALSE(v.find(at::kMessageIntegrity));
  EXPECT_TRUE(h.ports.binds.empty());
  // Wrong password: 401 as well.
  Client wrong = d;
  wrong.password = "not-the-password";
  EXPECT_EQ(connection_bind(h, wrong, cid, kT0).code(), 401);
  EXPECT_TRUE(h.ports.binds.empty());
  d.nonce = std::string(*v.string(at::kNonce));
  EXPECT_EQ(connection_bind(h, d, cid, kT0).code(), 0);
}

TEST(ConnectionBind, AnotherUsersCredentialsGet441) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  Client carol = h.rest_client("198.51.100.7:40001", "carol");
  carol.tuple = data_connection(c, 40001, 2).tuple;
  carol.nonce = c.nonce;
  const auto r = connection_bind(h, carol, cid, kT0);
  EXPECT_EQ(r.code(), 441);
  EXPECT_EQ(stun::check_integrity(r.view(), carol.key()), stun::Integrity::kOk);
  Client alice = data_connection(c, 40002, 3);
  alice.username = "alice";
  alice.password = "alice-password";
  EXPECT_EQ(connection_bind(h, alice, cid, kT0).code(), 441);
  EXPECT_TRUE(h.ports.binds.empty());
  Client d = data_connection(c, 40003, 4);
  EXPECT_EQ(connection_bind(h, d, cid, kT0).code(), 0);
}

// ---------------------------------------------------------------------------------------------
// The ConnectionBind timer (RFC 6062 sections 5.2 and 5.3)

TEST(TcpTimers, ConnectedPeerWithoutConnectionBindClosesAt30Seconds) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const auto cid = connect_started(h, c, kPeer, kT0);
  ASSERT_TRUE(cid);
  EXPECT_EQ(h.server->on_timer(kT0 + 40 * kSecond), kT0 + 41 * kSecond);
  EXPECT_TRUE(h.ports.closed_peers.empty()) << "no ConnectionBind timer while connecting";
  // Connected at +45 s: the 30 s count from there.
  const TimeMs connected = kT0 + 45 * kSecond;
  ASSERT_EQ(response_of(h.server->on_peer_connected(*cid, true, connected))->code(), 0);
  const TimeMs deadline = connected + 30 * kSecond;
  EXPECT_EQ(h.server->on_timer(deadline - 500), deadline) << "the next deadline is the ConnectionBind's";
  EXPECT_EQ(h.server->on_timer(deadline - 1), deadline);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  h.server->on_timer(deadline);
  EXPECT_EQ(h.ports.closed_peers, std::vector<ConnectionId>{*cid});
  h.server->on_timer(deadline + 10 * kSecond);
  EXPECT_EQ(h.ports.closed_peers.size(), 1u) << "closed once";
  Client d = data_connection(c, 40001, 2);
  EXPECT_EQ(connection_bind(h, d, *cid, deadline).code(), 400);
  EXPECT_TRUE(h.ports.binds.empty());
  EXPECT_EQ(h.server->allocation_count(), 1u) << "the allocation lives on";
  EXPECT_TRUE(connect_started(h, c, kPeer, deadline).has_value()) << "the peer can be connected again";
}

TEST(TcpTimers, ConnectionAttemptWithoutConnectionBindClosesAt30Seconds) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  const TimeMs attempted = kT0 + 7 * kSecond;
  std::optional<ConnectionId> cid;
  ASSERT_TRUE(peer_connects(h, relay.id, kPeer, attempted, &cid).has_value());
  ASSERT_TRUE(cid);
  const TimeMs deadline = attempted + 30 * kSecond;
  EXPECT_EQ(h.server->on_timer(deadline - 500), deadline);
  h.server->on_timer(deadline - 1);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  EXPECT_EQ(h.server->on_timer(deadline), deadline + kSecond);
  EXPECT_EQ(h.ports.closed_peers, std::vector<ConnectionId>{*cid});
  Client d = data_connection(c, 40001, 2);
  EXPECT_EQ(connection_bind(h, d, *cid, deadline).code(), 400);
}

// The core's deadlines are exact whether or not on_timer has run yet (an allocation is gone at
// its expiry even before the timer, expiry_test.cpp): a ConnectionBind that arrives once the
// 30 s are over must not claim the connection, which "MUST be closed".
TEST(TcpTimers, ConnectionBindAtTheDeadlineBeforeTheTimerRunsGets400) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  const TimeMs deadline = kT0 + 30 * kSecond;
  Client d = data_connection(c, 40001, 2);
  EXPECT_EQ(connection_bind(h, d, cid, deadline).code(), 400);
  EXPECT_TRUE(h.ports.binds.empty());
  h.server->on_timer(deadline);
  EXPECT_EQ(h.ports.closed_peers, std::vector<ConnectionId>{cid}) << "closed, once";
}

TEST(TcpTimers, BoundConnectionIsNotClosed) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  const ConnectionId cid = connect_ok(h, c, kPeer, kT0);
  ASSERT_NE(cid, 0u);
  ASSERT_EQ(h.create_permission(c, kPeer2, kT0).code(), 0);
  std::optional<ConnectionId> inbound;
  ASSERT_TRUE(peer_connects(h, relay.id, kPeer2, kT0, &inbound).has_value());
  Client d1 = data_connection(c, 40001, 2);
  Client d2 = data_connection(c, 40002, 3);
  ASSERT_EQ(connection_bind(h, d1, cid, kT0 + 30 * kSecond - 1).code(), 0) << "in time, by 1 ms";
  ASSERT_EQ(connection_bind(h, d2, *inbound, kT0 + 30 * kSecond - 1).code(), 0);
  for (const TimeMs t : {kT0 + 30 * kSecond, kT0 + 31 * kSecond, kT0 + 300 * kSecond}) h.server->on_timer(t);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  EXPECT_EQ(h.server->on_timer(kT0 + 500 * kSecond), kT0 + 501 * kSecond) << "no ConnectionBind deadline left";
}

// ---------------------------------------------------------------------------------------------
// Lifecycle (RFC 6062 section 5.5)

/// A TCP allocation with a peer connection in each state: connecting, waiting for its
/// ConnectionBind (after Connect and after a ConnectionAttempt), and bound.
struct FourConnections {
  RelayAddress relay;
  ConnectionId connecting = 0, pending = 0, attempt = 0, bound = 0;
  std::vector<ConnectionId> all() const { return sorted({connecting, pending, attempt, bound}); }
};
FourConnections four_connections(Harness& h, Client& c, TimeMs now = kT0) {
  FourConnections f;
  f.relay = allocate_tcp(h, c, now);
  f.connecting = connect_started(h, c, ep("93.184.216.40:1"), now).value_or(0);
  f.pending = connect_ok(h, c, ep("93.184.216.41:1"), now);
  f.bound = connect_ok(h, c, ep("93.184.216.42:1"), now);
  Client d = data_connection(c, static_cast<uint16_t>(c.tuple.client.port + 1), c.tuple.listener + 100);
  EXPECT_EQ(connection_bind(h, d, f.bound, now).code(), 0);
  EXPECT_EQ(h.create_permission(c, kPeer, now).code(), 0);
  std::optional<ConnectionId> attempt;
  EXPECT_TRUE(peer_connects(h, f.relay.id, kPeer, now, &attempt).has_value());
  f.attempt = attempt.value_or(0);
  const std::vector<ConnectionId> all = f.all();
  EXPECT_EQ(std::set<ConnectionId>(all.begin(), all.end()).size(), 4u);
  EXPECT_EQ(std::count(all.begin(), all.end(), ConnectionId{0}), 0);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  return f;
}

TEST(TcpLifecycle, RefreshZeroClosesEveryPeerConnectionAndTheRelay) {
  Harness h;
  Client c = stream_client(h);
  const FourConnections f = four_connections(h, c);
  const auto r = h.refresh(c, 0, kT0 + kSecond);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  EXPECT_EQ(sorted(h.ports.closed_peers), f.all());
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{f.relay.id});
  EXPECT_TRUE(h.ports.open_ids.empty());
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kRefreshZero);
  // Nothing of it is left: no ConnectionBind, no timer closing anything twice.
  Client d = data_connection(c, 40050, 50);
  EXPECT_EQ(connection_bind(h, d, f.pending, kT0 + 2 * kSecond).code(), 400);
  EXPECT_EQ(connection_bind(h, d, f.attempt, kT0 + 2 * kSecond).code(), 400);
  h.server->on_timer(kT0 + 60 * kSecond);
  EXPECT_EQ(h.ports.closed_peers.size(), 4u);
  EXPECT_EQ(h.ports.binds.size(), 1u);
}

TEST(TcpLifecycle, LateConnectedReportAfterTheAllocationEndedIsClosed) {
  Harness h;
  Client c = stream_client(h);
  allocate_tcp(h, c);
  const auto cid = connect_started(h, c, kPeer, kT0);
  ASSERT_TRUE(cid);
  ASSERT_EQ(h.refresh(c, 0, kT0 + 1).code(), 0);
  ASSERT_EQ(h.ports.closed_peers, std::vector<ConnectionId>{*cid});
  // relay/net's report crossed the close: nothing to answer, the connection is closed.
  EXPECT_EQ(h.server->on_peer_connected(*cid, true, kT0 + 2).kind, Output::Kind::kNone);
  EXPECT_EQ(h.ports.closed_peers.back(), *cid);
  EXPECT_EQ(h.server->on_peer_connected(*cid, false, kT0 + 2).kind, Output::Kind::kNone);
  EXPECT_EQ(h.ports.closed_peers.size(), 2u);
}

TEST(TcpLifecycle, ExpiryClosesEveryPeerConnectionAndTheRelay) {
  Harness h;
  Client c = stream_client(h);
  const FourConnections f = four_connections(h, c);
  const TimeMs expiry = kT0 + 600 * kSecond;
  h.server->on_timer(expiry - 1);
  EXPECT_EQ(sorted(h.ports.closed_peers), sorted({f.pending, f.attempt})) << "the unbound ones, at +30 s";
  h.server->on_timer(expiry);
  EXPECT_EQ(sorted(h.ports.closed_peers), f.all()) << "each closed exactly once";
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{f.relay.id});
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kExpired);
}

TEST(TcpLifecycle, ExpiryNoticedByARequestClosesThePeerConnections) {
  Harness h;
  Client c = stream_client(h);
  const FourConnections f = four_connections(h, c);
  const TimeMs expiry = kT0 + 600 * kSecond;
  h.challenge(c, expiry);
  EXPECT_EQ(h.request(c, Method::kConnect, peer_attr(kPeer2), expiry).code(), 437);
  EXPECT_EQ(sorted(h.ports.closed_peers), f.all());
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{f.relay.id});
  EXPECT_EQ(h.ports.connects.size(), 3u) << "the Connect on the expired allocation started nothing";
}

// The allocation is past its lifetime (no on_timer ran yet) when relay/net reports one of its
// Connects: on_peer_connected ends it, which must close every peer connection of it once.
// Each of the three connections is the reported one in turn (the order in which the core
// visits its table is not the order of the Connects).
TEST(TcpLifecycle, PeerConnectedAfterTheAllocationExpiredClosesEveryConnection) {
  for (const bool ok : {true, false}) {
    for (size_t k = 0; k < 3; ++k) {
      SCOPED_TRACE(::testing::Message() << "ok=" << ok << " reported=" << k);
      Harness h;
      Client c = stream_client(h);
      const RelayAddress relay = allocate_tcp(h, c);
      std::vector<ConnectionId> cids;
      for (uint16_t port = 7000; port < 7003; ++port) {
        Endpoint peer = kPeer;
        peer.port = port;
        const auto cid = connect_started(h, c, peer, kT0);
        ASSERT_TRUE(cid);
        cids.push_back(*cid);
      }
      const TimeMs expiry = kT0 + 600 * kSecond;
      EXPECT_EQ(h.server->on_peer_connected(cids[k], ok, expiry).kind, Output::Kind::kNone)
          << "nothing to answer on an ended allocation";
      EXPECT_EQ(h.server->allocation_count(), 0u);
      EXPECT_EQ(h.ports.closed, std::vector<RelayId>{relay.id});
      EXPECT_EQ(sorted(h.ports.closed_peers), sorted(cids)) << "every peer connection closed, once";
      // None of them is remembered: reports for the others are ignored.
      for (const ConnectionId cid : cids) {
        EXPECT_EQ(h.server->on_peer_connected(cid, false, expiry).kind, Output::Kind::kNone);
      }
    }
  }
}

TEST(TcpLifecycle, ControlConnectionClosedClosesEveryPeerConnection) {
  Harness h;
  Client c = stream_client(h);
  const FourConnections f = four_connections(h, c);
  // A data connection closing is relay/net's business (on_peer_closed), not an allocation's end.
  h.server->on_client_closed(h.ports.binds.at(0).client, kT0 + 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  h.server->on_client_closed(c.tuple, kT0 + 2);
  EXPECT_EQ(sorted(h.ports.closed_peers), f.all());
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{f.relay.id});
  EXPECT_EQ(h.server->allocation_count(), 0u);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kTransportClosed);
}

TEST(TcpLifecycle, ShutdownClosesEveryPeerConnectionOfEveryAllocation) {
  Harness h;
  Client c1 = stream_client(h);
  Client c2 = stream_client(h, Transport::kTls, "198.51.100.8:40000", "carol");
  c2.tuple.listener = 500;
  const FourConnections f1 = four_connections(h, c1);
  const FourConnections f2 = four_connections(h, c2);
  Client udp = h.rest_client("198.51.100.9:5000");
  h.allocate(udp, kT0);
  h.server->shutdown(kT0 + 1);
  std::vector<ConnectionId> all = f1.all();
  const std::vector<ConnectionId> all2 = f2.all();
  all.insert(all.end(), all2.begin(), all2.end());
  EXPECT_EQ(sorted(h.ports.closed_peers), sorted(all));
  EXPECT_TRUE(h.ports.open_ids.empty()) << "every relay closed";
  EXPECT_EQ(h.ports.closed.size(), 3u);
  EXPECT_EQ(h.server->allocation_count(), 0u);
}

TEST(TcpLifecycle, PeerClosedForgetsTheConnection) {
  Harness h;
  Client c = stream_client(h);
  const FourConnections f = four_connections(h, c);
  for (const ConnectionId cid : {f.pending, f.bound, f.attempt, f.connecting}) {
    h.server->on_peer_closed(cid, kT0 + 1);
  }
  EXPECT_TRUE(h.ports.closed_peers.empty()) << "relay/net closed them already";
  Client d = data_connection(c, 40070, 70);
  EXPECT_EQ(connection_bind(h, d, f.pending, kT0 + 2).code(), 400);
  EXPECT_EQ(connection_bind(h, d, f.attempt, kT0 + 2).code(), 400);
  EXPECT_EQ(h.ports.binds.size(), 1u);
  // The same peers may be connected again.
  EXPECT_TRUE(connect_started(h, c, ep("93.184.216.40:1"), kT0 + 3).has_value()) << "was connecting";
  EXPECT_TRUE(connect_started(h, c, ep("93.184.216.41:1"), kT0 + 3).has_value()) << "was pending";
  EXPECT_TRUE(connect_started(h, c, ep("93.184.216.42:1"), kT0 + 3).has_value()) << "was bound";
  std::optional<ConnectionId> again;
  EXPECT_TRUE(peer_connects(h, f.relay.id, kPeer, kT0 + 3, &again).has_value()) << "was attempted";
  // A late report for a forgotten connection is not answered; the timer closes none of them.
  EXPECT_EQ(h.server->on_peer_connected(f.connecting, false, kT0 + 4).kind, Output::Kind::kNone);
  h.server->on_timer(kT0 + 29 * kSecond);
  EXPECT_TRUE(h.ports.closed_peers.empty());
  // Ending the allocation closes only the live ones.
  ASSERT_EQ(h.refresh(c, 0, kT0 + 29 * kSecond).code(), 0);
  EXPECT_EQ(h.ports.closed_peers.size(), 4u);
  for (const ConnectionId cid : f.all()) {
    EXPECT_EQ(std::count(h.ports.closed_peers.begin(), h.ports.closed_peers.end(), cid), 0) << cid;
  }
}

TEST(TcpLifecycle, SendIsDroppedAndChannelBindGets400) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  ASSERT_EQ(h.create_permission(c, kPeer, kT0).code(), 0);
  const auto send = c.build(Method::kSend, [](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, kPeer);
    b.add_bytes(at::kData, std::vector<uint8_t>{1, 2, 3});
  }, false, c.next_tid(), stun::Class::kIndication);
  const size_t drops = h.observer.drops.size();
  EXPECT_EQ(h.server->on_client_packet(c.tuple, send, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.size(), drops + 1);
  EXPECT_EQ(h.observer.created.at(0)->traffic.packets_to_peer.get(), 0u);

  const auto bind = h.channel_bind(c, 0x4000, kPeer2, kT0);
  EXPECT_EQ(bind.code(), 400);
  EXPECT_EQ(stun::check_integrity(bind.view(), c.key()), stun::Integrity::kOk);
  std::optional<ConnectionId> cid;
  EXPECT_FALSE(peer_connects(h, relay.id, kPeer2, kT0, &cid).has_value()) << "no permission installed";
  EXPECT_FALSE(cid.has_value());
  // No channel either: ChannelData for that number goes nowhere.
  const std::vector<uint8_t> cd{0x40, 0x00, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00};
  EXPECT_EQ(h.server->on_client_packet(c.tuple, cd, kT0).kind, Output::Kind::kNone);
}

TEST(TcpLifecycle, CreatePermissionAndRefreshWork) {
  Harness h;
  Client c = stream_client(h);
  const RelayAddress relay = allocate_tcp(h, c);
  const auto perm = h.create_permission(c, kPeer, kT0);
  ASSERT_EQ(perm.code(), 0);
  EXPECT_EQ(stun::check_integrity(perm.view(), c.key()), stun::Integrity::kOk);
  std::optional<ConnectionId> cid;
  EXPECT_TRUE(peer_connects(h, relay.id, kPeer, kT0, &cid).has_value());
  EXPECT_TRUE(cid.has_value());
  EXPECT_EQ(h.create_permission(c, ep("10.1.1.1:1"), kT0).code(), 403);
  EXPECT_EQ(h.create_permission(c, ep("[2606:4700::1]:1"), kT0).code(), 443);

  const auto r = h.refresh(c, 1200, kT0 + 100 * kSecond);
  ASSERT_EQ(r.code(), 0);
  EXPECT_EQ(r.view().u32(at::kLifetime), 1200u);
  EXPECT_EQ(stun::check_integrity(r.view(), c.key()), stun::Integrity::kOk);
  const TimeMs expiry = kT0 + 1300 * kSecond;
  h.server->on_timer(kT0 + 600 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 1u) << "refreshed past the first 600 s";
  EXPECT_TRUE(h.ports.closed.empty());
  h.server->on_timer(expiry - 1);
  EXPECT_EQ(h.server->allocation_count(), 1u);
  h.server->on_timer(expiry);
  EXPECT_EQ(h.server->allocation_count(), 0u);
  EXPECT_EQ(h.ports.closed, std::vector<RelayId>{relay.id});
}

}  // namespace
}  // namespace callrelay::core::testing
