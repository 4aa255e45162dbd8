// Media negotiation on a fake clock: offer and answer only between the call's two devices and
// only in order, candidates held until usable and delivered in order, ICE restarts always
// offered by the caller, and the connected reports that make a call active.
#include "engine_test_support.hpp"

namespace callrelay::calls::test {
namespace {

TEST_F(TwoUsersTest, OfferAndAnswerAreForwardedBetweenTheTwoDevicesOnly) {
  const std::string id = connecting_call("b2");
  offer("a1", id);
  ASSERT_EQ(count_to("b2", "offer"), 1u);
  EXPECT_EQ(last_to("b2", "offer")["payload"]["sdp"], "v=0\r\n");
  EXPECT_EQ(count_to("b1", "offer"), 0u);
  answer("b2", id);
  ASSERT_EQ(count_to("a1", "answer"), 1u);
  EXPECT_EQ(count_to("b1", "answer"), 0u);
}

TEST_F(TwoUsersTest, NoOfferBeforeTheAcceptAndNeverFromTheCallee) {
  const std::string id = invite();
  offer("a1", id);
  EXPECT_EQ(last_to("a1", "error")["code"], "wrong-state");
  EXPECT_EQ(count_to("b1", "offer"), 0u);
  send("b1", ClientType::kAccept, id);
  offer("b1", id);
  EXPECT_EQ(last_to("b1", "error")["code"], "wrong-state");
  EXPECT_EQ(count_to("a1", "offer"), 0u);
}

TEST_F(TwoUsersTest, AnAnswerBeforeAnOfferIsRejected) {
  const std::string id = connecting_call();
  answer("b1", id);
  const json err = last_to("b1", "error");
  EXPECT_EQ(err["code"], "wrong-state");
  EXPECT_EQ(err["call"], id);
  EXPECT_EQ(count_to("a1", "answer"), 0u);
  // The call goes on.
  offer("a1", id);
  answer("b1", id);
  EXPECT_EQ(count_to("a1", "answer"), 1u);
}

TEST_F(TwoUsersTest, ASecondOfferWaitsForTheFirstAnswer) {
  const std::string id = connecting_call();
  offer("a1", id);
  offer("a1", id);
  EXPECT_EQ(last_to("a1", "error")["code"], "wrong-state");
  EXPECT_EQ(count_to("b1", "offer"), 1u);
}

TEST_F(TwoUsersTest, AnIntruderCannotInjectAnythingIntoACall) {
  const std::string id = active_call();
  clear();
  offer("c1", id);
  answer("c1", id);
  candidate("c1", id, "candidate:9 1 udp 1 203.0.113.9 9 typ host");
  send("c1", ClientType::kConnected, id);
  send("c1", ClientType::kHangup, id);
  send("c1", ClientType::kIceRestart, id);
  const auto errors = to("c1", "error");
  ASSERT_EQ(errors.size(), 6u);
  for (const json& e : errors) EXPECT_EQ(e["code"], "not-participant") << e.dump();
  EXPECT_TRUE(to("a1").empty());
  EXPECT_TRUE(to("b1").empty());
  EXPECT_EQ(engine_->calls_in(CallState::kActive), 1u);
  EXPECT_EQ(observer_.results.back(), "ice-restart:not-participant");
}

TEST_F(TwoUsersTest, CallerCandidatesAreHeldUntilTheOfferAndDeliveredInOrder) {
  const std::string id = connecting_call();
  candidate("a1", id, "candidate:1 1 udp 3 127.0.0.1 1001 typ relay");
  candidate("a1", id, "candidate:2 1 udp 2 127.0.0.1 1002 typ relay");
  EXPECT_EQ(count_to("b1", "candidate"), 0u);
  EXPECT_EQ(count_to("a1", "ack"), 3u);  // invite and the two candidates
  offer("a1", id);
  candidate("a1", id, "candidate:3 1 udp 1 127.0.0.1 1003 typ relay");
  std::vector<std::string> order;
  for (const Outgoing& o : out_.send) {
    if (o.to != "b1") continue;
    const std::string type = o.message["type"];
    if (type == "offer") order.push_back("offer");
    if (type == "candidate") order.push_back(o.message["payload"]["candidate"]);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"offer",
                                             "candidate:1 1 udp 3 127.0.0.1 1001 typ relay",
                                             "candidate:2 1 udp 2 127.0.0.1 1002 typ relay",
                                             "candidate:3 1 udp 1 127.0.0.1 1003 typ relay"}));
  EXPECT_EQ(last_to("b1", "candidate")["payload"]["sdpMid"], "0");
}

TEST_F(TwoUsersTest, CalleeCandidatesAreHeldUntilTheCallerHasTheAnswer) {
  const std::string id = connecting_call();
  offer("a1", id);
  candidate("b1", id, "candidate:7 1 udp 1 127.0.0.1 7 typ relay");
  EXPECT_EQ(count_to("a1", "candidate"), 0u);
  answer("b1", id);
  ASSERT_EQ(count_to("a1", "candidate"), 1u);
  // The answer comes before the held candidate.
  size_t answer_at = 0, candidate_at = 0;
  for (size_t i = 0; i < out_.send.size(); ++i) {
    if (out_.send[i].to != "a1") continue;
    if (out_.send[i].message["type"] == "answer") answer_at = i;
    if (out_.send[i].message["type"] == "candidate") candidate_at = i;
  }
  EXPECT_LT(answer_at, candidate_at);
}

TEST_F(TwoUsersTest, HeldCandidatesAreBounded) {
  const std::string id = connecting_call();
  for (uint32_t i = 0; i < cfg_.max_held_candidates; ++i)
    candidate("a1", id, "candidate:" + std::to_string(i) + " 1 udp 1 127.0.0.1 9 typ host");
  EXPECT_EQ(count_to("a1", "error"), 0u);
  candidate("a1", id, "candidate:x 1 udp 1 127.0.0.1 9 typ host");
  EXPECT_EQ(last_to("a1", "error")["code"], "rate-limited");
  offer("a1", id);
  EXPECT_EQ(count_to("b1", "candidate"), cfg_.max_held_candidates);
}

TEST_F(TwoUsersTest, TheCallIsActiveWhenBothDevicesReportConnected) {
  const std::string id = invite();
  now_ += 3'000;
  send("b1", ClientType::kAccept, id);
  offer("a1", id);
  answer("b1", id);
  now_ += 1'200;
  send("b1", ClientType::kConnected, id);
  EXPECT_EQ(engine_->calls_in(CallState::kConnecting), 1u);
  now_ += 100;
  send("a1", ClientType::kConnected, id);
  EXPECT_EQ(engine_->calls_in(CallState::kActive), 1u);
  EXPECT_EQ(last_to("a1", "state")["payload"]["state"], "active");
  EXPECT_EQ(last_to("b1", "state")["payload"]["state"], "active");
  EXPECT_EQ(observer_.setups, std::vector<int64_t>{4'300});
  send("a1", ClientType::kHangup, id);
  EXPECT_EQ(record(id)->setup_ms, 4'300);
  EXPECT_EQ(record(id)->connected, kStart + 4'300);
}

TEST_F(TwoUsersTest, IceRestartsAreAskedByTheCalleeAndOfferedByTheCaller) {
  const std::string id = active_call();
  clear();
  send("b1", ClientType::kIceRestart, id);
  EXPECT_EQ(count_to("a1", "ice-restart"), 1u);
  send("a1", ClientType::kIceRestart, id);
  EXPECT_EQ(last_to("a1", "error")["code"], "wrong-state");
  offer("a1", id, /*restart=*/true);
  EXPECT_EQ(last_to("b1", "offer")["payload"]["restart"], true);
  EXPECT_EQ(observer_.ice_restarts, 1);
  answer("b1", id);
  EXPECT_EQ(engine_->calls_in(CallState::kActive), 1u);  // media may still flow meanwhile
  send("a1", ClientType::kHangup, id);
  EXPECT_EQ(record(id)->ice_restarts, 1u);
}

TEST_F(TwoUsersTest, MessagesToAnOfflineDeviceAreStillEmittedForReplay) {
  const std::string id = connecting_call();
  engine_->device_lost("b1", now_, out_);
  clear();
  offer("a1", id);
  EXPECT_EQ(count_to("b1", "offer"), 1u);  // the service keeps it for the resumed session
}

}  // namespace
}  // namespace callrelay::calls::test
