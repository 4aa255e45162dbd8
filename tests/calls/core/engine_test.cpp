// The call lifecycle on a fake clock: invite, ringing, accept (exactly one), decline, cancel,
// busy, hang-up, every timeout at its exact time, devices dropping and resuming.
#include "engine_test_support.hpp"

namespace callrelay::calls::test {
namespace {

TEST_F(TwoUsersTest, InviteRingsEveryCalleeDeviceAndAcksWithTheCallId) {
  const std::string id = invite();
  ASSERT_TRUE(valid_call_id(id)) << id;
  EXPECT_EQ(engine_->calls_in(CallState::kRinging), 1u);
  for (const char* dev : {"b1", "b2"}) {
    const json inv = last_to(dev, "invite");
    ASSERT_FALSE(inv.is_null()) << dev;
    EXPECT_EQ(inv["call"], id);
    EXPECT_EQ(inv["payload"]["from"], "alice");
    EXPECT_EQ(inv["payload"]["media"]["video"], true);
    EXPECT_NE(inv["payload"]["ice_servers"][0]["username"].get<std::string>().find(
                  ":bob:call=" + id),
              std::string::npos);
  }
  EXPECT_EQ(count_to("c1", "invite"), 0u);
  EXPECT_EQ(count_to("a1", "ringing"), 0u);
  EXPECT_EQ(observer_.started, 1);
}

TEST_F(TwoUsersTest, RingingIsReportedToTheCallerOnce) {
  const std::string id = invite();
  send("b1", ClientType::kRinging, id);
  send("b2", ClientType::kRinging, id);
  EXPECT_EQ(count_to("a1", "ringing"), 1u);
  send("c1", ClientType::kRinging, id);
  EXPECT_EQ(last_to("c1", "error")["code"], "not-participant");
}

TEST_F(TwoUsersTest, RingTimesOutAsMissedAtExactlyTheRingTimeout) {
  const std::string id = invite();
  EXPECT_EQ(engine_->next_deadline(), kStart + 45'000);
  advance_to(kStart + 44'999);
  EXPECT_EQ(record(id), nullptr);
  advance_to(kStart + 45'000);
  const CallRecord* r = record(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, Outcome::kMissed);
  EXPECT_EQ(r->end_reason, "ring-timeout");
  EXPECT_EQ(r->ended_by, Party::kServer);
  EXPECT_EQ(r->ended, kStart + 45'000);
  EXPECT_EQ(r->setup_ms, -1);
  for (const char* dev : {"a1", "b1", "b2"})
    EXPECT_EQ(last_to(dev, "ended")["payload"]["outcome"], "missed") << dev;
  EXPECT_EQ(engine_->calls_in(CallState::kRinging), 0u);
  EXPECT_EQ(engine_->next_deadline(), INT64_MAX);
}

TEST_F(TwoUsersTest, FirstAcceptWinsAndTheOtherDevicesStopRinging) {
  const std::string id = invite();
  now_ += 1500;
  send("b2", ClientType::kAccept, id);
  send("b1", ClientType::kAccept, id);  // a moment later: lost the race
  EXPECT_EQ(last_to("b1", "error")["code"], "wrong-state");
  EXPECT_EQ(count_to("b1", "answered-elsewhere"), 1u);
  EXPECT_EQ(count_to("b2", "answered-elsewhere"), 0u);
  const json acc = last_to("a1", "accepted");
  ASSERT_FALSE(acc.is_null());
  EXPECT_EQ(acc["payload"]["device"], "b2");
  EXPECT_NE(acc["payload"]["ice_servers"][0]["username"].get<std::string>().find(":alice:call="),
            std::string::npos);
  EXPECT_EQ(last_to("a1", "state")["payload"]["state"], "connecting");
  EXPECT_EQ(last_to("b2", "state")["payload"]["state"], "connecting");
  EXPECT_EQ(count_to("b1", "state"), 0u);
  EXPECT_EQ(engine_->calls_in(CallState::kConnecting), 1u);
  EXPECT_EQ(observer_.answered, 1);
  // The device that lost may not act in the call.
  candidate("b1", id, "candidate:1 1 udp 1 127.0.0.1 9 typ host");
  EXPECT_EQ(last_to("b1", "error")["code"], "not-participant");
}

TEST_F(TwoUsersTest, DeclineEndsTheCallForEveryDevice) {
  const std::string id = invite();
  ClientMessage m;
  m.type = ClientType::kDecline;
  m.call = id;
  m.reason = "in a meeting";
  send("b1", m);
  const CallRecord* r = record(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, Outcome::kDeclined);
  EXPECT_EQ(r->ended_by, Party::kCallee);
  EXPECT_EQ(r->end_reason, "in a meeting");
  for (const char* dev : {"a1", "b1", "b2"})
    EXPECT_EQ(last_to(dev, "ended")["payload"]["outcome"], "declined") << dev;
}

TEST_F(TwoUsersTest, OnlyTheCallerCancelsAndOnlyWhileRinging) {
  const std::string id = invite();
  send("b1", ClientType::kCancel, id);
  EXPECT_EQ(last_to("b1", "error")["code"], "not-participant");
  send("a1", ClientType::kCancel, id);
  ASSERT_NE(record(id), nullptr);
  EXPECT_EQ(record(id)->outcome, Outcome::kCancelled);
  EXPECT_EQ(record(id)->ended_by, Party::kCaller);
  EXPECT_EQ(last_to("b2", "ended")["payload"]["outcome"], "cancelled");

  const std::string second = connecting_call();
  send("a1", ClientType::kCancel, second);
  EXPECT_EQ(last_to("a1", "error")["code"], "wrong-state");
  EXPECT_EQ(record(second), nullptr);
}

TEST_F(TwoUsersTest, ACalleeInACallIsBusy) {
  active_call();
  clear();
  ClientMessage m;
  m.type = ClientType::kInvite;
  m.to = "bob";
  send("c1", m);
  const std::string id = last_to("c1", "ack")["call"];
  const CallRecord* r = record(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, Outcome::kBusy);
  EXPECT_EQ(last_to("c1", "ended")["payload"]["outcome"], "busy");
  EXPECT_EQ(count_to("b1", "invite"), 0u);
  EXPECT_EQ(engine_->calls_in(CallState::kActive), 1u);  // the first call goes on
}

class CallWaitingTest : public TwoUsersTest {
 protected:
  static EngineConfig waiting() {
    EngineConfig c;
    c.call_waiting = true;
    return c;
  }
  CallWaitingTest() : TwoUsersTest(waiting()) {}
};

TEST_F(CallWaitingTest, WithCallWaitingTheBusyCalleeRings) {
  active_call();
  clear();
  ClientMessage m;
  m.type = ClientType::kInvite;
  m.to = "bob";
  send("c1", m);
  EXPECT_EQ(count_to("b1", "invite"), 1u);
  EXPECT_EQ(count_to("b2", "invite"), 1u);
  EXPECT_TRUE(out_.ended.empty());
}

TEST_F(TwoUsersTest, ACalleeBusyElsewhereIsBusyAsInALocalCall) {
  std::vector<std::string> asked;
  engine_->set_busy_elsewhere([&](std::string_view tenant, std::string_view user) {
    asked.push_back(std::string(tenant) + "/" + std::string(user));
    return user == "bob";
  });
  clear();
  ClientMessage m;
  m.type = ClientType::kInvite;
  m.to = "bob";
  send("c1", m);
  const std::string id = last_to("c1", "ack")["call"];
  const CallRecord* r = record(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, Outcome::kBusy);
  EXPECT_EQ(r->end_reason, "callee-busy");
  EXPECT_EQ(r->ended_by, Party::kServer);
  const json ended = last_to("c1", "ended");
  EXPECT_EQ(ended["payload"]["outcome"], "busy");
  EXPECT_EQ(ended["payload"]["reason"], "callee-busy");
  EXPECT_EQ(count_to("b1", "invite"), 0u);
  EXPECT_EQ(count_to("b2", "invite"), 0u);
  EXPECT_EQ(asked, std::vector<std::string>{"/bob"});

  // Another callee, not busy elsewhere, rings.
  clear();
  m.to = "alice";
  send("c1", m);
  EXPECT_EQ(count_to("a1", "invite"), 1u);
  EXPECT_TRUE(out_.ended.empty());
}

TEST_F(CallWaitingTest, WithCallWaitingACalleeBusyElsewhereRings) {
  bool asked = false;
  engine_->set_busy_elsewhere([&](std::string_view, std::string_view) { return asked = true; });
  clear();
  ClientMessage m;
  m.type = ClientType::kInvite;
  m.to = "bob";
  send("c1", m);
  EXPECT_FALSE(asked);
  EXPECT_EQ(count_to("b1", "invite"), 1u);
  EXPECT_TRUE(out_.ended.empty());
}

TEST_F(TwoUsersTest, HangupOfAnActiveCallCompletesIt) {
  const std::string id = active_call();
  now_ += 60'000;
  send("b1", ClientType::kHangup, id);
  const CallRecord* r = record(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, Outcome::kCompleted);
  EXPECT_EQ(r->end_reason, "user-hangup");
  EXPECT_EQ(r->ended_by, Party::kCallee);
  EXPECT_EQ(r->answered_device, "b1");
  EXPECT_EQ(r->caller_device, "a1");
  EXPECT_EQ(last_to("a1", "ended")["payload"]["by"], "callee");
  EXPECT_EQ(count_to("b2", "ended"), 0u);  // it stopped ringing at the accept
}

TEST_F(TwoUsersTest, HangupWhileConnectingIsCancelledOrFailedByReason) {
  const std::string a = connecting_call();
  send("a1", ClientType::kHangup, a);
  EXPECT_EQ(record(a)->outcome, Outcome::kCancelled);
  const std::string b = connecting_call();
  ClientMessage m;
  m.type = ClientType::kHangup;
  m.call = b;
  m.reason = "ice-failed";
  send("b1", m);
  EXPECT_EQ(record(b)->outcome, Outcome::kFailed);
  EXPECT_EQ(record(b)->end_reason, "ice-failed");
}

TEST_F(TwoUsersTest, HangupWhileRingingCancelsOrDeclines) {
  const std::string a = invite();
  send("a1", ClientType::kHangup, a);
  EXPECT_EQ(record(a)->outcome, Outcome::kCancelled);
  const std::string b = invite();
  send("b2", ClientType::kHangup, b);
  EXPECT_EQ(record(b)->outcome, Outcome::kDeclined);
}

TEST_F(TwoUsersTest, ConnectTimeoutFailsTheCallAtExactlyItsDeadline) {
  const std::string id = invite();
  now_ += 2'000;
  send("b1", ClientType::kAccept, id);
  EXPECT_EQ(engine_->next_deadline(), now_ + 30'000);
  send("a1", ClientType::kConnected, id);  // one side alone does not make it active
  advance_to(kStart + 2'000 + 29'999);
  EXPECT_EQ(record(id), nullptr);
  advance_to(kStart + 2'000 + 30'000);
  ASSERT_NE(record(id), nullptr);
  EXPECT_EQ(record(id)->outcome, Outcome::kFailed);
  EXPECT_EQ(record(id)->end_reason, "connect-timeout");
  EXPECT_EQ(record(id)->answered, kStart + 2'000);
}

TEST_F(TwoUsersTest, ActiveCallsEndAtTheMaximumDuration) {
  const std::string id = active_call();
  EXPECT_EQ(engine_->next_deadline(), now_ + 14'400'000);
  advance_to(now_ + 14'400'000 - 1);
  EXPECT_EQ(record(id), nullptr);
  advance_to(now_ + 1);
  ASSERT_NE(record(id), nullptr);
  EXPECT_EQ(record(id)->outcome, Outcome::kCompleted);
  EXPECT_EQ(record(id)->end_reason, "max-duration");
}

TEST_F(TwoUsersTest, ADroppedDeviceResumesWithinGrace) {
  const std::string id = active_call();
  clear();
  engine_->device_lost("a1", now_, out_);
  EXPECT_EQ(count_to("b1", "peer-reconnecting"), 1u);
  EXPECT_EQ(engine_->next_deadline(), now_ + 20'000);
  advance_to(now_ + 19'999);
  EXPECT_TRUE(out_.ended.empty());
  EXPECT_TRUE(engine_->device_resumed("a1", now_, out_));
  EXPECT_EQ(count_to("b1", "peer-resumed"), 1u);
  EXPECT_EQ(observer_.reconnects, std::vector<bool>{true});
  EXPECT_EQ(engine_->device_calls("a1").size(), 1u);
  EXPECT_EQ(engine_->device_calls("a1")[0]["state"], "active");
  advance_to(now_ + 60'000);
  EXPECT_TRUE(out_.ended.empty());
  send("a1", ClientType::kHangup, id);
  EXPECT_EQ(record(id)->reconnects, 1u);
  EXPECT_EQ(record(id)->outcome, Outcome::kCompleted);
}

TEST_F(TwoUsersTest, ADeviceGoneBeyondGraceEndsItsCallsAsPeerDisconnected) {
  const std::string id = active_call();
  const TimeMs lost = now_;
  engine_->device_lost("b1", lost, out_);
  advance_to(lost + 20'000);
  const CallRecord* r = record(id);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->outcome, Outcome::kPeerDisconnected);
  EXPECT_EQ(r->end_reason, "callee-disconnected");
  EXPECT_EQ(last_to("a1", "ended")["payload"]["outcome"], "peer-disconnected");
  EXPECT_EQ(out_.drop, std::vector<DeviceId>{"b1"});
  EXPECT_FALSE(engine_->device_resumed("b1", now_, out_));
  EXPECT_EQ(engine_->device_count(), 3u);
}

TEST_F(TwoUsersTest, ARingingDeviceThatVanishesOnlyStopsRinging) {
  const std::string id = invite();
  engine_->device_lost("b2", now_, out_);
  advance_to(now_ + 20'000);
  EXPECT_EQ(record(id), nullptr);
  send("b1", ClientType::kAccept, id);
  EXPECT_EQ(engine_->calls_in(CallState::kConnecting), 1u);
}

TEST_F(TwoUsersTest, ADeviceThatConnectsWhileACallRingsRingsToo) {
  const std::string id = invite("a1", "dave");
  EXPECT_TRUE(connect("d1", "dave"));
  EXPECT_EQ(last_to("d1", "invite")["call"], id);
  send("d1", ClientType::kAccept, id);
  EXPECT_EQ(last_to("a1", "accepted")["payload"]["device"], "d1");
}

TEST_F(TwoUsersTest, AResentMessageIsAcknowledgedAgainNotProcessedAgain) {
  ClientMessage m;
  m.type = ClientType::kInvite;
  m.to = "bob";
  m.seq = 7;
  engine_->on_message("a1", m, now_, out_);
  const std::string id = last_to("a1", "ack")["call"];
  engine_->on_message("a1", m, now_, out_);
  const json again = last_to("a1", "ack");
  EXPECT_EQ(again["duplicate"], true);
  EXPECT_EQ(again["call"], id);
  EXPECT_EQ(engine_->calls_in(CallState::kRinging), 1u);
  EXPECT_EQ(count_to("b1", "invite"), 1u);
  EXPECT_EQ(observer_.results.back(), "invite:duplicate");
}

TEST_F(TwoUsersTest, TenantsAreApart) {
  EXPECT_TRUE(connect("x1", "bob", "acme"));
  const std::string id = invite();
  EXPECT_EQ(count_to("x1", "invite"), 0u);  // acme's bob is another user
  send("x1", ClientType::kAccept, id);
  EXPECT_EQ(last_to("x1", "error")["code"], "unknown-call");
}

TEST_F(TwoUsersTest, UnknownCallsAndSelfCallsAreErrors) {
  send("a1", ClientType::kHangup, "c_0000000000000000000099");
  EXPECT_EQ(last_to("a1", "error")["code"], "unknown-call");
  invite("a1", "alice");
  EXPECT_EQ(last_to("a1", "error")["field"], "payload.to");
  EXPECT_EQ(engine_->calls_in(CallState::kRinging), 0u);
}

TEST_F(EngineTest, DevicesPerUserAreCapped) {
  for (uint32_t i = 0; i < cfg_.max_devices_per_user; ++i)
    EXPECT_TRUE(connect("d" + std::to_string(i), "eve"));
  EXPECT_FALSE(connect("extra", "eve"));
  EXPECT_EQ(engine_->device_count(), cfg_.max_devices_per_user);
}

TEST_F(TwoUsersTest, ShutdownEndsEveryLiveCall) {
  const std::string a = active_call();
  const std::string b = invite("c1", "dave");
  engine_->shutdown(now_, out_);
  EXPECT_EQ(record(a)->outcome, Outcome::kCompleted);
  EXPECT_EQ(record(b)->outcome, Outcome::kFailed);
  EXPECT_EQ(record(b)->end_reason, "shutdown");
  EXPECT_EQ(engine_->calls_in(CallState::kActive), 0u);
  EXPECT_EQ(engine_->next_deadline(), INT64_MAX);
}

}  // namespace
}  // namespace callrelay::calls::test
