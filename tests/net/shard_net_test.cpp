// Sharding on a real two-worker server over loopback: clients behind one address spread over
// both workers (the kernel's SO_REUSEPORT hash of the whole 5-tuple), a RESERVATION-TOKEN is
// claimed on whichever worker the second Allocate reaches, requests from another port of the
// same client get 437 wherever they land, and a user's quota holds across workers. Which
// worker handled what is read from per-worker observers; every wait is bounded.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "base/limits.hpp"
#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "tests/net/net_test_support.hpp"
#include "tests/net/rest_server.hpp"

namespace callrelay::net {
namespace {

using testing::loopback;
using testing::TurnClient;
using testing::UdpSocket;

constexpr char kRealm[] = "shard.test";
constexpr char kSecret[] = "shard-secret";

/// Counts, per worker, the allocations made and the answers given with a given error code.
struct WorkerObserver : core::Observer {
  WorkerObserver(std::atomic<int>* last, int index) : last_(last), index_(index) {}
  void on_allocation_created(const core::AllocationInfo&) override {
    created.fetch_add(1);
    last_->store(index_);
  }
  void on_request(stun::Method, core::Transport, uint16_t code) override {
    if (code == 437) mismatches.fetch_add(1);
    if (code == 486) over_quota.fetch_add(1);
    if (code == 508) no_capacity.fetch_add(1);
  }
  std::atomic<int>* last_;
  int index_;
  std::atomic<int> created{0}, mismatches{0}, over_quota{0}, no_capacity{0};
};

/// Per-worker observers, made before the server (a base listed first) so they outlive it.
struct ShardObservers {
  std::atomic<int> last_worker{-1};
  std::array<WorkerObserver, 2> observers{WorkerObserver(&last_worker, 0),
                                          WorkerObserver(&last_worker, 1)};
};

ServerSettings shard_settings(uint32_t max_per_user) {
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.relay.port_min = 52000;
  s.relay.port_max = 52999;
  s.workers = 2;
  s.core.max_allocations_per_user = max_per_user;
  return s;
}

/// Two workers; clients of one user on 127.0.0.1, each on a port of its own (one host behind
/// one address).
struct ShardServer : ShardObservers, testing::RestServer {
  explicit ShardServer(uint32_t max_per_user = 100)
      : RestServer(shard_settings(max_per_user), kRealm, kSecret,
                   [this](unsigned i) { return &observers[i % 2]; }) {}
  int created(int w) const { return observers[static_cast<size_t>(w)].created.load(); }
};

/// Allocates and returns which worker made the allocation (-1: none did), with its address.
int allocate_on(ShardServer& srv, TurnClient& c, const TurnClient::Attrs& extra = {},
                std::optional<stun::Endpoint>* relayed = nullptr) {
  srv.last_worker.store(-1);
  const auto r = c.allocate(extra);
  if (relayed != nullptr) *relayed = r;
  return r ? srv.last_worker.load() : -1;
}

uint16_t code_of(const std::optional<testing::Response>& r) { return r ? r->error_code() : 0xFFFF; }

/// A peer datagram at `relay` reaches `c` as a Data indication (permission for 127.0.0.1 set).
bool relays_to(TurnClient& c, const stun::Endpoint& relay, UdpSocket& peer, std::string_view what) {
  peer.send_to(relay, testing::bytes(what));
  const auto raw = c.socket().receive();
  if (!raw) return false;
  const auto msg = stun::MessageView::parse(*raw);
  if (!msg || msg->method() != stun::Method::kData) return false;
  const auto data = msg->data();
  return data && std::string(data->begin(), data->end()) == what;
}

bool permit(TurnClient& c, const stun::Endpoint& peer) {
  return code_of(c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
           b.add_xor_address(stun::attr::kXorPeerAddress, peer);
         })) == 0;
}

TEST(ShardNet, ClientsBehindOneAddressSpreadOverBothWorkers) {
  ShardServer srv;
  std::vector<std::unique_ptr<TurnClient>> clients;
  std::set<uint16_t> ports;
  for (int i = 0; i < 24; ++i) {
    clients.push_back(srv.client("user" + std::to_string(i)));
    std::optional<stun::Endpoint> relayed;
    ASSERT_NE(allocate_on(srv, *clients.back(), {}, &relayed), -1) << "client " << i;
    EXPECT_TRUE(ports.insert(relayed->port).second) << "relay port given twice";
  }
  // 24 clients of 127.0.0.1 all on one worker would be one chance in 2^23.
  EXPECT_GT(srv.created(0), 0);
  EXPECT_GT(srv.created(1), 0);
  EXPECT_EQ(srv.server->relay_ports_in_use(), 24u);
}

TEST(ShardNet, ReservationTokenIsClaimedOnEitherWorker) {
  // RFC 8656 section 7.2: EVEN-PORT with R=1 reserves port+1; the Allocate with the token comes
  // from another port of the client (its RTCP socket), which may reach the other worker.
  ShardServer srv;
  UdpSocket peer;
  bool moved = false, kept = false;
  for (int round = 0; round < 40 && !(moved && kept); ++round) {
    auto rtp = srv.client();
    auto rtcp = srv.client();
    std::optional<uint64_t> token;
    srv.last_worker.store(-1);
    const auto r = rtp->request(stun::Method::kAllocate, [](stun::MessageBuilder& b) {
      b.add_requested_transport(17);
      const uint8_t reserve[1] = {0x80};
      b.add_bytes(stun::attr::kEvenPort, reserve);
    });
    ASSERT_EQ(code_of(r), 0);
    const int owner = srv.last_worker.load();
    token = r->msg->reservation_token();
    ASSERT_TRUE(token);
    const auto first = r->msg->xor_address(stun::attr::kXorRelayedAddress);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->port % 2, 0);

    std::optional<stun::Endpoint> second;
    const int claimer = allocate_on(
        srv, *rtcp, [&](stun::MessageBuilder& b) { b.add_u64(stun::attr::kReservationToken, *token); },
        &second);
    ASSERT_NE(claimer, -1) << "round " << round << ": the token was refused";
    EXPECT_EQ(second->port, first->port + 1);
    (claimer == owner ? kept : moved) = true;

    // The claimed port relays to the claiming client, several datagrams in a row (the owner's
    // descriptor no longer reads them), and the first port still relays to its own.
    ASSERT_TRUE(permit(*rtcp, peer.local()));
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(relays_to(*rtcp, *second, peer, "rtcp" + std::to_string(i)))
          << "round " << round << (claimer == owner ? " (same worker)" : " (moved)");
    }
    ASSERT_TRUE(permit(*rtp, peer.local()));
    ASSERT_TRUE(relays_to(*rtp, *first, peer, "rtp"));

    // Claimed once only: another Allocate with the same token gets 508, on either worker.
    auto late = srv.client();
    const auto again = late->request(stun::Method::kAllocate, [&](stun::MessageBuilder& b) {
      b.add_requested_transport(17);
      b.add_u64(stun::attr::kReservationToken, *token);
    });
    EXPECT_EQ(code_of(again), 508);

    for (auto* c : {rtp.get(), rtcp.get()}) {
      EXPECT_EQ(code_of(c->request(stun::Method::kRefresh,
                                   [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 0); })),
                0);
    }
  }
  EXPECT_TRUE(moved) << "no token was claimed on the other worker in 40 rounds";
  // Every relay socket is closed again, including the owners' descriptors of moved ones.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(testing::kWaitMs);
  while (srv.server->relay_ports_in_use() != 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(srv.server->relay_ports_in_use(), 0u);
}

TEST(ShardNet, RequestsFromAnotherPortOfTheClientAreAllocationMismatch) {
  // RFC 8656 section 7.3 (and 8.2, 9.2, 11.2): an allocation is found by its 5-tuple; a
  // request from another port of the same client, on whichever worker it lands, gets 437
  // and changes nothing (a Refresh with LIFETIME 0 from there deletes nothing).
  ShardServer srv;
  auto owner = srv.client();
  std::optional<stun::Endpoint> relayed;
  ASSERT_NE(allocate_on(srv, *owner, {}, &relayed), -1);
  UdpSocket peer;
  int tries = 0;
  while (tries < 60 && (srv.observers[0].mismatches.load() == 0 ||
                        srv.observers[1].mismatches.load() == 0 || tries < 8)) {
    ++tries;
    auto other = srv.client();  // same user, same host, another port
    EXPECT_EQ(code_of(other->request(stun::Method::kRefresh,
                                     [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 0); })),
              437);
    EXPECT_EQ(code_of(other->request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
                b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
              })),
              437);
  }
  EXPECT_GT(srv.observers[0].mismatches.load(), 0) << "worker 0 never answered 437";
  EXPECT_GT(srv.observers[1].mismatches.load(), 0) << "worker 1 never answered 437";
  // The allocation lives on, without the permission the other port asked for.
  peer.send_to(*relayed, testing::bytes("not permitted"));
  EXPECT_FALSE(owner->socket().receive(200)) << "a permission from another port was installed";
  ASSERT_TRUE(permit(*owner, peer.local()));
  EXPECT_TRUE(relays_to(*owner, *relayed, peer, "still here"));
  EXPECT_EQ(srv.server->relay_ports_in_use(), 1u);
}

TEST(ShardNet, UserQuotaHoldsAcrossWorkers) {
  // Quotas are counted in the server's UserLimits, common to both workers: with a quota of 2,
  // one allocation on each worker, a third is refused with 486 on either worker.
  ShardServer srv(2);
  std::array<std::unique_ptr<TurnClient>, 2> held;
  for (int i = 0; i < 60 && (!held[0] || !held[1]); ++i) {
    auto c = srv.client("carol");
    const int w = allocate_on(srv, *c);
    ASSERT_NE(w, -1) << "attempt " << i;
    if (!held[static_cast<size_t>(w)]) {
      held[static_cast<size_t>(w)] = std::move(c);
    } else {  // a second one on the same worker: give it back and try another port
      ASSERT_EQ(code_of(c->request(stun::Method::kRefresh, [](stun::MessageBuilder& b) {
                  b.add_u32(stun::attr::kLifetime, 0);
                })),
                0);
    }
  }
  ASSERT_TRUE(held[0] && held[1]) << "the user's allocations did not reach both workers";
  EXPECT_EQ(srv.server->user_limits().allocations("carol"), 2u);
  for (int i = 0; i < 16 && (srv.observers[0].over_quota.load() == 0 ||
                              srv.observers[1].over_quota.load() == 0 || i < 6);
       ++i) {
    auto c = srv.client("carol");
    EXPECT_EQ(allocate_on(srv, *c), -1) << "a third allocation was made";
  }
  EXPECT_GT(srv.observers[0].over_quota.load(), 0);
  EXPECT_GT(srv.observers[1].over_quota.load(), 0);
  EXPECT_EQ(srv.server->user_limits().allocations("carol"), 2u);
  // Deleting the one on worker 0 lets the next one in, wherever it lands.
  ASSERT_EQ(code_of(held[0]->request(stun::Method::kRefresh, [](stun::MessageBuilder& b) {
              b.add_u32(stun::attr::kLifetime, 0);
            })),
            0);
  auto next = srv.client("carol");
  EXPECT_NE(allocate_on(srv, *next), -1);
}

}  // namespace
}  // namespace callrelay::net
