// Answers to unauthenticated requests: the per-source byte budget (bounded reflection) and the
// 401/438 rate, in the table alone and through a TurnServer. Fake clock, no sockets.
#include <gtest/gtest.h>

#include "base/limits.hpp"
#include "core_test_support.hpp"
#include "relay/core/abuse.hpp"

namespace callrelay::core::testing {
namespace {

constexpr std::array<uint8_t, 16> kKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

AbuseConfig small_config() {
  AbuseConfig c;
  c.table_slots = 1024;
  c.allowance_bytes = 1000;
  c.allowance_bytes_per_s = 100;
  c.challenges_per_s = 2;
  c.challenge_burst = 5;
  return c;
}

using Answer = ReflectionGuard::Answer;
using Refusal = ReflectionGuard::Refusal;

TEST(ReflectionGuard, AnswersStayWithinWhatTheSourceSentPlusTheAllowance) {
  ReflectionGuard g(small_config(), kKey);
  const Endpoint src = ep("203.0.113.9:5000");
  size_t sent = 0, answered = 0, withheld = 0;
  // A spoofed Binding flood: 20-byte requests, 60-byte answers, all at one instant.
  for (int i = 0; i < 10000; ++i) {
    const size_t slot = g.credit(src, 20, kT0);
    sent += 20;
    Refusal why{};
    if (g.allow(slot, 60, Answer::kUnsigned, kT0, &why)) {
      answered += 60;
    } else {
      EXPECT_EQ(why, Refusal::kBytes);
      ++withheld;
    }
  }
  EXPECT_LE(answered, sent + 1000);
  EXPECT_GE(answered, sent - 60);  // every byte of credit is usable: nothing is lost either
  EXPECT_GT(withheld, 0u);
}

TEST(ReflectionGuard, TheAllowanceRefillsAtItsRateAndNoFaster) {
  ReflectionGuard g(small_config(), kKey);
  const Endpoint src = ep("203.0.113.9:5000");
  size_t slot = g.credit(src, 0, kT0);
  EXPECT_TRUE(g.allow(slot, 1000, Answer::kUnsigned, kT0));   // the whole allowance
  EXPECT_FALSE(g.allow(slot, 1, Answer::kUnsigned, kT0));
  slot = g.credit(src, 0, kT0 + 499);
  EXPECT_FALSE(g.allow(slot, 50, Answer::kUnsigned, kT0 + 499));  // 49.9 bytes refilled
  EXPECT_TRUE(g.allow(slot, 50, Answer::kUnsigned, kT0 + 500));
  // An hour idle refills to the cap, not beyond.
  EXPECT_FALSE(g.allow(slot, 1001, Answer::kUnsigned, kT0 + 3'600'000));
  EXPECT_TRUE(g.allow(slot, 1000, Answer::kUnsigned, kT0 + 3'600'000));
}

TEST(ReflectionGuard, ChallengesAreRateLimitedEvenWithCredit) {
  ReflectionGuard g(small_config(), kKey);
  const Endpoint src = ep("203.0.113.9:5000");
  int allowed = 0;
  for (int i = 0; i < 20; ++i) {
    const size_t slot = g.credit(src, 500, kT0);  // large requests: bytes are never the limit
    Refusal why{};
    if (g.allow(slot, 100, Answer::kChallenge, kT0, &why)) {
      ++allowed;
    } else {
      EXPECT_EQ(why, Refusal::kChallengeRate);
    }
  }
  EXPECT_EQ(allowed, 5);  // the burst
  size_t slot = g.credit(src, 500, kT0 + 499);
  EXPECT_FALSE(g.allow(slot, 100, Answer::kChallenge, kT0 + 499));
  slot = g.credit(src, 500, kT0 + 500);
  EXPECT_TRUE(g.allow(slot, 100, Answer::kChallenge, kT0 + 500));  // 2 per second
  // Other unsigned answers are not challenges: only bytes limit them.
  EXPECT_TRUE(g.allow(slot, 100, Answer::kUnsigned, kT0 + 500));
}

TEST(ReflectionGuard, ThePortDoesNotMatterAndIpv6IsKeyedByItsSlash64) {
  ReflectionGuard g(small_config(), kKey);
  EXPECT_EQ(g.slot_of(ep("203.0.113.9:1")), g.slot_of(ep("203.0.113.9:65000")));
  EXPECT_EQ(g.slot_of(ep("[2001:db8:1:2::1]:1")), g.slot_of(ep("[2001:db8:1:2:ffff::9]:7")));
  // Budget spent from one port is spent for every port of the address.
  size_t slot = g.credit(ep("203.0.113.9:1"), 0, kT0);
  EXPECT_TRUE(g.allow(slot, 1000, Answer::kUnsigned, kT0));
  slot = g.credit(ep("203.0.113.9:2"), 0, kT0);
  EXPECT_FALSE(g.allow(slot, 1, Answer::kUnsigned, kT0));
}

TEST(ReflectionGuard, MemoryIsFixedWhateverTheNumberOfSources) {
  ReflectionGuard g(small_config(), kKey);
  const size_t before = g.memory_bytes();
  EXPECT_EQ(g.slot_count(), 1024u);
  for (uint32_t i = 0; i < 200000; ++i) {
    const Endpoint src = Endpoint::v4({10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
                                       static_cast<uint8_t>(i)},
                                      static_cast<uint16_t>(i));
    g.allow(g.credit(src, 20, kT0), 60, Answer::kUnsigned, kT0);
  }
  EXPECT_EQ(g.memory_bytes(), before);
  EXPECT_EQ(g.slot_count(), 1024u);
}

TEST(ReflectionGuard, TheKeyDecidesTheSlots) {
  // Two keys spread the same addresses differently: an attacker who does not know the key
  // cannot choose addresses that share one victim's slot.
  ReflectionGuard a(small_config(), kKey);
  std::array<uint8_t, 16> other = kKey;
  other[0] ^= 0x80;
  ReflectionGuard b(small_config(), other);
  int same = 0;
  for (uint8_t i = 0; i < 100; ++i) {
    const Endpoint src = Endpoint::v4({198, 51, 100, i}, 1);
    same += a.slot_of(src) == b.slot_of(src) ? 1 : 0;
  }
  EXPECT_LT(same, 10);
}

TEST(ReflectionGuard, OffAnswersEverything) {
  AbuseConfig c = small_config();
  c.reflection_enabled = false;
  ReflectionGuard g(c, kKey);
  const size_t slot = g.credit(ep("203.0.113.9:5000"), 0, kT0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(g.allow(slot, 1000, Answer::kChallenge, kT0));
}

// --- through the TurnServer ---------------------------------------------------------------

struct AbuseServer : Harness {
  explicit AbuseServer(CoreConfig cfg) : Harness(std::move(cfg)) { server->set_limit_counters(&limits); }
  base::LimitCounters limits;
};

CoreConfig core_config() {
  CoreConfig c;
  c.abuse = small_config();
  return c;
}

TEST(UnauthenticatedAnswers, ABindingFloodFromOneSourceReflectsNoMoreThanItSent) {
  AbuseServer h(core_config());
  Client c = h.rest_client("203.0.113.50:4000");
  size_t sent = 0, answered = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto req = c.build(stun::Method::kBinding, {}, false, c.next_tid());
    sent += req.size();
    if (auto r = h.send(req, c.tuple, kT0)) answered += r->bytes.size();
  }
  EXPECT_LE(answered, sent + 1000);
  EXPECT_GT(h.limits.hits(base::Limit::kUnauthReflection), 0u);
}

TEST(UnauthenticatedAnswers, ChallengesAreRateLimitedPerSource) {
  AbuseServer h(core_config());
  Client c = h.rest_client("203.0.113.50:4000");
  int challenges = 0;
  for (int i = 0; i < 50; ++i) {
    // A large unauthenticated Allocate (padded with a comprehension-optional attribute the
    // server ignores): bytes never limit it, the rate does.
    const std::vector<uint8_t> pad(400, 'x');
    const auto req = c.build(stun::Method::kAllocate, [&pad](stun::MessageBuilder& b) {
      b.add_requested_transport(17);
      b.add_bytes(0x8123, pad);
    }, false, c.next_tid());
    if (auto r = h.send(req, c.tuple, kT0)) {
      EXPECT_EQ(r->code(), 401);
      ++challenges;
    }
  }
  EXPECT_EQ(challenges, 5);
  EXPECT_EQ(h.limits.hits(base::Limit::kChallengeRate), 45u);
  // Another source has its own bucket.
  Client other = h.rest_client("198.51.100.80:4000");
  EXPECT_NO_FATAL_FAILURE(h.challenge(other, kT0));
}

TEST(UnauthenticatedAnswers, SignedAnswersAreNeverWithheld) {
  AbuseServer h(core_config());
  Client c = h.rest_client("203.0.113.50:4000");
  h.allocate(c, kT0);
  // Spend the source's whole budget with Bindings...
  for (int i = 0; i < 500; ++i) h.send(c.build(stun::Method::kBinding, {}, false, c.next_tid()), c.tuple, kT0);
  ASSERT_GT(h.limits.hits(base::Limit::kUnauthReflection), 0u);
  // ...its signed requests are still answered (MESSAGE-INTEGRITY proves the source).
  for (int i = 0; i < 20; ++i) EXPECT_EQ(h.refresh(c, 600, kT0).code(), 0);
}

TEST(UnauthenticatedAnswers, StreamClientsAreNotLimitedHere) {
  AbuseServer h(core_config());
  Client c = h.rest_client("203.0.113.50:4000");
  c.tuple.transport = Transport::kTcp;
  for (int i = 0; i < 200; ++i) {
    const auto r = h.send(c.build(stun::Method::kAllocate, Harness::udp_transport(), false, c.next_tid()),
                          c.tuple, kT0);
    ASSERT_TRUE(r.has_value());
  }
  EXPECT_EQ(h.limits.hits(base::Limit::kChallengeRate), 0u);
}

TEST(UnauthenticatedAnswers, AClientsFirstExchangesPassWithTheDefaults) {
  // What Chromium, libnice and turnutils do first: a Binding or two, then per candidate an
  // unauthenticated Allocate (401) before the signed one; with several candidates from one
  // address at once.
  Harness h;  // default limits
  base::LimitCounters limits;
  h.server->set_limit_counters(&limits);
  for (uint16_t port = 50000; port < 50012; ++port) {
    Client c = h.rest_client(("203.0.113.60:" + std::to_string(port)).c_str());
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(h.send(c.build(stun::Method::kBinding, {}, false, c.next_tid()), c.tuple, kT0));
    }
    h.allocate(c, kT0);
  }
  EXPECT_EQ(limits.hits(base::Limit::kUnauthReflection), 0u);
  EXPECT_EQ(limits.hits(base::Limit::kChallengeRate), 0u);
}

}  // namespace
}  // namespace callrelay::core::testing
