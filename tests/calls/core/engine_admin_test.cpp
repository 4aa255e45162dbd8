// The operator's view of the call state machine: live calls listed with their state, users and
// quality so far, and ending one call by id as the server's hang-up (both devices told, the
// record out, an unknown id refused).
#include "tests/calls/core/engine_test_support.hpp"

namespace callrelay::calls::test {
namespace {

class EngineAdminTest : public TwoUsersTest {};

TEST_F(EngineAdminTest, LiveCallsInCreationOrderWithTheirState) {
  EXPECT_TRUE(engine_->live_calls().empty());
  const std::string ringing = invite("c1", "alice");
  now_ += 1000;
  const std::string active = active_call("b1");
  const auto live = engine_->live_calls();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].id, ringing);
  EXPECT_EQ(live[0].state, CallState::kRinging);
  EXPECT_EQ(live[0].caller, "carol");
  EXPECT_EQ(live[0].callee, "alice");
  EXPECT_EQ(live[0].created, kStart);
  EXPECT_FALSE(live[0].quality.has_value());
  EXPECT_EQ(live[1].id, active);
  EXPECT_EQ(live[1].state, CallState::kActive);
  EXPECT_EQ(live[1].caller, "alice");
  EXPECT_EQ(live[1].callee, "bob");
  EXPECT_EQ(live[1].created, kStart + 1000);
}

TEST_F(EngineAdminTest, RingingCalleesListsTheUsersOfRingingCallsOnly) {
  EXPECT_TRUE(engine_->ringing_callees().empty());
  invite("c1", "alice");
  now_ += 1000;
  active_call("b1");  // alice calls bob: active, not listed
  const std::set<std::pair<std::string, std::string>> expected{{"", "alice"}};
  EXPECT_EQ(engine_->ringing_callees(), expected);
}

TEST_F(EngineAdminTest, QualityIsTheWorstMeasuredStream) {
  const std::string id = active_call("b1");
  IntervalMeasure good{500, 0, 2.0, 40.0};
  IntervalMeasure lossy{500, 50, 9.0, -1};
  ASSERT_TRUE(engine_->on_relay_interval(id, Direction::kCallerToCallee, MediaKind::kAudio, now_,
                                         now_ + 5000, good));
  ASSERT_TRUE(engine_->on_relay_interval(id, Direction::kCalleeToCaller, MediaKind::kAudio, now_,
                                         now_ + 5000, lossy));
  const auto q = engine_->live_calls().at(0).quality;
  ASSERT_TRUE(q.has_value());
  const QualityInterval worst = score_interval(QualitySource::kRelay, Direction::kCalleeToCaller,
                                               MediaKind::kAudio, now_, now_ + 5000, lossy);
  EXPECT_DOUBLE_EQ(q->mos, worst.mos);
  EXPECT_DOUBLE_EQ(q->loss_ratio, 0.1);
  EXPECT_DOUBLE_EQ(q->jitter_ms, 9.0);
  EXPECT_LT(q->rtt_ms, 0);  // never known for that stream
}

TEST_F(EngineAdminTest, EndByOperatorIsTheServersHangUp) {
  const std::string ringing = invite("c1", "alice");  // before alice is busy in a call
  const std::string active = active_call("b1");
  clear();
  now_ += 3000;
  ASSERT_TRUE(engine_->end_by_operator(active, now_, out_));
  for (const char* device : {"a1", "b1"}) {
    const json ended = last_to(device, "ended");
    ASSERT_TRUE(ended.is_object()) << device;
    EXPECT_EQ(ended["call"], active);
    EXPECT_EQ(ended["payload"]["by"], "server");
    EXPECT_EQ(ended["payload"]["reason"], "operator-ended");
    EXPECT_EQ(ended["payload"]["outcome"], "completed");
  }
  const CallRecord* r = record(active);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->ended, now_);
  EXPECT_EQ(r->ended_by, Party::kServer);
  // A call that never became active is cancelled; the ringing device is told too.
  ASSERT_TRUE(engine_->end_by_operator(ringing, now_, out_));
  EXPECT_EQ(record(ringing)->outcome, Outcome::kCancelled);
  EXPECT_EQ(last_to("a1", "ended")["call"], ringing);
  EXPECT_TRUE(engine_->live_calls().empty());
  EXPECT_EQ(engine_->calls_in(CallState::kActive), 0u);
  // Ended already, or never existed.
  clear();
  EXPECT_FALSE(engine_->end_by_operator(active, now_, out_));
  EXPECT_FALSE(engine_->end_by_operator("c_unknown", now_, out_));
  EXPECT_TRUE(out_.send.empty());
  EXPECT_TRUE(out_.ended.empty());
}

}  // namespace
}  // namespace callrelay::calls::test
