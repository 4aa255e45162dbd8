// Shared relay ports (relay.multiplex_peers): RelaySockets' placement and demultiplexer with
// real sockets on 127.0.0.1, then a real server whose clients share a relay port: datagrams
// from peers reach the allocation that sent to them or the one whose permission covers them,
// ambiguous ones are dropped, and two clients of one port reach each other inside the process.
#include <gtest/gtest.h>

#include <set>

#include "relay/core/auth.hpp"
#include "relay/net/relay_sockets.hpp"
#include "relay/net/server.hpp"
#include "relay/net/socket_ops.hpp"
#include "tests/net/net_test_support.hpp"
#include "tests/net/rest_server.hpp"

namespace callrelay::net {
namespace {

using testing::bytes;
using testing::loopback;
using testing::TurnClient;
using testing::UdpSocket;

constexpr uint16_t kMin = 64700;
constexpr uint16_t kMax = 64731;

RelayNetSettings shared_settings(uint32_t per_port) {
  RelayNetSettings s;
  s.port_min = kMin;
  s.port_max = kMax;
  s.multiplex_peers = true;
  s.allocations_per_port = per_port;
  return s;
}

stun::Endpoint at(std::array<uint8_t, 4> ip, uint16_t port) { return stun::Endpoint::v4(ip, port); }

/// Opens a shared relay; fails the test when no port is free.
core::RelayAddress open_shared(RelaySockets& relays, core::RelayId* host = nullptr) {
  core::RelayId h = RelaySockets::kNoRelay;
  const auto opened = relays.open_shared(stun::Family::kIPv4, loopback(3478), &h);
  EXPECT_TRUE(opened) << "no free port in " << kMin << "-" << kMax;
  if (host != nullptr) *host = h;
  return opened ? opened->relay : core::RelayAddress{};
}

TEST(SharedPorts, AllocationsShareASocketUpToAllocationsPerPort) {
  asio::io_context ctx;
  RelaySockets relays(ctx, shared_settings(2), 0, 1, {loopback(3478)});
  core::RelayId h1 = 0, h2 = 0, h3 = 0;
  const auto a = open_shared(relays, &h1);
  const auto b = open_shared(relays, &h2);
  const auto c = open_shared(relays, &h3);
  ASSERT_NE(h1, RelaySockets::kNoRelay);  // the first opened a shared socket
  EXPECT_EQ(h2, RelaySockets::kNoRelay);  // the second joined it
  ASSERT_NE(h3, RelaySockets::kNoRelay);  // the third found it full
  EXPECT_EQ(a.address, b.address);
  EXPECT_NE(a.address.port, c.address.port);
  EXPECT_NE(a.id, b.id);  // each relay keeps an id of its own for the core
  EXPECT_TRUE(relays.is_shared(a.id));
  EXPECT_EQ(relays.host_of(a.id), h1);
  EXPECT_EQ(relays.fd(a.id), relays.fd(h1));
  EXPECT_EQ(relays.fd(b.id), relays.fd(h1));
  EXPECT_EQ(local_endpoint(relays.fd(h1)), std::optional<stun::Endpoint>(a.address));
  EXPECT_EQ(relays.shared_count(), 2u);
  EXPECT_EQ(relays.open_count(), 2u);  // sockets, not relays
  EXPECT_EQ(relays.members(h1), 2u);
}

TEST(SharedPorts, PortGivenBackWhenItsLastAllocationEnds) {
  asio::io_context ctx;
  RelaySockets relays(ctx, shared_settings(2), 0, 1, {loopback(3478)});
  const size_t free_before = relays.ports(loopback(0)).free_count();
  core::RelayId host = 0;
  const auto a = open_shared(relays, &host);
  const auto b = open_shared(relays);
  EXPECT_EQ(relays.ports(loopback(0)).free_count(), free_before - 1);
  relays.close(a.id);
  EXPECT_TRUE(relays.is_host(host));  // b still uses it
  EXPECT_EQ(relays.fd(a.id), -1);
  EXPECT_EQ(relays.members(host), 1u);
  relays.close(b.id);
  EXPECT_FALSE(relays.is_host(host));
  EXPECT_EQ(relays.shared_count(), 0u);
  EXPECT_EQ(relays.open_count(), 0u);
  EXPECT_EQ(relays.ports(loopback(0)).free_count(), free_before);
  // The socket is closed: the port can be bound again.
  UdpSocket again(a.address.port);
  EXPECT_TRUE(again.ok());
}

TEST(SharedPorts, RoutesByExactPeerTupleThenByPermission) {
  asio::io_context ctx;
  RelaySockets relays(ctx, shared_settings(4), 0, 1, {loopback(3478)});
  core::RelayId host = 0;
  const auto a = open_shared(relays, &host);
  const auto b = open_shared(relays);
  const auto p1 = at({192, 0, 2, 1}, 5000), p2 = at({192, 0, 2, 1}, 5001);
  const auto p3 = at({192, 0, 2, 1}, 5002), other = at({198, 51, 100, 7}, 9);
  // Both permit 192.0.2.1; only a permits 198.51.100.7.
  const auto permits_for = [&](const stun::Endpoint& peer) {
    return [&, peer](core::RelayId id) {
      return peer.same_ip(p1) || (id == a.id && peer.same_ip(other));
    };
  };
  EXPECT_TRUE(relays.learn(a.id, p1, permits_for(p1)));
  EXPECT_TRUE(relays.learn(b.id, p2, permits_for(p2)));
  EXPECT_EQ(relays.learned(host), 2u);
  bool ambiguous = true;
  EXPECT_EQ(relays.route(host, p1, permits_for(p1), &ambiguous), a.id);
  EXPECT_FALSE(ambiguous);
  EXPECT_EQ(relays.route(host, p2, permits_for(p2), &ambiguous), b.id);
  EXPECT_FALSE(ambiguous);
  // Permission fallback: one candidate.
  EXPECT_EQ(relays.route(host, other, permits_for(other), &ambiguous), a.id);
  EXPECT_FALSE(ambiguous);
  // Several candidates and no exact entry: dropped.
  EXPECT_EQ(relays.route(host, p3, permits_for(p3), &ambiguous), RelaySockets::kNoRelay);
  EXPECT_TRUE(ambiguous);
  // Nobody permits: handed to a relay of the socket (the core drops and counts it).
  const auto none = [](core::RelayId) { return false; };
  const auto to = relays.route(host, at({203, 0, 113, 1}, 1), none, &ambiguous);
  EXPECT_FALSE(ambiguous);
  EXPECT_TRUE(to == a.id || to == b.id);
  // Learning a tuple again costs nothing new.
  EXPECT_TRUE(relays.learn(a.id, p1, permits_for(p1)));
  EXPECT_EQ(relays.learned(host), 2u);
}

TEST(SharedPorts, SecondSenderToTheSamePeerIsRefusedUntilTheFirstNoLongerPermitsIt) {
  asio::io_context ctx;
  RelaySockets relays(ctx, shared_settings(4), 0, 1, {loopback(3478)});
  core::RelayId host = 0;
  const auto a = open_shared(relays, &host);
  const auto b = open_shared(relays);
  const auto peer = at({192, 0, 2, 1}, 5000);
  bool a_permits = true;
  const auto permits = [&](core::RelayId id) { return id == a.id ? a_permits : true; };
  ASSERT_TRUE(relays.learn(a.id, peer, permits));
  EXPECT_FALSE(relays.learn(b.id, peer, permits));  // the peer could not tell them apart
  bool ambiguous = true;
  EXPECT_EQ(relays.route(host, peer, permits, &ambiguous), a.id);
  a_permits = false;  // a's permission expired: b may take the entry over
  EXPECT_TRUE(relays.learn(b.id, peer, permits));
  EXPECT_EQ(relays.route(host, peer, permits, &ambiguous), b.id);
  EXPECT_FALSE(ambiguous);
}

TEST(SharedPorts, EntriesOfAClosedRelayAreRemoved) {
  asio::io_context ctx;
  RelaySockets relays(ctx, shared_settings(4), 0, 1, {loopback(3478)});
  core::RelayId host = 0;
  const auto a = open_shared(relays, &host);
  const auto b = open_shared(relays);
  const auto c = open_shared(relays);
  const auto p1 = at({192, 0, 2, 1}, 5000), p2 = at({192, 0, 2, 1}, 5001);
  const auto all = [](core::RelayId) { return true; };
  ASSERT_TRUE(relays.learn(a.id, p1, all));
  ASSERT_TRUE(relays.learn(a.id, p2, all));
  ASSERT_TRUE(relays.learn(b.id, at({192, 0, 2, 2}, 1), all));
  EXPECT_EQ(relays.learned(host), 3u);
  relays.close(a.id);
  EXPECT_EQ(relays.learned(host), 1u);
  // p1 is routed by permission now: c alone permits it.
  const auto only_c = [&](core::RelayId id) { return id == c.id; };
  bool ambiguous = true;
  EXPECT_EQ(relays.route(host, p1, only_c, &ambiguous), c.id);
  EXPECT_FALSE(ambiguous);
  // And a new sender to p1 takes it without conflict.
  EXPECT_TRUE(relays.learn(b.id, p1, all));
}

TEST(SharedPorts, LoopTargetIsTheOtherRelayOfThePortThatPermitsIt) {
  asio::io_context ctx;
  RelaySockets relays(ctx, shared_settings(4), 0, 1, {loopback(3478)});
  const auto a = open_shared(relays);
  const auto b = open_shared(relays);
  bool own = false, ambiguous = false;
  const auto all = [](core::RelayId) { return true; };
  EXPECT_EQ(relays.loop_target(a.id, a.address, all, &own, &ambiguous), b.id);
  EXPECT_TRUE(own);
  EXPECT_EQ(relays.loop_target(b.id, b.address, all, &own, &ambiguous), a.id);
  // Not the socket's own address: an ordinary send.
  EXPECT_EQ(relays.loop_target(a.id, at({192, 0, 2, 1}, a.address.port), all, &own, &ambiguous),
            RelaySockets::kNoRelay);
  EXPECT_FALSE(own);
  // Two others permit it: dropped.
  const auto c = open_shared(relays);
  EXPECT_EQ(relays.loop_target(a.id, a.address, all, &own, &ambiguous), RelaySockets::kNoRelay);
  EXPECT_TRUE(own);
  EXPECT_TRUE(ambiguous);
  const auto only_c = [&](core::RelayId id) { return id == c.id; };
  EXPECT_EQ(relays.loop_target(a.id, a.address, only_c, &own, &ambiguous), c.id);
}

// --- a real server ----------------------------------------------------------------------

constexpr char kSecret[] = "shared-ports-secret";
constexpr char kRealm[] = "shared.test";

/// A one-worker server whose UDP allocations share relay ports, `per_port` to a port.
class SharedServer : public testing::RestServer {
 public:
  explicit SharedServer(uint32_t per_port) : RestServer(settings(per_port), kRealm, kSecret) {}

 private:
  static ServerSettings settings(uint32_t per_port) {
    ServerSettings s;
    s.listen_udp = {loopback(0)};
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.relay.multiplex_peers = true;
    s.relay.allocations_per_port = per_port;
    s.workers = 1;
    return s;
  }
};

void permit(TurnClient& c, const stun::Endpoint& peer) {
  const auto r = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer);
  });
  ASSERT_TRUE(r);
  ASSERT_EQ(r->error_code(), 0);
}

void send(TurnClient& c, const stun::Endpoint& peer, std::string_view text) {
  c.send_raw(c.build(
      stun::Method::kSend, stun::Class::kIndication,
      [&](stun::MessageBuilder& b) {
        b.add_xor_address(stun::attr::kXorPeerAddress, peer);
        b.add_string(stun::attr::kData, text);
      },
      false));
}

/// The next Data indication at `c` (within `ms`): its peer and data.
std::optional<std::pair<stun::Endpoint, std::string>> data_at(TurnClient& c, int ms = testing::kWaitMs) {
  const auto raw = c.socket().receive(ms);
  if (!raw) return std::nullopt;
  const auto ind = stun::MessageView::parse(*raw);
  if (!ind || ind->method() != stun::Method::kData || !ind->data()) return std::nullopt;
  const auto peer = ind->xor_address(stun::attr::kXorPeerAddress);
  if (!peer) return std::nullopt;
  return std::make_pair(*peer, std::string(ind->data()->begin(), ind->data()->end()));
}

TEST(SharedPortsServer, PeersReachTheAllocationThatSentToThem) {
  SharedServer s(4);
  auto a = s.client();
  auto b = s.client();
  const auto ra = a->allocate();
  const auto rb = b->allocate();
  ASSERT_TRUE(ra && rb);
  ASSERT_EQ(*ra, *rb) << "both allocations should share one relay port";
  UdpSocket p1, p2, p3;
  const auto lo = loopback(0);
  permit(*a, lo);  // both permit 127.0.0.1: only the peer's port tells them apart
  permit(*b, lo);
  send(*a, p1.local(), "a->p1");
  send(*b, p2.local(), "b->p2");
  stun::Endpoint from;
  ASSERT_EQ(p1.receive(testing::kWaitMs, &from), std::optional(bytes("a->p1")));
  EXPECT_EQ(from, *ra);
  ASSERT_EQ(p2.receive(testing::kWaitMs, &from), std::optional(bytes("b->p2")));
  for (int i = 0; i < 3; ++i) {
    p1.send_to(*ra, bytes("to-a"));
    p2.send_to(*rb, bytes("to-b"));
    const auto got_a = data_at(*a);
    const auto got_b = data_at(*b);
    ASSERT_TRUE(got_a && got_b);
    EXPECT_EQ(got_a->first, p1.local());
    EXPECT_EQ(got_a->second, "to-a");
    EXPECT_EQ(got_b->first, p2.local());
    EXPECT_EQ(got_b->second, "to-b");
  }
  // A peer neither sent to, whose IP both permit: ambiguous, dropped.
  p3.send_to(*ra, bytes("who?"));
  EXPECT_FALSE(data_at(*a, 300));
  EXPECT_FALSE(data_at(*b, 300));
  // b sending to a's peer is refused while a permits it: p1 gets nothing from b.
  send(*b, p1.local(), "b->p1");
  EXPECT_FALSE(p1.receive(300));
}

TEST(SharedPortsServer, PermissionAloneRoutesAPeerNobodySentTo) {
  SharedServer s(4);
  auto a = s.client();
  auto b = s.client();
  const auto ra = a->allocate();
  const auto rb = b->allocate();
  ASSERT_TRUE(ra && rb);
  ASSERT_EQ(*ra, *rb);
  UdpSocket peer(at({127, 0, 0, 2}, 0));
  ASSERT_TRUE(peer.ok()) << "127.0.0.2 is not usable on this host's loopback";
  permit(*b, peer.local());  // only b permits 127.0.0.2
  peer.send_to(*ra, bytes("for-b"));
  const auto got = data_at(*b);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->first, peer.local());
  EXPECT_EQ(got->second, "for-b");
  EXPECT_FALSE(data_at(*a, 200));
}

TEST(SharedPortsServer, TwoClientsOfOnePortReachEachOtherInsideTheProcess) {
  SharedServer s(4);
  auto a = s.client();
  auto b = s.client();
  const auto ra = a->allocate();
  const auto rb = b->allocate();
  ASSERT_TRUE(ra && rb);
  ASSERT_EQ(*ra, *rb);
  permit(*a, *rb);
  permit(*b, *ra);
  for (int i = 0; i < 3; ++i) {
    send(*a, *rb, "hello b");
    const auto at_b = data_at(*b);
    ASSERT_TRUE(at_b) << "round " << i;
    EXPECT_EQ(at_b->first, *ra);  // as b's peer sees it: from the shared relay address
    EXPECT_EQ(at_b->second, "hello b");
    EXPECT_FALSE(data_at(*a, 100));  // never back to the sender
    send(*b, *ra, "hello a");
    const auto at_a = data_at(*a);
    ASSERT_TRUE(at_a);
    EXPECT_EQ(at_a->second, "hello a");
  }
}

TEST(SharedPortsServer, EvenPortAndReservationsKeepDedicatedPorts) {
  SharedServer s(4);
  auto shared1 = s.client();
  auto shared2 = s.client();
  const auto r1 = shared1->allocate();
  ASSERT_TRUE(r1);
  auto even = s.client();
  const auto r = even->request(stun::Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    const uint8_t reserve[1] = {0x80};
    b.add_bytes(stun::attr::kEvenPort, reserve);
  });
  ASSERT_TRUE(r);
  ASSERT_EQ(r->error_code(), 0);
  const auto even_addr = r->msg->xor_address(stun::attr::kXorRelayedAddress);
  const auto token = r->msg->reservation_token();
  ASSERT_TRUE(even_addr && token);
  EXPECT_EQ(even_addr->port % 2, 0);
  EXPECT_NE(even_addr->port, r1->port);
  auto rtcp = s.client();
  const auto next = rtcp->allocate(
      [&](stun::MessageBuilder& b) { b.add_u64(stun::attr::kReservationToken, *token); });
  ASSERT_TRUE(next);
  EXPECT_EQ(next->port, even_addr->port + 1);
  // The shared port still has room: the next ordinary allocation joins it, not the
  // dedicated ones.
  const auto r2 = shared2->allocate();
  ASSERT_TRUE(r2);
  EXPECT_EQ(*r2, *r1);
}

}  // namespace
}  // namespace callrelay::net
