// RFC 6062 data connections on any worker: the mailbox a worker drains (several producer
// threads, order, wake-ups, what is dropped unrun), the CONNECTION-ID registry, the
// ConnectionBind sniffing, and a real two-worker server where TCP and TLS connections are
// spread by their 4-tuple, so control and data connections of one allocation land on
// different workers: the data connection is handed to its peer connection's worker and bytes
// flow both ways, compared byte for byte. Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "relay/net/mailbox.hpp"
#include "relay/net/stream_handoff.hpp"
#include "relay/stun/builder.hpp"
#include "tests/integration/tools/stream_turn_client.hpp"
#include "tests/streams/stream_fixture.hpp"

namespace callrelay::net {
namespace {

using namespace std::chrono_literals;

/// Runs `ctx` until `done` or 10 s pass; false on timeout.
template <typename Done>
bool run_until(asio::io_context& ctx, Done done) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < until) {
    ctx.run_for(10ms);
    ctx.restart();
  }
  return done();
}

TEST(Mailbox, ManyProducersDeliverEverythingInEachProducersOrder) {
  constexpr int kProducers = 4;
  constexpr int kEach = 20000;
  asio::io_context ctx;
  Mailbox box(ctx);
  box.start();
  std::vector<int> next(kProducers, 0);  // touched on the consumer thread only
  std::atomic<int> out_of_order{0};
  int received = 0;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&box, &next, &out_of_order, &received, p] {
      for (int i = 0; i < kEach; ++i) {
        box.post([&next, &out_of_order, &received, p, i] {
          if (next[p] != i) out_of_order.fetch_add(1);
          next[p] = i + 1;
          ++received;
        });
        if (i % 1000 == 0) std::this_thread::yield();  // let the consumer catch the list empty
      }
    });
  }
  const bool all = run_until(ctx, [&] { return received == kProducers * kEach; });
  for (auto& t : producers) t.join();
  EXPECT_TRUE(all) << "received " << received << " of " << kProducers * kEach;
  EXPECT_EQ(out_of_order.load(), 0);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kEach) << "producer " << p;
}

TEST(Mailbox, MovesOnlyMessagesAndDropsUnrunOnesAtDestruction) {
  asio::io_context ctx;
  auto dropped = std::make_shared<int>(0);
  struct CountsDrop {
    explicit CountsDrop(std::shared_ptr<int> n) : n_(std::move(n)) {}
    ~CountsDrop() {
      if (n_) ++*n_;
    }
    CountsDrop(CountsDrop&&) = default;
    std::shared_ptr<int> n_;
  };
  int ran = 0;
  {
    Mailbox box(ctx);
    box.post([&ran, p = std::make_unique<int>(7)] { ran += *p; });  // move-only capture
    EXPECT_EQ(box.drain(), 1u);
    EXPECT_EQ(ran, 7);
    box.close();
    box.post([token = CountsDrop(dropped)] {});
    box.post([token = CountsDrop(dropped)] {});
    EXPECT_EQ(*dropped, 0);  // queued, not run, not yet destroyed
  }
  EXPECT_EQ(*dropped, 2);
  EXPECT_EQ(ran, 7);
}

TEST(Mailbox, APostFromADrainedMessageWakesTheWorkerAgain) {
  asio::io_context ctx;
  Mailbox box(ctx);
  box.start();
  int steps = 0;
  box.post([&] {
    ++steps;
    box.post([&] { ++steps; });  // pushed while the list is being run: needs a new wake-up
  });
  EXPECT_TRUE(run_until(ctx, [&] { return steps == 2; })) << "steps " << steps;
}

TEST(ConnectionOwners, ClaimsReleasesAndRefusesAnotherWorkersId) {
  ConnectionOwners owners;
  EXPECT_FALSE(owners.owner(42).has_value());
  EXPECT_TRUE(owners.claim(42, 1));
  EXPECT_TRUE(owners.claim(42, 1));   // the holder again: idempotent
  EXPECT_FALSE(owners.claim(42, 0));  // a clash: refused, the holder kept
  EXPECT_EQ(owners.owner(42), 1u);
  owners.release(42, 0);  // not the holder: nothing changes
  EXPECT_EQ(owners.owner(42), 1u);
  owners.release(42, 1);
  EXPECT_FALSE(owners.owner(42).has_value());
  EXPECT_EQ(owners.size(), 0u);
}

std::vector<uint8_t> build(stun::Method m, stun::Class c, bool with_cid) {
  std::vector<uint8_t> buf(256);
  stun::TransactionId tid{};
  tid[0] = 1;
  stun::MessageBuilder b(buf, m, c, tid);
  if (with_cid) b.add_u32(stun::attr::kConnectionId, 0xC0FFEE);
  buf.resize(b.finish());
  return buf;
}

TEST(ConnectionBindTarget, NamesTheConnectionIdOfAConnectionBindRequestOnly) {
  EXPECT_EQ(
      connection_bind_target(build(stun::Method::kConnectionBind, stun::Class::kRequest, true)),
      0xC0FFEEu);
  EXPECT_FALSE(
      connection_bind_target(build(stun::Method::kConnectionBind, stun::Class::kRequest, false)));
  EXPECT_FALSE(connection_bind_target(build(stun::Method::kConnect, stun::Class::kRequest, true)));
  EXPECT_FALSE(
      connection_bind_target(build(stun::Method::kConnectionBind, stun::Class::kSuccess, true)));
  // A header that claims more than the frame holds, and ChannelData, are no ConnectionBind.
  auto cut = build(stun::Method::kConnectionBind, stun::Class::kRequest, true);
  cut.resize(cut.size() - 4);
  EXPECT_FALSE(connection_bind_target(cut));
  const std::vector<uint8_t> channel_data{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4};
  EXPECT_FALSE(connection_bind_target(channel_data));
}

// --- a real server with two workers ---------------------------------------------------------

integ::TcpRelayTarget target(const stun::Endpoint& ep, bool tls) {
  integ::TcpRelayTarget t;
  t.transport = tls ? "tls" : "tcp";
  t.host = "127.0.0.1";
  t.port = ep.port;
  t.username = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count() +
                              3600) +
               ":alice";
  t.password = core::Authenticator::rest_password(testing::kStreamSecret, t.username);
  return t;
}

/// Outbound (Connect) allocations, one after the other, each with a fresh control and data
/// connection, until a data connection was handed to another worker (the kernel spreads them
/// by 4-tuple: each round crosses workers with probability 1/2). Every round moves bytes both
/// ways, so the rounds that stayed on one worker are checked too. Returns the rounds run.
int until_handed_off(const integ::TcpRelayTarget& t, int max_rounds) {
  const uint64_t before = stream_handoffs();
  int rounds = 0;
  while (rounds < max_rounds && stream_handoffs() == before) {
    ++rounds;
    integ::TcpAllocation a(t);
    integ::Listener peer_listener;
    auto [cid, peer] = integ::connect_peer(a, peer_listener);
    auto data = a.bind_ok(cid);
    integ::both_ways(*data, *peer, 64 * 1024, static_cast<uint32_t>(rounds), 20'000);
  }
  return rounds;
}

TEST(StreamHandoff, TcpDataConnectionOnAnotherWorkerIsSplicedThere) {
  testing::StreamServerFixture srv(2);
  const uint64_t before = stream_handoffs();
  int rounds = 0;
  ASSERT_NO_THROW(rounds = until_handed_off(target(srv.tcp(), false), 40));
  EXPECT_GT(stream_handoffs(), before)
      << "no data connection reached another worker in " << rounds << " rounds";
}

TEST(StreamHandoff, TlsDataConnectionMovesWithItsSession) {
  testing::TestCertificate cert;
  testing::StreamServerFixture srv(2, {}, &cert);
  const uint64_t before = stream_handoffs();
  int rounds = 0;
  ASSERT_NO_THROW(rounds = until_handed_off(target(srv.tls(), true), 40));
  EXPECT_GT(stream_handoffs(), before)
      << "no data connection reached another worker in " << rounds << " rounds";
}

TEST(StreamHandoff, InboundPeerAndBufferedBytesReachAClientOnAnotherWorker) {
  testing::StreamServerFixture srv(2);
  const auto t = target(srv.tcp(), false);
  const uint64_t before = stream_handoffs();
  for (int round = 1; round <= 40 && stream_handoffs() == before; ++round) {
    integ::TcpAllocation a(t);
    // RFC 6062 section 5.3: a peer with a permission gets a ConnectionAttempt to the client.
    const auto perm = a.control().request(integ::kCreatePermission,
                                          {{integ::kXorPeer, integ::xor_address({"127.0.0.1", 9})}},
                                          a.credentials());
    integ::expect_code(perm, 200, "CreatePermission");
    int err = 0;
    auto peer = integ::Conn::dial(a.relayed(), false, &err);
    ASSERT_NE(peer, nullptr) << "peer could not connect to the relayed address, errno " << err;
    // Sent before the ConnectionBind: the peer's worker buffers it; it must arrive first.
    const auto early = integ::pattern(3000, 1000 + static_cast<uint32_t>(round));
    integ::write_all(*peer, early);
    const uint32_t cid = a.connection_attempt(peer->local());
    auto data = a.bind_ok(cid);
    integ::Leg from_peer = integ::Leg("client", data.get()).expects(early);
    ASSERT_NO_THROW(integ::transfer({&from_peer}, 10'000));
    ASSERT_NO_THROW(
        integ::both_ways(*data, *peer, 32 * 1024, static_cast<uint32_t>(round), 20'000));
  }
  EXPECT_GT(stream_handoffs(), before);
}

TEST(StreamHandoff, UnknownConnectionIdStillGets400WithTwoWorkers) {
  testing::StreamServerFixture srv(2);
  const auto t = target(srv.tcp(), false);
  integ::TcpAllocation a(t);
  // Several data connections, so both workers read one: neither knows the id.
  for (int i = 0; i < 6; ++i) {
    auto [m, conn] = a.bind(0x5EED0000u + static_cast<uint32_t>(i), a.credentials());
    integ::expect_code(m, 400, "ConnectionBind for an unknown CONNECTION-ID");
  }
}

}  // namespace
}  // namespace callrelay::net
