// The data path allocates nothing: relayed ChannelData both ways, counted by replacing the
// global operator new for this test binary. Only allocations on threads other than the test's
// own (the workers) are counted.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "relay/net/uring_relay.hpp"
#include "relay/stun/channel_data.hpp"
#include "tests/net/net_test_support.hpp"

namespace {
std::atomic<uint64_t> g_worker_allocations{0};
thread_local bool t_is_test_thread = false;

void* counted_alloc(std::size_t n) {
  if (!t_is_test_thread) g_worker_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace callrelay::net {
namespace {

using testing::loopback;
using testing::TurnClient;
using testing::UdpSocket;

// Both relay socket paths: io_uring and the epoll set (relay.io).
void relay_without_allocating(RelayIo io) {
  t_is_test_thread = true;
  set_relay_io(io);
  core::AuthConfig ac;
  ac.realm = "hot.path";
  ac.rest_secrets = {"hot-secret"};
  const core::Authenticator auth(ac);
  const core::NonceCodec nonces({}, 600);
  core::PeerPolicyConfig pc;
  pc.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
  const core::PeerPolicy policy(pc);
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.relay.port_min = 61000;
  s.relay.port_max = 65000;
  s.workers = 1;
  Server server(s, SharedAuth{auth, nonces, policy});
  server.start();

  const std::string user = std::to_string(now_ms() / 1000 + 3600) + ":hot";
  TurnClient c(server.listening().at(0), user,
               core::Authenticator::rest_password("hot-secret", user), "hot.path");
  UdpSocket peer;
  ASSERT_TRUE(c.allocate());
  const auto bind = c.request(stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
    b.add_channel_number(0x4002);
    b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  });
  ASSERT_TRUE(bind && bind->error_code() == 0);

  std::vector<uint8_t> frame(4 + 160, 0xAB);
  stun::write_channel_data_header(std::span<uint8_t, 4>(frame.data(), 4), 0x4002, 160);
  const auto round_trip = [&] {
    c.send_raw(frame);
    stun::Endpoint from;
    const auto got = peer.receive(testing::kWaitMs, &from);
    if (!got || got->size() != 160) return false;
    peer.send_to(from, *got);
    const auto back = c.socket().receive();
    return back && back->size() == frame.size();
  };
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(round_trip()) << "warm-up " << i;
  const uint64_t before = g_worker_allocations.load();
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(round_trip()) << "round trip " << i;
  const uint64_t during = g_worker_allocations.load() - before;
  EXPECT_EQ(during, 0u) << "heap allocations on the worker while relaying 600 packets ("
                        << to_string(io) << ")";
  server.stop();
  server.join();
  set_relay_io(RelayIo::kAuto);
}

TEST(HotPath, RelayingChannelDataAllocatesNothingWithIoUring) {
  if (!uring_unavailable().empty()) GTEST_SKIP() << "io_uring unavailable: " << uring_unavailable();
  relay_without_allocating(RelayIo::kUring);
}

TEST(HotPath, RelayingChannelDataAllocatesNothingWithEpoll) {
  relay_without_allocating(RelayIo::kEpoll);
}

}  // namespace
}  // namespace callrelay::net
