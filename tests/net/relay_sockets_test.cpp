// RelaySockets: real UDP sockets bound from a worker's port slice.
#include "relay/net/relay_sockets.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "relay/net/socket_ops.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::net {
namespace {

using testing::ipv6_available;
using testing::kNoIpv6;
using testing::loopback;
using testing::UdpSocket;

// A small range of our own; other processes may hold some of these ports, so the tests only
// assert what holds whoever they are.
constexpr uint16_t kMin = 64800;
constexpr uint16_t kMax = 64815;

RelayNetSettings settings(uint16_t min = kMin, uint16_t max = kMax) {
  RelayNetSettings s;
  s.port_min = min;
  s.port_max = max;
  return s;
}

// Whether any epoll instance of this process has `fd` in its interest list: each one's
// /proc/self/fdinfo lists a "tfd:" line per registered descriptor.
bool in_an_epoll_set(int fd) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool found = false;
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    char target[64] = {};
    const std::string link = "/proc/self/fd/" + name;
    if (::readlink(link.c_str(), target, sizeof(target) - 1) < 0) continue;
    if (std::string(target) != "anon_inode:[eventpoll]") continue;
    std::ifstream info("/proc/self/fdinfo/" + name);
    for (std::string line; std::getline(info, line);) {
      int tfd = -1;
      if (std::sscanf(line.c_str(), "tfd: %d", &tfd) == 1 && tfd == fd) found = true;
    }
  }
  ::closedir(dir);
  return found;
}

// Waits (at most 5 s) until the relay sockets' epoll set has a ready socket, then lists them.
std::vector<RelaySockets::Ready> wait_ready(asio::io_context& ctx, RelaySockets& relays) {
  bool woken = false;
  relays.async_wait_ready([&](const asio::error_code& ec) { woken = !ec; });
  ctx.restart();
  ctx.run_for(std::chrono::seconds(5));
  if (!woken) return {};
  const auto ready = relays.ready();
  return {ready.begin(), ready.end()};
}

bool reported(const std::vector<RelaySockets::Ready>& ready, core::RelayId id,
              uint32_t generation) {
  for (const auto& r : ready) {
    if (r.id == id && r.generation == generation) return true;
  }
  return false;
}

TEST(RelaySockets, ASocketOfItsOwnLeavesTheEpollSetWithItsClose) {
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {loopback(3478)});
  const auto opened = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(opened);
  const core::RelayId id = opened->relay.id;
  const int fd = relays.fd(id);
  ASSERT_TRUE(in_an_epoll_set(fd));
  // A datagram makes the set readable and names the socket with its generation.
  UdpSocket peer(loopback(0));
  const uint8_t datagram[1] = {1};
  peer.send_to(opened->relay.address, datagram);
  const auto ready = wait_ready(ctx, relays);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].id, id);
  EXPECT_EQ(ready[0].generation, relays.generation(id));
  const uint32_t generation = relays.generation(id);
  relays.close(id);
  EXPECT_FALSE(in_an_epoll_set(fd));
  // What was reported before the close is recognisably stale.
  EXPECT_FALSE(relays.is_open(id, generation));
  EXPECT_TRUE(relays.ready().empty());
}

TEST(RelaySockets, OneWakeUpListsEveryReadySocketUntilEachIsReadEmpty) {
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {loopback(3478)});
  std::vector<core::RelayPorts::Opened> opened;
  for (int i = 0; i < 3; ++i) {
    auto o = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
    ASSERT_TRUE(o);
    opened.push_back(*o);
  }
  UdpSocket peer(loopback(0));
  const uint8_t datagram[1] = {1};
  for (const auto& o : opened) peer.send_to(o.relay.address, datagram);
  peer.send_to(opened[0].relay.address, datagram);  // two waiting on the first
  // All three are sent on loopback before the wait: one wake-up, one list.
  auto ready = wait_ready(ctx, relays);
  for (int tries = 0; ready.size() < 3 && tries < 50; ++tries) {
    ::usleep(10'000);
    const auto again = relays.ready();
    ready.assign(again.begin(), again.end());
  }
  ASSERT_EQ(ready.size(), 3u);
  for (const auto& o : opened) {
    EXPECT_TRUE(reported(ready, o.relay.id, relays.generation(o.relay.id)));
  }
  // Level-triggered: a socket not read empty stays listed, one read empty leaves the list.
  uint8_t buf[16];
  for (const auto& o : opened) {
    ASSERT_EQ(::recv(relays.fd(o.relay.id), buf, sizeof(buf), MSG_DONTWAIT), 1);
  }
  const auto left = relays.ready();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, opened[0].relay.id);
  ASSERT_EQ(::recv(relays.fd(opened[0].relay.id), buf, sizeof(buf), MSG_DONTWAIT), 1);
  EXPECT_TRUE(relays.ready().empty());
}

TEST(RelaySockets, AReleasedSocketLeavesTheSetAndStaysOpenAfterClose) {
  // The io_uring path takes the descriptor: the ring reads it and its owner closes it.
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {loopback(3478)});
  const auto opened = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(opened);
  const int fd = relays.release(opened->relay.id);
  ASSERT_EQ(fd, relays.fd(opened->relay.id));
  EXPECT_FALSE(in_an_epoll_set(fd));
  EXPECT_EQ(relays.release(opened->relay.id), -1);  // once
  relays.close(opened->relay.id);
  EXPECT_EQ(::fcntl(fd, F_GETFD), FD_CLOEXEC);  // still open: ours to close
  EXPECT_EQ(::close(fd), 0);
}

TEST(RelaySockets, WithoutPollingSocketsStayOutOfTheSet) {
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {loopback(3478)});
  relays.set_polling(false);
  const auto opened = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(opened);
  EXPECT_FALSE(in_an_epoll_set(relays.fd(opened->relay.id)));
}

TEST(RelaySockets, AReservationClaimedElsewhereLeavesTheOwnersEpollSet) {
  // The owner's descriptor closes while the claimer's duplicate keeps the socket: close(2)
  // alone would leave it registered in the owner's epoll set, so it is removed explicitly.
  RelayNetSettings s = settings();
  s.share = make_share(s);
  asio::io_context ctx_a, ctx_b;
  RelaySockets a(ctx_a, s, 0, 2, {loopback(3478)});
  RelaySockets b(ctx_b, s, 1, 2, {loopback(3478)});
  const auto opened = a.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(opened);
  const int fd_a = a.fd(opened->relay.id);
  a.share_reservation(42, opened->relay.id, 30'000);
  ASSERT_EQ(a.reservation_count(), 1u);
  bool moved = false;
  const auto claimed = b.claim_reservation(42, 1'000, &moved);
  ASSERT_TRUE(claimed);
  ASSERT_TRUE(moved);
  const int fd_b = b.fd(claimed->id);
  ASSERT_NE(fd_b, fd_a);
  ctx_a.poll();  // the owner lets go of its descriptor (detach)
  EXPECT_EQ(a.fd(opened->relay.id), -1);
  EXPECT_FALSE(in_an_epoll_set(fd_a));
  EXPECT_TRUE(in_an_epoll_set(fd_b));
  // The claimer reads the socket; the owner hears nothing of it.
  UdpSocket peer(loopback(0));
  const uint8_t datagram[1] = {1};
  peer.send_to(claimed->address, datagram);
  const auto ready = wait_ready(ctx_b, b);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].id, claimed->id);
  EXPECT_TRUE(a.ready().empty());
  b.close(claimed->id);
  EXPECT_FALSE(in_an_epoll_set(fd_b));
  a.close(opened->relay.id);
}

TEST(RelaySockets, OpensBoundSocketsOnTheClientsServerAddress) {
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {loopback(3478)});
  const auto opened = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(opened);
  const auto& addr = opened->relay.address;
  EXPECT_EQ(addr.ip_string(), "127.0.0.1");
  EXPECT_GE(addr.port, kMin);
  EXPECT_LE(addr.port, kMax);
  const int fd = relays.fd(opened->relay.id);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(local_endpoint(fd), std::optional<stun::Endpoint>(addr));
  EXPECT_EQ(relays.open_count(), 1u);
  relays.close(opened->relay.id);
  EXPECT_EQ(relays.fd(opened->relay.id), -1);
  EXPECT_EQ(relays.open_count(), 0u);
}

TEST(RelaySockets, SkipsPortsTakenByAnotherProcess) {
  asio::io_context ctx;
  // One worker's slice of four ports; block two of them from outside the slice's owner.
  const uint16_t lo = 64820, hi = 64823;
  UdpSocket block_a(lo), block_b(static_cast<uint16_t>(lo + 2));
  RelaySockets relays(ctx, settings(lo, hi), 0, 1, {});
  std::set<uint16_t> got;
  while (auto o = relays.open(stun::Family::kIPv4, loopback(3478), false, false)) {
    EXPECT_TRUE(got.insert(o->relay.address.port).second);
    ASSERT_LE(got.size(), 4u);
  }
  if (block_a.ok()) {
    EXPECT_EQ(got.count(lo), 0u);
  }
  if (block_b.ok()) {
    EXPECT_EQ(got.count(static_cast<uint16_t>(lo + 2)), 0u);
  }
  EXPECT_LE(got.size(), 2u);
}

TEST(RelaySockets, ExhaustionAnswersNulloptAndCloseFreesThePort) {
  asio::io_context ctx;
  const uint16_t lo = 64830, hi = 64833;
  RelaySockets relays(ctx, settings(lo, hi), 0, 1, {});
  std::vector<core::RelayId> ids;
  while (auto o = relays.open(stun::Family::kIPv4, loopback(3478), false, false)) {
    ids.push_back(o->relay.id);
    ASSERT_LE(ids.size(), 4u);
  }
  ASSERT_FALSE(ids.empty()) << "every port of " << lo << "-" << hi << " is taken on this host";
  EXPECT_FALSE(relays.open(stun::Family::kIPv4, loopback(3478), false, false));
  relays.close(ids.front());
  const auto again = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->relay.id, ids.front());  // slab slot reused: RelayIds stay dense
}

TEST(RelaySockets, EvenPortWithReservationBindsBothPorts) {
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {});
  const auto o = relays.open(stun::Family::kIPv4, loopback(3478), true, true);
  ASSERT_TRUE(o);
  ASSERT_TRUE(o->reserved_next);
  EXPECT_EQ(o->relay.address.port % 2, 0);
  EXPECT_EQ(o->reserved_next->address.port, o->relay.address.port + 1);
  EXPECT_GE(relays.fd(o->reserved_next->id), 0);
  EXPECT_NE(o->reserved_next->id, o->relay.id);
  EXPECT_EQ(relays.open_count(), 2u);
}

TEST(RelaySockets, AdvertisesTheExternalAddress) {
  asio::io_context ctx;
  auto s = settings();
  s.external_ipv4 = stun::Endpoint::parse_ip("203.0.113.7", 0);
  RelaySockets relays(ctx, s, 0, 1, {});
  const auto o = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->relay.address.ip_string(), "203.0.113.7");
  EXPECT_EQ(local_endpoint(relays.fd(o->relay.id))->port, o->relay.address.port);
}

TEST(RelaySockets, OtherFamilyNeedsAnAddress) {
  asio::io_context ctx;
  const auto any4 = *stun::Endpoint::parse("0.0.0.0:3478");
  const auto public4 = *stun::Endpoint::parse("198.51.100.1:3478");
  RelaySockets relays(ctx, settings(), 0, 1, {any4});
  EXPECT_TRUE(relays.supports(stun::Family::kIPv4));
  EXPECT_FALSE(relays.supports(stun::Family::kIPv6)) << "no IPv6 address known: 440";
  EXPECT_FALSE(relays.open(stun::Family::kIPv6, public4, false, false));
}

// --- IPv6 and dual-stack relays (RFC 8656 REQUESTED-/ADDITIONAL-ADDRESS-FAMILY) -------------

const stun::Endpoint kLoop6 = *stun::Endpoint::parse("[::1]:3478");

/// Skips the calling test when this host cannot bind [::1] at all.
TEST(RelaySockets, IPv6RelayOnTheIPv6AddressTheClientReached) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {kLoop6});
  EXPECT_TRUE(relays.supports(stun::Family::kIPv6));
  const auto o = relays.open(stun::Family::kIPv6, kLoop6, false, false);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->relay.address.ip_string(), "::1");
  EXPECT_EQ(local_endpoint(relays.fd(o->relay.id)), std::optional<stun::Endpoint>(o->relay.address));
  // An IPv6-only loopback server still relays IPv4 on 127.0.0.1 (REQUESTED-ADDRESS-FAMILY
  // absent means IPv4).
  EXPECT_TRUE(relays.supports(stun::Family::kIPv4));
  const auto o4 = relays.open(stun::Family::kIPv4, kLoop6, false, false);
  ASSERT_TRUE(o4);
  EXPECT_EQ(o4->relay.address.ip_string(), "127.0.0.1");
}

TEST(RelaySockets, IPv4LoopbackListenerRelaysIPv6OnLoopback) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  asio::io_context ctx;
  RelaySockets relays(ctx, settings(), 0, 1, {loopback(3478)});
  EXPECT_TRUE(relays.supports(stun::Family::kIPv6));
  const auto v4 = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  const auto v6 = relays.open(stun::Family::kIPv6, loopback(3478), false, false);
  ASSERT_TRUE(v4);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v4->relay.address.ip_string(), "127.0.0.1");
  EXPECT_EQ(v6->relay.address.ip_string(), "::1");
  EXPECT_NE(v4->relay.id, v6->relay.id);
  EXPECT_EQ(local_endpoint(relays.fd(v6->relay.id)), std::optional<stun::Endpoint>(v6->relay.address));
  EXPECT_EQ(relays.open_count(), 2u);
  relays.close(v6->relay.id);
  relays.close(v4->relay.id);
  EXPECT_EQ(relays.open_count(), 0u);
}

TEST(RelaySockets, ConfiguredIPv6BindAndExternalAddressPerFamily) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  asio::io_context ctx;
  auto s = settings();
  s.bind_ipv6 = {*stun::Endpoint::parse("[::1]:0")};
  s.external_ipv4 = stun::Endpoint::parse_ip("203.0.113.7", 0);
  s.external_ipv6 = stun::Endpoint::parse_ip("2001:db8::7", 0);
  const auto any4 = *stun::Endpoint::parse("0.0.0.0:3478");
  RelaySockets relays(ctx, s, 0, 1, {any4});
  EXPECT_TRUE(relays.supports(stun::Family::kIPv6)) << "bind_ipv6 makes IPv6 relays possible";
  const auto v6 = relays.open(stun::Family::kIPv6, loopback(3478), false, false);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->relay.address.ip_string(), "2001:db8::7") << "external_ipv6 advertised";
  const auto bound = local_endpoint(relays.fd(v6->relay.id));
  ASSERT_TRUE(bound);
  EXPECT_EQ(bound->ip_string(), "::1") << "bound on bind_ipv6";
  EXPECT_EQ(bound->port, v6->relay.address.port);
  const auto v4 = relays.open(stun::Family::kIPv4, loopback(3478), false, false);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->relay.address.ip_string(), "203.0.113.7") << "external_ipv4 advertised";
}

}  // namespace
}  // namespace callrelay::net
