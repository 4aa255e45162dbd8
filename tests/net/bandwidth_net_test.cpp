// Caps and quotas on a real server over loopback: one user's allocation quota shared by two
// workers, and an RFC 6062 splice paced by its allocation's cap (reads pause, nothing is lost).
// Every wait is bounded; the RFC 6062 client is the integration tools' stream TURN client.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "base/limits.hpp"
#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "tests/integration/tools/stream_turn_client.hpp"
#include "tests/net/net_test_support.hpp"
#include "tests/net/rest_server.hpp"

namespace callrelay::net {
namespace {

using testing::loopback;
using testing::TurnClient;

constexpr char kRealm[] = "caps.test";
constexpr char kSecret[] = "caps-secret";

/// Which worker made each allocation (observers are per worker).
struct WorkerObserver : core::Observer {
  explicit WorkerObserver(std::atomic<int>* last, int index) : last_(last), index_(index) {}
  void on_allocation_created(const core::AllocationInfo&) override { last_->store(index_); }
  std::atomic<int>* last_;
  int index_;
};

/// Per-worker observers, made before the server (a base listed first) so they outlive it.
struct CapsObservers {
  std::atomic<int> last_worker{-1};
  std::array<WorkerObserver, 2> observers{WorkerObserver(&last_worker, 0),
                                          WorkerObserver(&last_worker, 1)};
};

/// A server on loopback with REST credentials, peers on 127.0.0.0/8 allowed, and counters.
struct CapsServer : CapsObservers, testing::RestServer {
  explicit CapsServer(const ServerSettings& s)
      : RestServer(s, kRealm, kSecret, [this](unsigned i) { return &observers[i % 2]; }) {}
};

uint16_t allocate_code(TurnClient& c) {
  const auto r = c.request(stun::Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
  });
  EXPECT_TRUE(r.has_value()) << "no answer to Allocate";
  return r ? r->error_code() : 0xFFFF;
}

TEST(BandwidthNet, TwoWorkersShareOneUsersQuota) {
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.relay.port_min = 50000;
  s.relay.port_max = 50999;
  s.workers = 2;
  s.core.max_allocations_per_user = 2;
  CapsServer srv(s);

  // Find a client address served by each worker: the kernel spreads clients by source; a
  // probe allocation (each for a user of its own) says which worker took it.
  // The probes stay open to the end: their allocations live on, and a later client given a
  // closed probe's port would find its 5-tuple in use (437).
  std::array<std::string, 2> ip_of_worker;
  std::vector<decltype(srv.client("", ""))> probes;
  for (int x = 2; x < 120 && (ip_of_worker[0].empty() || ip_of_worker[1].empty()); ++x) {
    const std::string ip = "127.0.0." + std::to_string(x);
    auto& probe = probes.emplace_back(srv.client("probe" + std::to_string(x), ip));
    srv.last_worker.store(-1);
    ASSERT_TRUE(probe->allocate()) << "probe allocation from " << ip;
    const int w = srv.last_worker.load();
    ASSERT_TRUE(w == 0 || w == 1);
    if (ip_of_worker[static_cast<size_t>(w)].empty()) ip_of_worker[static_cast<size_t>(w)] = ip;
  }
  ASSERT_FALSE(ip_of_worker[0].empty() || ip_of_worker[1].empty())
      << "no loopback source address reached both workers";

  auto on0 = srv.client("shared", ip_of_worker[0]);
  auto on1 = srv.client("shared", ip_of_worker[1]);
  ASSERT_EQ(allocate_code(*on0), 0);
  ASSERT_EQ(allocate_code(*on1), 0);
  EXPECT_EQ(srv.server->user_limits().allocations("shared"), 2u);
  // Each worker holds one of the user's two: a third is refused on either worker.
  auto again0 = srv.client("shared", ip_of_worker[0]);
  auto again1 = srv.client("shared", ip_of_worker[1]);
  EXPECT_EQ(allocate_code(*again0), 486);
  EXPECT_EQ(allocate_code(*again1), 486);
  EXPECT_EQ(srv.counters.hits(base::Limit::kUserQuota), 2u);
  // Deleting the one on worker 0 lets worker 1 allocate.
  const auto deleted = on0->request(stun::Method::kRefresh, [](stun::MessageBuilder& b) {
    b.add_u32(stun::attr::kLifetime, 0);
  });
  ASSERT_TRUE(deleted && deleted->error_code() == 0);
  EXPECT_EQ(allocate_code(*again1), 0);
}

TEST(BandwidthNet, SplicedTcpConnectionIsPacedNotDropped) {
  constexpr uint64_t kBps = 800'000;  // 100 kB/s; the bucket holds its 64 KiB floor
  constexpr size_t kBytes = 256 * 1024;
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.streams.listen_tcp = {loopback(0)};
  s.relay.port_min = 51000;
  s.relay.port_max = 51999;
  s.workers = 1;
  s.core.bandwidth.max_bps = kBps;
  s.core.bandwidth.user_max_bps = 0;
  s.core.bandwidth.burst_ms = 10;
  CapsServer srv(s);

  integ::TcpRelayTarget t;
  t.transport = "tcp";
  t.host = "127.0.0.1";
  t.port = srv.server->stream_listening().at(0).endpoint.port;
  t.username = CapsServer::username("paced");
  t.password = core::Authenticator::rest_password(kSecret, t.username);
  integ::TcpAllocation a(t);
  integ::Listener peer_listener;
  auto [cid, peer] = integ::connect_peer(a, peer_listener);
  auto data = a.bind_ok(cid);

  // 256 KiB each way at once, compared byte for byte (both_ways throws on a lost, reordered or
  // extra byte). Each direction is 192 KiB over its bucket: at 100 kB/s the splice must pause.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_NO_THROW(integ::both_ways(*data, *peer, kBytes, 7, 60'000));
  const auto took = std::chrono::steady_clock::now() - start;

  EXPECT_GT(srv.counters.hits(base::Limit::kBandwidthAllocation), 0u) << "the splice never paused";
  EXPECT_EQ(srv.counters.bytes(base::Limit::kBandwidthAllocation), 0u) << "a splice drops nothing";
  // The token bucket's lower bound: (256 KiB - 64 KiB) at 100 kB/s is 1.97 s per direction.
  // A slow machine only makes it longer, so this bound cannot fail for load.
  const auto floor_ms = static_cast<int64_t>((kBytes - core::kMinBurstBytes) * 8 * 1000 / kBps);
  EXPECT_GE(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), floor_ms * 9 / 10);
}

}  // namespace
}  // namespace callrelay::net
