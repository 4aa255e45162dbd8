// Several relay addresses of a family (relay.bind_ipv4 as a list) on loopback: 127.0.0.2 and
// 127.0.0.3, each with its own small port range. Allocations alternate between them, a full
// address passes its turn to the other, EVEN-PORT pairs and TCP relays stay on one address,
// and a real two-worker server answers 508 only once every port of both addresses is in use.
// Other processes may hold some of these ports: the checks hold whoever they are (a port the
// relay did not hand out must be one nobody can bind).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/limits.hpp"
#include "relay/core/auth.hpp"
#include "relay/net/relay_sockets.hpp"
#include "relay/net/server.hpp"
#include "relay/net/socket_ops.hpp"
#include "tests/net/net_test_support.hpp"
#include "tests/net/rest_server.hpp"

namespace callrelay::net {
namespace {

using testing::loopback;
using testing::TurnClient;
using testing::UdpSocket;

const stun::Endpoint kTwo = *stun::Endpoint::parse("127.0.0.2:0");
const stun::Endpoint kThree = *stun::Endpoint::parse("127.0.0.3:0");

RelayNetSettings two_addresses(uint16_t min, uint16_t max) {
  RelayNetSettings s;
  s.port_min = min;
  s.port_max = max;
  s.bind_ipv4 = {kTwo, kThree};
  return s;
}

stun::Endpoint at(const stun::Endpoint& ip, uint16_t port) {
  stun::Endpoint ep = ip;
  ep.port = port;
  return ep;
}

/// Every port of [min, max] on `ip` that is not in `held` can be bound by nobody: the relay
/// left none free behind.
void expect_no_free_port_left(const stun::Endpoint& ip, uint16_t min, uint16_t max,
                              const std::set<uint16_t>& held) {
  for (uint32_t p = min; p <= max; ++p) {
    const auto port = static_cast<uint16_t>(p);
    if (held.count(port) != 0) continue;
    const UdpSocket probe(at(ip, port));
    EXPECT_FALSE(probe.ok()) << ip.ip_string() << ":" << port << " was free, yet no relay took it";
  }
}

TEST(RelayAddresses, AllocationsAlternateAndAFullAddressPassesItsTurn) {
  asio::io_context ctx;
  const uint16_t lo = 64900, hi = 64903;
  RelaySockets relays(ctx, two_addresses(lo, hi), 0, 1, {loopback(3478)});
  EXPECT_TRUE(relays.supports(stun::Family::kIPv4));
  std::vector<core::RelayAddress> opened;
  std::map<std::string, std::set<uint16_t>> held;
  while (auto o = relays.open(stun::Family::kIPv4, loopback(3478), false, false)) {
    const auto& a = o->relay.address;
    // XOR-RELAYED-ADDRESS is the address the socket is bound to.
    EXPECT_EQ(local_endpoint(relays.fd(o->relay.id)), std::optional<stun::Endpoint>(a));
    ASSERT_TRUE(a.same_ip(kTwo) || a.same_ip(kThree)) << a.to_string();
    EXPECT_TRUE(held[a.ip_string()].insert(a.port).second) << a.to_string() << " twice";
    opened.push_back(o->relay);
    ASSERT_LE(opened.size(), 8u);
  }
  ASSERT_GE(opened.size(), 2u) << "the ports " << lo << "-" << hi << " are taken on this host";
  EXPECT_FALSE(opened[0].address.same_ip(opened[1].address))
      << "the second allocation goes to the other address";
  EXPECT_EQ(held.size(), 2u) << "both addresses serve allocations";
  // nullopt (508) only now that neither address has a port left.
  expect_no_free_port_left(kTwo, lo, hi, held["127.0.0.2"]);
  expect_no_free_port_left(kThree, lo, hi, held["127.0.0.3"]);

  // Free one port of 127.0.0.3 at a time: whichever address the rotation offers first, the
  // allocation ends up there (twice, so both turns of the rotation are covered).
  for (int round = 0; round < 2; ++round) {
    const auto it = std::find_if(opened.begin(), opened.end(), [](const core::RelayAddress& r) {
      return r.address.same_ip(kThree);
    });
    ASSERT_NE(it, opened.end());
    const uint16_t port = it->address.port;
    relays.close(it->id);
    opened.erase(it);
    const auto again = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
    ASSERT_TRUE(again) << "round " << round << ": 127.0.0.3 has a free port";
    EXPECT_TRUE(again->relay.address.same_ip(kThree)) << again->relay.address.to_string();
    EXPECT_EQ(again->relay.address.port, port);
    opened.push_back(again->relay);
  }
  relays.close_all();
  EXPECT_EQ(relays.open_count(), 0u);
  EXPECT_EQ(relays.ports(kTwo).free_count(), 4u);
  EXPECT_EQ(relays.ports(kThree).free_count(), 4u);
}

TEST(RelayAddresses, EachAddressHasItsOwnRangeSharedByTheWorkers) {
  asio::io_context ctx;
  const uint16_t lo = 64904, hi = 64905;
  RelayNetSettings s = two_addresses(lo, hi);
  s.share = make_share(s);
  RelaySockets w0(ctx, s, 0, 2, {loopback(3478)});
  RelaySockets w1(ctx, s, 1, 2, {loopback(3478)});
  // The workers start their rotations at different addresses.
  const auto a = w0.open(stun::Family::kIPv4, loopback(3478), false, false);
  const auto b = w1.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(a && b) << "the ports " << lo << "-" << hi << " are taken on this host";
  EXPECT_TRUE(a->relay.address.same_ip(kTwo)) << a->relay.address.to_string();
  EXPECT_TRUE(b->relay.address.same_ip(kThree)) << b->relay.address.to_string();
  // The same port number on both addresses at once: a port is a port of one address.
  std::map<std::string, std::set<uint16_t>> held;
  held[a->relay.address.ip_string()].insert(a->relay.address.port);
  held[b->relay.address.ip_string()].insert(b->relay.address.port);
  for (RelaySockets* w : {&w0, &w1, &w0, &w1, &w0}) {
    if (auto o = w->open(stun::Family::kIPv4, loopback(3478), false, false)) {
      EXPECT_TRUE(held[o->relay.address.ip_string()].insert(o->relay.address.port).second)
          << o->relay.address.to_string() << " handed out twice";
    }
  }
  expect_no_free_port_left(kTwo, lo, hi, held["127.0.0.2"]);
  expect_no_free_port_left(kThree, lo, hi, held["127.0.0.3"]);
  w0.close_all();
  w1.close_all();
  EXPECT_EQ(s.share->pool(s.share->pool_of(kTwo)).free_count(), 2u);
  EXPECT_EQ(s.share->pool(s.share->pool_of(kThree)).free_count(), 2u);
  EXPECT_EQ(s.share->pool(0).free_count(), 2u) << "the listeners' pool is not used";
}

TEST(RelayAddresses, EvenPortPairStaysOnOneAddress) {
  asio::io_context ctx;
  const uint16_t lo = 64912, hi = 64919;
  RelaySockets relays(ctx, two_addresses(lo, hi), 0, 1, {loopback(3478)});
  std::set<std::string> used;
  for (int i = 0; i < 2; ++i) {
    // RFC 8656 section 7.2 EVEN-PORT R=1: the reserved port+1 is on the relay's own address.
    const auto o = relays.open(stun::Family::kIPv4, loopback(3478), true, true);
    ASSERT_TRUE(o) << "no free even pair in " << lo << "-" << hi;
    ASSERT_TRUE(o->reserved_next);
    EXPECT_EQ(o->relay.address.port % 2, 0);
    EXPECT_TRUE(o->reserved_next->address.same_ip(o->relay.address));
    EXPECT_EQ(o->reserved_next->address.port, o->relay.address.port + 1);
    EXPECT_EQ(local_endpoint(relays.fd(o->reserved_next->id)),
              std::optional<stun::Endpoint>(o->reserved_next->address));
    used.insert(o->relay.address.ip_string());
  }
  EXPECT_EQ(used.size(), 2u) << "the two pairs are on the two addresses";
  relays.close_all();
}

TEST(RelayAddresses, TcpRelaysListenOnTheChosenAddress) {
  asio::io_context ctx;
  const uint16_t lo = 64920, hi = 64923;
  RelaySockets relays(ctx, two_addresses(lo, hi), 0, 1, {loopback(3478)});
  std::set<std::string> used;
  for (int i = 0; i < 2; ++i) {
    // RFC 6062: peers connect to the relayed address, so the listener is bound on it.
    const auto t = relays.open_tcp(stun::Family::kIPv4, loopback(3478));
    ASSERT_TRUE(t) << "no free port in " << lo << "-" << hi;
    EXPECT_EQ(t->bound, t->relay.address);
    EXPECT_EQ(local_endpoint(t->fd), std::optional<stun::Endpoint>(t->bound));
    used.insert(t->bound.ip_string());
    ::close(t->fd);
    relays.close(t->relay.id);
  }
  EXPECT_EQ(used.size(), 2u);
}

TEST(RelayAddresses, CapacityCountsEveryAddressInUse) {
  RelayNetSettings s = two_addresses(50000, 50099);
  const auto v4_only = *stun::Endpoint::parse("10.0.0.1:3478");
  EXPECT_EQ(relay_port_capacity(s, {v4_only}), 200u) << "no IPv6 relays: two ranges";
  // A loopback listener relays the other family on its loopback: that pool counts too.
  EXPECT_EQ(relay_port_capacity(s, {loopback(3478)}), 300u);
  s.bind_ipv4.clear();
  EXPECT_EQ(relay_port_capacity(s, {v4_only}), 100u) << "one range, as before";
}

// The whole server: two workers, a real TURN client per allocation.
constexpr char kRealm[] = "raddr.test";
constexpr char kSecret[] = "raddr-secret";

ServerSettings two_address_settings(uint16_t lo, uint16_t hi) {
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.relay = two_addresses(lo, hi);
  s.workers = 2;
  return s;
}

struct TwoAddressServer : testing::RestServer {
  TwoAddressServer(uint16_t lo, uint16_t hi)
      : RestServer(two_address_settings(lo, hi), kRealm, kSecret) {}
};

TEST(RelayAddresses, ServerSpreadsAllocationsAndAnswers508OnlyWhenAllAreFull) {
  const uint16_t lo = 64930, hi = 64931;
  TwoAddressServer srv(lo, hi);
  std::vector<std::unique_ptr<TurnClient>> clients;
  std::map<std::string, std::set<uint16_t>> held;
  std::vector<stun::Endpoint> relayed;
  uint16_t last_code = 0;
  for (int i = 0; i < 6; ++i) {
    auto c = srv.client();
    const auto r = c->request(stun::Method::kAllocate,
                              [](stun::MessageBuilder& b) { b.add_requested_transport(17); });
    ASSERT_TRUE(r && r->msg) << "no answer to Allocate " << i;
    last_code = r->error_code();
    if (last_code != 0) break;
    const auto addr = r->msg->xor_address(stun::attr::kXorRelayedAddress);
    ASSERT_TRUE(addr);
    ASSERT_TRUE(addr->same_ip(kTwo) || addr->same_ip(kThree)) << addr->to_string();
    EXPECT_TRUE(held[addr->ip_string()].insert(addr->port).second);
    relayed.push_back(*addr);
    clients.push_back(std::move(c));
  }
  // RFC 8656 section 7.2: 508 Insufficient Capacity once no relay address has a port.
  EXPECT_EQ(last_code, 508);
  EXPECT_LE(relayed.size(), 4u);
  EXPECT_EQ(held.size(), 2u) << "both addresses serve allocations";
  expect_no_free_port_left(kTwo, lo, hi, held["127.0.0.2"]);
  expect_no_free_port_left(kThree, lo, hi, held["127.0.0.3"]);
  EXPECT_EQ(srv.server->relay_ports_in_use(), relayed.size());

  // Each relayed address relays: a peer's datagram to it reaches its client.
  UdpSocket peer;
  for (size_t i = 0; i < relayed.size(); ++i) {
    TurnClient& c = *clients[i];
    const auto perm = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
      b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
    });
    ASSERT_TRUE(perm && perm->error_code() == 0);
    peer.send_to(relayed[i], testing::bytes("hello " + std::to_string(i)));
    const auto raw = c.socket().receive();
    ASSERT_TRUE(raw) << "nothing relayed from " << relayed[i].to_string();
    const auto msg = stun::MessageView::parse(*raw);
    ASSERT_TRUE(msg && msg->method() == stun::Method::kData);
    const auto data = msg->data();
    ASSERT_TRUE(data);
    EXPECT_EQ(std::string(data->begin(), data->end()), "hello " + std::to_string(i));
  }
  // A freed port is used again: the next Allocate succeeds.
  EXPECT_EQ(clients.back()
                ->request(stun::Method::kRefresh,
                          [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 0); })
                ->error_code(),
            0);
  auto late = srv.client();
  const auto again = late->allocate();
  ASSERT_TRUE(again) << "a port was freed, yet the Allocate failed";
  EXPECT_TRUE(again->same_ip(relayed.back())) << "the freed port's address is the one left";
}

}  // namespace
}  // namespace callrelay::net
