// Relay samples to intervals: deltas of the cumulative counters per leg and kind, the caller's
// leg as the caller-to-callee direction, loss never below zero, the round trip from what is
// known, nothing for a kind without new packets, and the first sample counted from the call's
// connection.
#include "calls/signaling/relay_sampler.hpp"

#include <gtest/gtest.h>

namespace callrelay::calls {
namespace {

RelayLeg leg(uint64_t audio_expected, uint64_t audio_received, double jitter, double rtt_client,
             double rtt_peer) {
  RelayLeg l;
  l.audio = RelayStream{audio_expected, audio_received, jitter};
  l.rtt_client_ms = rtt_client;
  l.rtt_peer_ms = rtt_peer;
  return l;
}

TEST(LegIntervals, DeltasOfTheCumulativeCounters) {
  const auto out = leg_intervals(Direction::kCalleeToCaller, leg(100, 95, 2, 5, 7),
                                 leg(350, 335, 4, 6, 8), 1000, 6000);
  ASSERT_EQ(out.size(), 1u);  // no video at all
  EXPECT_EQ(out[0].direction, Direction::kCalleeToCaller);
  EXPECT_EQ(out[0].kind, MediaKind::kAudio);
  EXPECT_EQ(out[0].start, 1000);
  EXPECT_EQ(out[0].end, 6000);
  EXPECT_EQ(out[0].measure.expected, 250u);
  EXPECT_EQ(out[0].measure.lost, 10u);
  EXPECT_DOUBLE_EQ(out[0].measure.jitter_ms, 4);  // the current jitter
  EXPECT_DOUBLE_EQ(out[0].measure.rtt_ms, 14);    // client + peer, now
}

TEST(LegIntervals, RoundTripFromWhatIsKnown) {
  EXPECT_DOUBLE_EQ(
      leg_intervals(Direction::kCallerToCallee, {}, leg(10, 10, 1, 7, -1), 0, 1)[0].measure.rtt_ms,
      7);
  EXPECT_DOUBLE_EQ(
      leg_intervals(Direction::kCallerToCallee, {}, leg(10, 10, 1, -1, 9), 0, 1)[0].measure.rtt_ms,
      9);
  EXPECT_DOUBLE_EQ(leg_intervals(Direction::kCallerToCallee, {}, leg(10, 10, -1, -1, -1), 0, 1)[0]
                       .measure.rtt_ms,
                   -1);
  EXPECT_DOUBLE_EQ(leg_intervals(Direction::kCallerToCallee, {}, leg(10, 10, -1, -1, -1), 0, 1)[0]
                       .measure.jitter_ms,
                   0);
}

TEST(LegIntervals, DuplicatesAndStandstillsAndCountersGoingBack) {
  // More received than expected (duplicates): no loss, not a huge unsigned number.
  const auto dup = leg_intervals(Direction::kCallerToCallee, leg(100, 100, 1, 1, 1),
                                 leg(200, 210, 1, 1, 1), 0, 5000);
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_EQ(dup[0].measure.lost, 0u);
  // Nothing new expected: no interval; counters that went back: none either.
  EXPECT_TRUE(leg_intervals(Direction::kCallerToCallee, leg(100, 90, 1, 1, 1),
                            leg(100, 95, 1, 1, 1), 0, 5000)
                  .empty());
  EXPECT_TRUE(leg_intervals(Direction::kCallerToCallee, leg(100, 90, 1, 1, 1), leg(50, 50, 1, 1, 1),
                            0, 5000)
                  .empty());
  // Received going back while expected advances: everything new counts as lost.
  const auto back = leg_intervals(Direction::kCallerToCallee, leg(100, 90, 1, 1, 1),
                                  leg(150, 80, 1, 1, 1), 0, 5000);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].measure.lost, 50u);
}

TEST(RelaySampler, TheFirstSampleCountsFromTheConnectionThenFromTheLastSample) {
  RelaySampler s;
  RelayMedia m;
  m.caller = leg(100, 100, 1, -1, -1);
  m.callee.video = RelayStream{300, 297, 3};
  auto out = s.sample("c1", 1000, m, 4000);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].direction, Direction::kCallerToCallee);
  EXPECT_EQ(out[0].start, 1000);
  EXPECT_EQ(out[0].measure.expected, 100u);
  EXPECT_EQ(out[1].direction, Direction::kCalleeToCaller);
  EXPECT_EQ(out[1].kind, MediaKind::kVideo);
  EXPECT_EQ(out[1].measure.lost, 3u);
  m.caller.audio.expected = 350;
  m.caller.audio.received = 340;
  out = s.sample("c1", 1000, m, 9000);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].start, 4000);
  EXPECT_EQ(out[0].end, 9000);
  EXPECT_EQ(out[0].measure.expected, 250u);
  EXPECT_EQ(out[0].measure.lost, 10u);
  EXPECT_EQ(s.size(), 1u);
  s.forget("c1");
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.sample("c1", 8000, m, 9000).at(0).start, 8000);  // from zero again
}

}  // namespace
}  // namespace callrelay::calls
