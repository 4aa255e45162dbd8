// Call quality in the state machine, on a fake clock: `stats` reports become client intervals
// for the direction into the reporting device, relay intervals land beside them in the record,
// the two are compared only when recent (partial relay intervals only with client figures of
// the same time), an active call's record gets the relay's media up to its end however it ends,
// `media` changes are forwarded and the audio-only fallback is noted, and offers and answers hand
// the relay their payload types.
#include <algorithm>

#include "engine_test_support.hpp"

namespace callrelay::calls::test {
namespace {

constexpr size_t kC2C = static_cast<size_t>(Direction::kCallerToCallee);
constexpr size_t kBack = static_cast<size_t>(Direction::kCalleeToCaller);
constexpr size_t kAudio = static_cast<size_t>(MediaKind::kAudio);
constexpr size_t kVideo = static_cast<size_t>(MediaKind::kVideo);

InboundStats inbound(MediaKind kind, uint64_t received, uint64_t lost, double jitter_ms) {
  InboundStats in;
  in.kind = kind;
  in.packets_received = received;
  in.packets_lost = lost;
  in.jitter_ms = jitter_ms;
  return in;
}

IntervalMeasure measure(uint64_t expected, uint64_t lost, double jitter_ms, double rtt_ms) {
  IntervalMeasure m;
  m.expected = expected;
  m.lost = lost;
  m.jitter_ms = jitter_ms;
  m.rtt_ms = rtt_ms;
  return m;
}

class QualityTest : public TwoUsersTest {
 protected:
  void stats(const std::string& device, const std::string& call, StatsReport report) {
    ClientMessage m;
    m.type = ClientType::kStats;
    m.call = call;
    m.stats = std::move(report);
    send(device, m);
  }
  /// A 5-second report of what `device` received of one kind, with the pair's round trip.
  void stats(const std::string& device, const std::string& call, InboundStats in,
             double pair_rtt_ms = 20) {
    StatsReport r;
    r.interval_ms = 5000;
    r.inbound = {in};
    r.pair = PairStats{};
    r.pair->rtt_ms = pair_rtt_ms;
    stats(device, call, std::move(r));
  }
  void media(const std::string& device, const std::string& call, std::optional<bool> audio,
             std::optional<bool> video, MediaReason reason) {
    ClientMessage m;
    m.type = ClientType::kMedia;
    m.call = call;
    m.media_state.audio = audio;
    m.media_state.video = video;
    m.media_state.reason = reason;
    send(device, m);
  }
  bool relay(const std::string& call, Direction dir, MediaKind kind, TimeMs start, TimeMs end,
             const IntervalMeasure& m) {
    return engine_->on_relay_interval(call, dir, kind, start, end, m);
  }
  const CallRecord& hang_up(const std::string& call) {
    send("a1", ClientType::kHangup, call);
    const CallRecord* r = record(call);
    EXPECT_NE(r, nullptr);
    static const CallRecord kNone;
    return r != nullptr ? *r : kNone;
  }
};

TEST_F(QualityTest, StatsBecomeClientIntervalsOfTheDirectionIntoTheReporter) {
  const std::string id = active_call();
  now_ += 5000;
  stats("b1", id, inbound(MediaKind::kAudio, 245, 5, 4.5), 30);
  EXPECT_EQ(last_to("b1", "ack")["seq"], seq_["b1"]);
  ASSERT_EQ(observer_.intervals.size(), 1u);
  const QualityInterval& in = observer_.intervals[0];
  EXPECT_EQ(in.source, QualitySource::kClient);
  EXPECT_EQ(in.direction, Direction::kCallerToCallee);  // the callee received it
  EXPECT_EQ(in.kind, MediaKind::kAudio);
  EXPECT_EQ(in.start, now_ - 5000);
  EXPECT_EQ(in.end, now_);
  EXPECT_EQ(in.measure.expected, 250u);
  EXPECT_EQ(in.measure.lost, 5u);
  EXPECT_DOUBLE_EQ(in.loss_ratio, 0.02);
  EXPECT_DOUBLE_EQ(in.measure.jitter_ms, 4.5);
  EXPECT_DOUBLE_EQ(in.measure.rtt_ms, 30);
  EXPECT_EQ(in.quality, QualityClass::kGood);
  EXPECT_EQ(observer_.results.back(), "stats:ok");

  // The caller's report is the other direction; without a pair its outbound RTT of that kind
  // is the round trip, and without either the round trip is unknown.
  StatsReport r;
  r.interval_ms = 2000;
  r.inbound = {inbound(MediaKind::kVideo, 900, 0, 2), inbound(MediaKind::kAudio, 100, 0, 1)};
  OutboundStats out;
  out.kind = MediaKind::kVideo;
  out.rtt_ms = 12.5;
  r.outbound = {out};
  stats("a1", id, r);
  ASSERT_EQ(observer_.intervals.size(), 3u);
  EXPECT_EQ(observer_.intervals[1].direction, Direction::kCalleeToCaller);
  EXPECT_EQ(observer_.intervals[1].kind, MediaKind::kVideo);
  EXPECT_EQ(observer_.intervals[1].start, now_ - 2000);
  EXPECT_DOUBLE_EQ(observer_.intervals[1].measure.rtt_ms, 12.5);
  EXPECT_EQ(observer_.intervals[2].kind, MediaKind::kAudio);
  EXPECT_DOUBLE_EQ(observer_.intervals[2].measure.rtt_ms, -1);
}

TEST_F(QualityTest, AKindWithoutPacketsIsNoInterval) {
  const std::string id = active_call();
  StatsReport r;
  r.interval_ms = 5000;
  InboundStats empty;
  empty.kind = MediaKind::kVideo;
  r.inbound = {empty, inbound(MediaKind::kAudio, 0, 0, 0)};
  stats("b1", id, r);
  EXPECT_EQ(observer_.results.back(), "stats:ok");
  EXPECT_TRUE(observer_.intervals.empty());
}

TEST_F(QualityTest, StatsAreTakenOnlyFromTheTwoDevicesOfAnActiveCall) {
  const std::string id = connecting_call();
  stats("a1", id, inbound(MediaKind::kAudio, 250, 0, 1));
  EXPECT_EQ(last_to("a1", "error")["code"], "wrong-state");
  offer("a1", id);
  answer("b1", id);
  send("a1", ClientType::kConnected, id);
  send("b1", ClientType::kConnected, id);
  ASSERT_EQ(engine_->calls_in(CallState::kActive), 1u);
  stats("c1", id, inbound(MediaKind::kAudio, 250, 0, 1));
  EXPECT_EQ(last_to("c1", "error")["code"], "not-participant");
  stats("b2", id, inbound(MediaKind::kAudio, 250, 0, 1));  // bob's device that did not answer
  EXPECT_EQ(last_to("b2", "error")["code"], "not-participant");
  EXPECT_TRUE(observer_.intervals.empty());
  EXPECT_EQ(observer_.results.back(), "stats:not-participant");
  const CallRecord& rec = hang_up(id);
  EXPECT_TRUE(rec.quality.empty());
  EXPECT_EQ(rec.quality.streams[kC2C][kAudio].client.intervals, 0u);
}

TEST_F(QualityTest, RelayAndClientIntervalsLandSideBySideInTheRecord) {
  const std::string id = active_call();
  const TimeMs t0 = now_;
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, t0, t0 + 5000,
                    measure(250, 0, 3, 40)));
  now_ = t0 + 5000;
  stats("b1", id, inbound(MediaKind::kAudio, 250, 0, 5), 40);
  EXPECT_TRUE(relay(id, Direction::kCalleeToCaller, MediaKind::kVideo, t0, t0 + 5000,
                    measure(900, 90, 10, 40)));
  ASSERT_EQ(observer_.intervals.size(), 3u);
  EXPECT_EQ(observer_.intervals[0].source, QualitySource::kRelay);
  EXPECT_EQ(observer_.intervals[2].quality, QualityClass::kPoor);
  now_ = t0 + 6000;
  const CallRecord& rec = hang_up(id);
  const SourcePair& audio = rec.quality.streams[kC2C][kAudio];
  EXPECT_EQ(audio.relay.intervals, 1u);
  EXPECT_EQ(audio.relay.expected, 250u);
  EXPECT_DOUBLE_EQ(audio.relay.mean_jitter_ms, 3);
  EXPECT_EQ(audio.client.intervals, 1u);
  EXPECT_DOUBLE_EQ(audio.client.mean_jitter_ms, 5);
  EXPECT_EQ(audio.client.ms_in_class[static_cast<size_t>(QualityClass::kExcellent)], 5000);
  const SourcePair& video = rec.quality.streams[kBack][kVideo];
  EXPECT_EQ(video.relay.intervals, 1u);
  EXPECT_EQ(video.relay.lost, 90u);
  EXPECT_EQ(video.relay.ms_in_class[static_cast<size_t>(QualityClass::kPoor)], 5000);
  EXPECT_EQ(video.client.intervals, 0u);
  EXPECT_EQ(rec.quality.streams[kBack][kAudio], SourcePair{});
}

TEST_F(QualityTest, RelayIntervalsCountOnlyForActiveCalls) {
  const std::string id = connecting_call();
  EXPECT_FALSE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, now_ - 5000, now_,
                     measure(250, 0, 1, 10)));
  EXPECT_FALSE(relay("c_0000000000000000000099", Direction::kCallerToCallee, MediaKind::kAudio,
                     now_ - 5000, now_, measure(250, 0, 1, 10)));
  EXPECT_TRUE(observer_.intervals.empty());
  EXPECT_TRUE(engine_->active_calls().empty());
}

TEST_F(QualityTest, ActiveCallsNameTheirUsersAndWhenTheyConnected) {
  const std::string id = invite();
  send("b1", ClientType::kAccept, id);
  offer("a1", id);
  answer("b1", id);
  now_ += 700;
  send("a1", ClientType::kConnected, id);
  send("b1", ClientType::kConnected, id);
  const auto calls = engine_->active_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].id, id);
  EXPECT_EQ(calls[0].caller, "alice");
  EXPECT_EQ(calls[0].callee, "bob");
  EXPECT_EQ(calls[0].connected, now_);
}

TEST_F(QualityTest, RecentReportsAreComparedOnceAndDisagreementsCounted) {
  const std::string id = active_call();
  // The callee reports no loss; the relay saw 10% lost on the caller's leg: under-reporting.
  now_ += 5000;
  stats("b1", id, inbound(MediaKind::kAudio, 250, 0, 2));
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, now_ - 4000, now_ + 1000,
                    measure(250, 25, 2, 10)));
  ASSERT_EQ(observer_.disagreements, std::vector<std::string>{"audio:client_underreports"});
  // The same client report is not compared again with the next relay interval.
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, now_ + 1000, now_ + 6000,
                    measure(250, 25, 2, 10)));
  EXPECT_EQ(observer_.disagreements.size(), 1u);
  // The caller receives 10% loss that the relay did not see on the callee's leg.
  now_ += 10000;
  stats("a1", id, inbound(MediaKind::kVideo, 900, 100, 2));
  EXPECT_TRUE(relay(id, Direction::kCalleeToCaller, MediaKind::kVideo, now_ - 5000, now_,
                    measure(1000, 0, 2, 10)));
  ASSERT_EQ(observer_.disagreements.size(), 2u);
  EXPECT_EQ(observer_.disagreements[1], "video:loss_after_relay");
  // A report older than 1.5 intervals is not compared; neither is another kind's, nor
  // another direction's.
  now_ += 5000;
  stats("b1", id, inbound(MediaKind::kVideo, 1000, 0, 2));
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kVideo, now_ + 3000, now_ + 8000,
                    measure(1000, 300, 2, 10)));
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, now_ - 5000, now_,
                    measure(1000, 300, 2, 10)));
  EXPECT_TRUE(relay(id, Direction::kCalleeToCaller, MediaKind::kVideo, now_ - 5000, now_,
                    measure(1000, 300, 2, 10)));
  EXPECT_EQ(observer_.disagreements.size(), 2u);
  // Agreement within the margin is no disagreement.
  stats("b1", id, inbound(MediaKind::kVideo, 990, 10, 2));
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kVideo, now_ - 5000, now_,
                    measure(1000, 20, 2, 10)));
  EXPECT_EQ(observer_.disagreements.size(), 2u);
  const CallRecord& rec = hang_up(id);
  EXPECT_EQ(rec.quality.client_underreports, 1u);
  EXPECT_EQ(rec.quality.loss_after_relay, 1u);
}

TEST_F(QualityTest, MediaChangesAreForwardedToTheOtherDevice) {
  const std::string id = connecting_call();
  media("b1", id, false, std::nullopt, MediaReason::kUser);
  EXPECT_EQ(last_to("b1", "ack")["seq"], seq_["b1"]);
  const json peer = last_to("a1", "peer-media");
  ASSERT_TRUE(peer.is_object());
  EXPECT_EQ(peer["call"], id);
  EXPECT_EQ(peer["payload"], (json{{"audio", false}, {"reason", "user"}}));
  EXPECT_EQ(count_to("b2", "peer-media"), 0u);
  offer("a1", id);
  answer("b1", id);
  send("a1", ClientType::kConnected, id);
  send("b1", ClientType::kConnected, id);
  media("a1", id, true, true, MediaReason::kUser);
  EXPECT_EQ(last_to("b1", "peer-media")["payload"],
            (json{{"audio", true}, {"video", true}, {"reason", "user"}}));
  EXPECT_EQ(observer_.video_fallbacks, 0);
  const CallRecord& rec = hang_up(id);
  EXPECT_TRUE(rec.quality.video_fallbacks.empty());
}

TEST_F(QualityTest, MediaIsRefusedFromOthersAndBeforeTheAccept) {
  const std::string id = invite();
  media("a1", id, std::nullopt, false, MediaReason::kUser);
  EXPECT_EQ(last_to("a1", "error")["code"], "wrong-state");
  send("b1", ClientType::kAccept, id);
  media("c1", id, std::nullopt, false, MediaReason::kPoorQuality);
  EXPECT_EQ(last_to("c1", "error")["code"], "not-participant");
  media("b2", id, std::nullopt, false, MediaReason::kPoorQuality);
  EXPECT_EQ(last_to("b2", "error")["code"], "not-participant");
  EXPECT_EQ(count_to("a1", "peer-media") + count_to("b1", "peer-media"), 0u);
  EXPECT_EQ(observer_.video_fallbacks, 0);
}

TEST_F(QualityTest, AVideoFallbackAndItsRestoreAreNotedInTheRecord) {
  const std::string id = active_call();
  now_ += 15000;
  const TimeMs fell = now_;
  media("b1", id, std::nullopt, false, MediaReason::kPoorQuality);
  EXPECT_EQ(last_to("a1", "peer-media")["payload"],
            (json{{"video", false}, {"reason", "poor-quality"}}));
  media("b1", id, true, false, MediaReason::kPoorQuality);  // the same fallback, said again
  EXPECT_EQ(observer_.video_fallbacks, 1);
  now_ += 30000;
  media("b1", id, std::nullopt, true, MediaReason::kQualityRestored);
  EXPECT_EQ(last_to("a1", "peer-media")["payload"],
            (json{{"video", true}, {"reason", "quality-restored"}}));
  now_ += 1000;
  media("a1", id, std::nullopt, false, MediaReason::kPoorQuality);
  EXPECT_EQ(observer_.video_fallbacks, 2);
  const CallRecord& rec = hang_up(id);
  ASSERT_EQ(rec.quality.video_fallbacks.size(), 2u);
  EXPECT_EQ(rec.quality.video_fallbacks[0], (VideoFallback{Party::kCallee, fell, fell + 30000}));
  EXPECT_EQ(rec.quality.video_fallbacks[1], (VideoFallback{Party::kCaller, now_, 0}));
}

const std::string kOfferSdp =
    "v=0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
    "a=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n";
const std::string kAnswerSdp =
    "v=0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "a=rtpmap:96 VP8/90000\r\n";

std::vector<int> pts(const std::vector<RtpPayloadType>& types) {
  std::vector<int> r;
  for (const RtpPayloadType& t : types) r.push_back(t.pt);
  std::sort(r.begin(), r.end());
  return r;
}

TEST_F(QualityTest, OffersAndAnswersHandTheRelayTheirPayloadTypes) {
  const std::string id = connecting_call();
  EXPECT_TRUE(out_.payload_types.empty());
  offer("a1", id, false, kOfferSdp);
  ASSERT_EQ(out_.payload_types.size(), 1u);
  EXPECT_EQ(out_.payload_types[0].first, id);
  EXPECT_EQ(pts(out_.payload_types[0].second), (std::vector<int>{96, 97, 111}));
  answer("b1", id, kAnswerSdp);
  ASSERT_EQ(out_.payload_types.size(), 2u);
  const auto& both = out_.payload_types[1].second;
  EXPECT_EQ(pts(both), (std::vector<int>{0, 96, 97, 111}));
  for (const RtpPayloadType& t : both) {
    EXPECT_EQ(t.video, t.pt == 96 || t.pt == 97) << int{t.pt};
    EXPECT_EQ(t.repair, t.pt == 97) << int{t.pt};
  }
  // A refused offer (the previous one is answered, this one is from the callee) changes nothing.
  offer("b1", id, false, kAnswerSdp);
  EXPECT_EQ(out_.payload_types.size(), 2u);
  // A renegotiation replaces the offer's part.
  offer("a1", id, true, "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 8\r\na=rtpmap:8 PCMA/8000\r\n");
  ASSERT_EQ(out_.payload_types.size(), 3u);
  EXPECT_EQ(pts(out_.payload_types[2].second), (std::vector<int>{0, 8, 96, 111}));
}


RelayInterval part(Direction dir, MediaKind kind, TimeMs start, TimeMs end,
                   const IntervalMeasure& m) {
  return RelayInterval{dir, kind, start, end, m};
}

TEST_F(QualityTest, AHangUpAddsTheRelaysMediaSinceItsLastSample) {
  const std::string id = active_call();
  const TimeMs t0 = now_;
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, t0, t0 + 5000,
                    measure(250, 0, 3, 20)));
  // 2 s after the last sample the caller hangs up: what the relay saw since is the last part.
  now_ = t0 + 7000;
  final_relay_.next = {
      part(Direction::kCallerToCallee, MediaKind::kAudio, t0 + 5000, now_, measure(100, 4, 5, 20)),
      part(Direction::kCalleeToCaller, MediaKind::kVideo, t0 + 5000, now_, measure(360, 0, 2, 20))};
  const CallRecord& rec = hang_up(id);
  ASSERT_EQ(final_relay_.asked.size(), 1u);
  EXPECT_EQ(final_relay_.asked[0].id, id);
  EXPECT_EQ(final_relay_.asked[0].caller, "alice");
  EXPECT_EQ(final_relay_.asked[0].callee, "bob");
  EXPECT_EQ(final_relay_.asked[0].connected, t0);
  EXPECT_EQ(final_relay_.asked_at[0], now_);
  const QualitySummary& audio = rec.quality.streams[kC2C][kAudio].relay;
  EXPECT_EQ(audio.intervals, 2u);
  EXPECT_EQ(audio.expected, 350u);
  EXPECT_EQ(audio.lost, 4u);
  // Each part counts for its real length: 5 s without loss, then 2 s at 4% lost.
  EXPECT_EQ(audio.ms_in_class[static_cast<size_t>(QualityClass::kExcellent)], 5000);
  EXPECT_EQ(audio.ms_in_class[static_cast<size_t>(QualityClass::kFair)], 2000);
  const QualitySummary& video = rec.quality.streams[kBack][kVideo].relay;
  EXPECT_EQ(video.intervals, 1u);
  EXPECT_EQ(video.expected, 360u);
  EXPECT_EQ(video.ms_in_class[static_cast<size_t>(QualityClass::kExcellent)], 2000);
  ASSERT_EQ(observer_.intervals.size(), 3u);  // metrics see the last parts too
  EXPECT_EQ(observer_.intervals[2].source, QualitySource::kRelay);
  EXPECT_EQ(observer_.intervals[2].end - observer_.intervals[2].start, 2000);
}

TEST_F(QualityTest, CallsTheServerEndsGetTheRelaysLastMediaToo) {
  const auto last_audio = [&](TimeMs ms, uint64_t expected) {
    final_relay_.next = {part(Direction::kCallerToCallee, MediaKind::kAudio, now_, now_ + ms,
                              measure(expected, 0, 1, 10))};
  };
  // The call's maximum duration runs out.
  const std::string longest = active_call();
  last_audio(3000, 150);
  advance_to(now_ + cfg_.max_duration_ms);
  ASSERT_NE(record(longest), nullptr);
  EXPECT_EQ(record(longest)->end_reason, "max-duration");
  EXPECT_EQ(record(longest)->quality.streams[kC2C][kAudio].relay.expected, 150u);
  // The callee's device drops and its grace period runs out.
  const std::string dropped = active_call();
  last_audio(1000, 50);
  engine_->device_lost("b1", now_, out_);
  advance_to(now_ + cfg_.grace_ms);
  ASSERT_NE(record(dropped), nullptr);
  EXPECT_EQ(record(dropped)->end_reason, "callee-disconnected");
  EXPECT_EQ(record(dropped)->quality.streams[kC2C][kAudio].relay.expected, 50u);
  // The server shuts down (bob answers on his other device now).
  const std::string last = active_call("b2");
  last_audio(400, 20);
  engine_->shutdown(now_, out_);
  ASSERT_NE(record(last), nullptr);
  EXPECT_EQ(record(last)->quality.streams[kC2C][kAudio].relay.expected, 20u);
  EXPECT_EQ(record(last)->quality.streams[kC2C][kAudio].relay.ms_in_class[0], 400);
  ASSERT_EQ(final_relay_.asked.size(), 3u);
  EXPECT_EQ(final_relay_.asked[2].id, last);
}

TEST_F(QualityTest, OnlyActiveCallsAskForTheRelaysLastMedia) {
  final_relay_.next = {part(Direction::kCallerToCallee, MediaKind::kAudio, now_, now_ + 1000,
                            measure(50, 0, 1, 10))};
  const std::string ringing = invite();
  send("a1", ClientType::kCancel, ringing);
  const std::string connecting = connecting_call();
  send("a1", ClientType::kHangup, connecting);
  ASSERT_NE(record(connecting), nullptr);
  EXPECT_TRUE(final_relay_.asked.empty());
  EXPECT_TRUE(record(connecting)->quality.empty());
  EXPECT_TRUE(observer_.intervals.empty());
}

TEST_F(QualityTest, PartialIntervalsAreComparedOnlyWithClientFiguresOfTheSameTime) {
  // The callee's 5-second report saw no loss; the relay's parts over the last 2 s saw 10%:
  // the report covers 3 s the parts do not, so neither part is compared with it.
  const std::string id = active_call();
  now_ += 7000;
  stats("b1", id, inbound(MediaKind::kAudio, 250, 0, 2));
  EXPECT_TRUE(relay(id, Direction::kCallerToCallee, MediaKind::kAudio, now_ - 2000, now_,
                    measure(100, 10, 2, 10)));
  final_relay_.next = {part(Direction::kCallerToCallee, MediaKind::kAudio, now_ - 2000, now_,
                            measure(100, 10, 2, 10))};
  EXPECT_EQ(hang_up(id).quality.client_underreports, 0u);
  // A report as long as the last part, of the 2 s before it, is not of the same time either.
  StatsReport r;
  r.interval_ms = 2000;
  r.inbound = {inbound(MediaKind::kAudio, 100, 0, 2)};
  const std::string earlier = active_call();
  now_ += 4500;
  stats("b1", earlier, r);
  now_ += 2500;
  final_relay_.next = {part(Direction::kCallerToCallee, MediaKind::kAudio, now_ - 2000, now_,
                            measure(100, 10, 2, 10))};
  EXPECT_EQ(hang_up(earlier).quality.client_underreports, 0u);
  EXPECT_TRUE(observer_.disagreements.empty());
  // A report of the same 2 s is compared with the call's last part.
  const std::string again = active_call();
  now_ += 7000;
  stats("b1", again, r);
  final_relay_.next = {part(Direction::kCallerToCallee, MediaKind::kAudio, now_ - 2000, now_,
                            measure(100, 10, 2, 10))};
  EXPECT_EQ(hang_up(again).quality.client_underreports, 1u);
  EXPECT_EQ(observer_.disagreements, std::vector<std::string>{"audio:client_underreports"});
}

}  // namespace
}  // namespace callrelay::calls::test
