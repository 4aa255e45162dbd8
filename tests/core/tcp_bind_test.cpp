// RFC 6062 core tests: ConnectionBind (5.4), its 30 s timer, peer connection lifecycle (5.5).
#include <algorithm>
#include <set>
#include <vector>

#include "tests/core/tcp_relay_support.hpp"

namespace callrelay::core::testing {
namespace {

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

TEST(TcpLifecycle, EndingOneAllocationClosesOnlyItsOwnPeerConnections) {
  Harness h;
  Client c1 = stream_client(h);
  Client c2 = stream_client(h, Transport::kTls, "198.51.100.8:40000", "carol");
  c2.tuple.listener = 500;
  const FourConnections f1 = four_connections(h, c1);
  const FourConnections f2 = four_connections(h, c2);
  h.server->on_client_closed(c1.tuple, kT0 + 1);
  EXPECT_EQ(sorted(h.ports.closed_peers), f1.all());
  EXPECT_EQ(h.server->allocation_count(), 1u);
  // c2's connections live on, its pending ones until their own ConnectionBind deadline.
  h.server->on_timer(kT0 + 30 * kSecond);
  EXPECT_EQ(h.ports.closed_peers.size(), 6u) << "c2's two waiting for a ConnectionBind";
  h.server->on_client_closed(c2.tuple, kT0 + 30 * kSecond + 1);
  std::vector<ConnectionId> all = f1.all();
  const std::vector<ConnectionId> all2 = f2.all();
  all.insert(all.end(), all2.begin(), all2.end());
  EXPECT_EQ(sorted(h.ports.closed_peers), sorted(all)) << "each closed once";
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
