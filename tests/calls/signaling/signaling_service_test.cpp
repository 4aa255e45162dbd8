// The signaling service between fake WebSockets and a fake relay: upgrades authenticated by
// token or resume token, welcome, acks and errors, rate limiting, replay after a reconnect,
// a finished call's record carrying the relay's traffic while its allocations are ended, the
// relay sampled every 5 s into quality intervals beside the clients' reports and once more as
// an active call ends (by hang-up, shutdown or grace), payload types handed to the relay, and
// the list of online users.
#include "calls/signaling/signaling_service.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "calls/signaling/token.hpp"

namespace callrelay::calls {
namespace {

using nlohmann::json;

constexpr TimeMs kNow = 1'700'000'000'000;
const std::string kSecret(40, 's');

class FakeConn : public http::WsConnection {
 public:
  void send_text(std::string text) override {
    const std::lock_guard lock(mutex);
    sent.push_back(json::parse(text));
  }
  void close(uint16_t code, std::string) override {
    const std::lock_guard lock(mutex);
    close_code = code;
  }
  std::vector<json> of_type(const std::string& type) {
    const std::lock_guard lock(mutex);
    std::vector<json> r;
    for (const json& m : sent)
      if (m.value("type", "") == type) r.push_back(m);
    return r;
  }
  std::mutex mutex;
  std::vector<json> sent;
  int close_code = 0;
};

class FakeRelay : public CallRelay, public IceServerSource {
 public:
  CallTraffic traffic(std::string_view, std::string_view, std::string_view) override {
    CallTraffic t;
    t.caller_to_peer = 1000;
    t.callee_to_client = 990;  // the same packets seen at the callee's allocation
    t.callee_to_peer = 500;
    t.caller_to_client = 500;
    t.allocations = 2;
    return t;
  }
  void end_call(std::string_view id) override { ended.emplace_back(id); }
  /// What the test set in `current`: cumulative, as the relay reports it.
  RelayMedia media(std::string_view id, std::string_view caller,
                   std::string_view callee) override {
    const std::lock_guard lock(mutex);
    sampled.emplace_back(id, caller, callee);
    return current;
  }
  void set_payload_types(std::string_view id, std::vector<RtpPayloadType> types) override {
    const std::lock_guard lock(mutex);
    payload_types.emplace_back(id, std::move(types));
  }
  json ice_servers(std::string_view user, std::string_view, TimeMs) override {
    return json::array({{{"urls", {"turn:127.0.0.1:3478"}}, {"username", user}}});
  }
  void set(const RelayMedia& m) {
    const std::lock_guard lock(mutex);
    current = m;
  }
  std::mutex mutex;
  std::vector<std::string> ended;
  RelayMedia current;
  std::vector<std::tuple<std::string, std::string, std::string>> sampled;
  std::vector<std::pair<std::string, std::vector<RtpPayloadType>>> payload_types;
};

class SignalingServiceTest : public ::testing::Test {
 protected:
  SignalingServiceTest() : signer_(kSecret, 3600) {
    cfg_.messages_per_second = 20;
    make();
  }
  ~SignalingServiceTest() override { service_->stop(); }

  void make() {
    SignalingService::Deps deps{signer_, relay_, relay_,
                                [this](CallRecord r) {
                                  const std::lock_guard lock(records_mutex_);
                                  records_.push_back(std::move(r));
                                },
                                &metrics_, [this] { return now_.load(); }};
    service_ = std::make_unique<SignalingService>(cfg_, deps);
    service_->start();
  }

  http::Request upgrade(const std::string& query) {
    http::Request r;
    r.method = "GET";
    r.path = "/api/v1/signal";
    r.query = query;
    return r;
  }
  /// Opens a session for `user`; returns its connection.
  std::shared_ptr<FakeConn> open(const std::string& user, uint64_t* session = nullptr,
                                 const std::string& tenant = "") {
    const auto v = service_->on_upgrade(
        upgrade("token=" + signer_.mint(user, tenant, 300, now_ / 1000)));
    EXPECT_TRUE(std::holds_alternative<http::WsEndpoint::Accepted>(v));
    const uint64_t id = std::get<http::WsEndpoint::Accepted>(v).session;
    auto conn = std::make_shared<FakeConn>();
    service_->on_open(id, conn);
    sync();
    if (session != nullptr) *session = id;
    return conn;
  }
  void say(uint64_t session, const json& msg) {
    service_->on_message(session, msg.dump());
    sync();
  }
  void sync() {
    service_->run_sync([] {});
  }

  CallsConfig cfg_;
  TokenSigner signer_;
  FakeRelay relay_;
  CallMetrics metrics_;
  std::atomic<TimeMs> now_{kNow};
  std::mutex records_mutex_;
  std::vector<CallRecord> records_;
  std::unique_ptr<SignalingService> service_;
};

TEST_F(SignalingServiceTest, UpgradesNeedAValidTokenOrResumeToken) {
  const std::string foreign =
      "token=" + TokenSigner(std::string(40, 'x'), 3600).mint("alice", "", 300, kNow / 1000);
  for (const std::string& q : std::vector<std::string>{"", "token=", "token=abc.def.ghi",
                                                       "resume=nope", foreign}) {
    const auto v = service_->on_upgrade(upgrade(q));
    ASSERT_TRUE(std::holds_alternative<http::Response>(v)) << q;
    EXPECT_EQ(std::get<http::Response>(v).status, 401) << q;
  }
  const auto ok = service_->on_upgrade(
      upgrade("token=" + signer_.mint("alice", "acme", 300, kNow / 1000)));
  EXPECT_TRUE(std::holds_alternative<http::WsEndpoint::Accepted>(ok));
  EXPECT_NE(metrics_.scrape_text().find("callrelay_signaling_rejected_messages_total{reason=\"unauthorized\"} 5"),
            std::string::npos);
}

TEST_F(SignalingServiceTest, WelcomeNamesTheDeviceAndResumeToken) {
  const auto conn = open("alice");
  const auto w = conn->of_type("welcome");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0]["payload"]["user"], "alice");
  EXPECT_EQ(w[0]["payload"]["grace_ms"], 20000);
  EXPECT_EQ(w[0]["payload"]["resumed"], false);
  EXPECT_EQ(w[0]["payload"]["device"].get<std::string>().rfind("d_", 0), 0u);
  EXPECT_GE(w[0]["payload"]["resume"].get<std::string>().size(), 32u);
  EXPECT_EQ(service_->open_sessions(), 1u);
}

TEST_F(SignalingServiceTest, InvalidMessagesGetAnErrorNamingTheField) {
  uint64_t s = 0;
  const auto conn = open("alice", &s);
  service_->on_message(s, "{not json");
  say(s, {{"type", "invite"}, {"seq", 1}, {"payload", {{"to", 5}}}});
  const auto errors = conn->of_type("error");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["code"], "invalid");
  EXPECT_EQ(errors[1]["field"], "payload.to");
  EXPECT_EQ(errors[1]["seq"], 1);
  // The session goes on.
  say(s, {{"type", "invite"}, {"seq", 2}, {"payload", {{"to", "bob"}}}});
  EXPECT_EQ(conn->of_type("ack").size(), 1u);
}

TEST_F(SignalingServiceTest, AFloodIsRateLimited) {
  uint64_t s = 0;
  const auto conn = open("alice", &s);
  for (int i = 1; i <= 100; ++i)
    service_->on_message(s, json{{"type", "ringing"}, {"seq", i}, {"call", "c_0000000000000000000001"}}.dump());
  sync();
  // The clock does not move: the burst (2 x 20) passes, the rest is refused.
  size_t limited = 0;
  for (const json& e : conn->of_type("error")) limited += e["code"] == "rate-limited";
  EXPECT_EQ(limited, 60u);
}

TEST_F(SignalingServiceTest, ACallEndsWithTheRelaysTrafficAndItsAllocationsEnded) {
  uint64_t a = 0, b = 0;
  const auto alice = open("alice", &a);
  const auto bob = open("bob", &b);
  say(a, {{"type", "invite"}, {"seq", 1}, {"payload", {{"to", "bob"}}}});
  const std::string id = alice->of_type("ack").at(0)["call"];
  ASSERT_EQ(bob->of_type("invite").size(), 1u);
  EXPECT_EQ(bob->of_type("invite")[0]["payload"]["ice_servers"][0]["username"], "bob");
  say(b, {{"type", "decline"}, {"seq", 1}, {"call", id}});
  ASSERT_EQ(alice->of_type("ended").size(), 1u);
  const std::lock_guard lock(records_mutex_);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].outcome, Outcome::kDeclined);
  EXPECT_EQ(records_[0].bytes_caller_to_callee, 1000u);
  EXPECT_EQ(records_[0].bytes_callee_to_caller, 500u);
  EXPECT_EQ(records_[0].relay_allocations, 2u);
  EXPECT_EQ(relay_.ended, std::vector<std::string>{id});
}

TEST_F(SignalingServiceTest, AnOperatorListsAndEndsALiveCall) {
  uint64_t a = 0, b = 0;
  const auto alice = open("alice", &a);
  const auto bob = open("bob", &b);
  say(a, {{"type", "invite"}, {"seq", 1}, {"payload", {{"to", "bob"}}}});
  const std::string id = alice->of_type("ack").at(0)["call"];
  const auto live = service_->live_calls(std::chrono::seconds(30));
  ASSERT_TRUE(live.has_value());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ(live->at(0).id, id);
  EXPECT_EQ(live->at(0).state, CallState::kRinging);
  EXPECT_EQ(service_->end_call("c_unknown", std::chrono::seconds(30)), std::optional<bool>(false));
  EXPECT_EQ(service_->end_call(id, std::chrono::seconds(30)), std::optional<bool>(true));
  sync();
  ASSERT_EQ(alice->of_type("ended").size(), 1u);
  EXPECT_EQ(alice->of_type("ended")[0]["payload"]["reason"], "operator-ended");
  EXPECT_EQ(bob->of_type("ended").size(), 1u);  // the ringing device too
  EXPECT_EQ(relay_.ended, std::vector<std::string>{id});
  {
    const std::lock_guard lock(records_mutex_);
    ASSERT_EQ(records_.size(), 1u);
    EXPECT_EQ(records_[0].ended_by, Party::kServer);
  }
  EXPECT_TRUE(service_->live_calls(std::chrono::seconds(30))->empty());
  // A stopped service does not answer: nullopt rather than a wait without end.
  service_->stop();
  EXPECT_FALSE(service_->live_calls(std::chrono::milliseconds(50)).has_value());
  EXPECT_FALSE(service_->end_call(id, std::chrono::milliseconds(50)).has_value());
}

TEST_F(SignalingServiceTest, AResumedDeviceGetsWhatItMissedInOrder) {
  uint64_t a = 0, b = 0;
  const auto alice = open("alice", &a);
  const auto bob = open("bob", &b);
  const std::string resume = bob->of_type("welcome")[0]["payload"]["resume"];
  say(a, {{"type", "invite"}, {"seq", 1}, {"payload", {{"to", "bob"}}}});
  const std::string id = alice->of_type("ack").at(0)["call"];
  const uint64_t seen = bob->of_type("invite").at(0)["sseq"];
  service_->on_close(b);
  sync();
  say(a, {{"type", "cancel"}, {"seq", 2}, {"call", id}});  // bob is away
  const auto v = service_->on_upgrade(upgrade("resume=" + resume + "&last_sseq=" + std::to_string(seen)));
  ASSERT_TRUE(std::holds_alternative<http::WsEndpoint::Accepted>(v));
  auto again = std::make_shared<FakeConn>();
  service_->on_open(std::get<http::WsEndpoint::Accepted>(v).session, again);
  sync();
  ASSERT_GE(again->sent.size(), 2u);
  EXPECT_EQ(again->sent[0]["type"], "welcome");
  EXPECT_EQ(again->sent[0]["payload"]["resumed"], true);
  EXPECT_EQ(again->sent[1]["type"], "ended");  // replayed: sent while bob was away
  EXPECT_EQ(again->sent[1]["sseq"], seen + 1);
  EXPECT_TRUE(again->of_type("invite").empty());  // already seen before the drop
}

TEST_F(SignalingServiceTest, ConnectionsAreCapped) {
  cfg_.max_connections = 1;
  service_->stop();
  make();
  open("alice");
  const auto v = service_->on_upgrade(
      upgrade("token=" + signer_.mint("bob", "", 300, kNow / 1000)));
  ASSERT_TRUE(std::holds_alternative<http::Response>(v));
  EXPECT_EQ(std::get<http::Response>(v).status, 503);
}

TEST_F(SignalingServiceTest, StopEndsLiveCallsAndKeepsTheirRecords) {
  uint64_t a = 0;
  const auto alice = open("alice", &a);
  open("bob");
  say(a, {{"type", "invite"}, {"seq", 1}, {"payload", {{"to", "bob"}}}});
  service_->stop();
  const std::lock_guard lock(records_mutex_);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].end_reason, "shutdown");
  EXPECT_EQ(alice->close_code, 1001);
}

const std::string kOffer =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
const std::string kAnswer =
    "v=0\r\no=- 3 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";

RelayStream stream(uint64_t expected, uint64_t received, double jitter_ms) {
  return RelayStream{expected, received, jitter_ms};
}

/// Fixture step: alice calls bob through the service up to an active call.
class ActiveCallTest : public SignalingServiceTest {
 protected:
  ActiveCallTest() {
    alice_ = open("alice", &a_);
    bob_ = open("bob", &b_);
    say(a_, {{"type", "invite"}, {"seq", 1}, {"payload", {{"to", "bob"}}}});
    id_ = alice_->of_type("ack").at(0)["call"];
    say(b_, {{"type", "accept"}, {"seq", 1}, {"call", id_}});
    say(a_, {{"type", "offer"}, {"seq", 2}, {"call", id_}, {"payload", {{"sdp", kOffer}}}});
    say(b_, {{"type", "answer"}, {"seq", 2}, {"call", id_}, {"payload", {{"sdp", kAnswer}}}});
    say(a_, {{"type", "connected"}, {"seq", 3}, {"call", id_}});
    say(b_, {{"type", "connected"}, {"seq", 3}, {"call", id_}});
    EXPECT_EQ(alice_->of_type("state").back()["payload"]["state"], "active");
    EXPECT_TRUE(alice_->of_type("error").empty());
    EXPECT_TRUE(bob_->of_type("error").empty());
  }
  /// What the relay reports from now on, then the clock moves by `ms` and what is due runs.
  void tick(const RelayMedia& m, TimeMs ms = kRelaySampleMs) {
    relay_.set(m);
    now_ += ms;
    service_->run_due();
  }
  CallRecord hang_up() {
    say(a_, {{"type", "hangup"}, {"seq", 10}, {"call", id_}});
    const std::lock_guard lock(records_mutex_);
    EXPECT_EQ(records_.size(), 1u);
    return records_.empty() ? CallRecord{} : records_.back();
  }
  uint64_t a_ = 0, b_ = 0;
  std::shared_ptr<FakeConn> alice_, bob_;
  std::string id_;
};

TEST_F(ActiveCallTest, OffersAndAnswersHandTheRelayTheCallsPayloadTypes) {
  const std::lock_guard lock(relay_.mutex);
  ASSERT_EQ(relay_.payload_types.size(), 2u);
  EXPECT_EQ(relay_.payload_types[0].first, id_);
  EXPECT_EQ(relay_.payload_types[0].second.size(), 2u);  // the offer: 111 and 96
  EXPECT_EQ(relay_.payload_types[1].first, id_);
  EXPECT_EQ(relay_.payload_types[1].second.size(), 2u);  // with the answer's 111: the same
  EXPECT_TRUE(relay_.payload_types[1].second[1].video);
}

TEST_F(ActiveCallTest, TheRelayIsSampledEveryFiveSecondsIntoRelayIntervals) {
  RelayMedia m;
  m.caller.audio = stream(250, 245, 3);
  m.caller.rtt_client_ms = 10;
  m.caller.rtt_peer_ms = 15;
  m.callee.audio = stream(250, 250, 2);
  m.callee.video = stream(900, 900, 5);
  tick(m, kRelaySampleMs - 1);  // not due yet
  {
    const std::lock_guard lock(relay_.mutex);
    EXPECT_TRUE(relay_.sampled.empty());
  }
  tick(m, 1);
  {
    const std::lock_guard lock(relay_.mutex);
    ASSERT_EQ(relay_.sampled.size(), 1u);
    EXPECT_EQ(relay_.sampled[0], std::make_tuple(id_, std::string("alice"), std::string("bob")));
  }
  // The callee reports what it received; then the relay's counters advance: 250 more audio
  // packets expected of the caller, 240 received; the callee sent nothing more.
  say(b_, {{"type", "stats"},
           {"seq", 4},
           {"call", id_},
           {"payload",
            {{"interval_ms", 5000},
             {"inbound", {{{"kind", "audio"}, {"packets_received", 248}, {"packets_lost", 2},
                           {"jitter_ms", 4}}}},
             {"pair", {{"rtt_ms", 30}}}}}});
  EXPECT_EQ(bob_->of_type("ack").back()["seq"], 4);
  m.caller.audio = stream(500, 485, 6);
  m.caller.rtt_peer_ms = -1;
  tick(m);
  const std::string text = metrics_.scrape_text();
  const CallRecord r = hang_up();
  const QualitySummary& relay_audio = r.quality.streams[0][0].relay;
  EXPECT_EQ(relay_audio.intervals, 2u);
  EXPECT_EQ(relay_audio.expected, 500u);
  EXPECT_EQ(relay_audio.lost, 15u);
  EXPECT_DOUBLE_EQ(relay_audio.worst_jitter_ms, 6);
  EXPECT_DOUBLE_EQ(relay_audio.worst_rtt_ms, 25);  // client 10 + peer 15, then 10 alone
  EXPECT_EQ(r.quality.streams[0][0].client.intervals, 1u);
  EXPECT_EQ(r.quality.streams[0][0].client.lost, 2u);
  EXPECT_EQ(r.quality.streams[0][1].relay.intervals, 0u);  // the caller sent no video
  EXPECT_EQ(r.quality.streams[1][0].relay.intervals, 1u);  // no callee audio the second time
  EXPECT_EQ(r.quality.streams[1][1].relay.expected, 900u);
  // The second relay interval (6% lost on the caller's leg) is compared with the callee's
  // report (0.8% lost): the client under-reports.
  EXPECT_EQ(r.quality.client_underreports, 1u);
  EXPECT_EQ(r.quality.loss_after_relay, 0u);
  EXPECT_NE(text.find("callrelay_call_quality_disagreements_total{kind=\"audio\","
                      "reason=\"client_underreports\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("callrelay_call_quality_mos_count{kind=\"audio\",source=\"relay\"} 3"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("callrelay_call_quality_mos_count{kind=\"audio\",source=\"client\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("callrelay_call_quality_intervals_total{class=\"excellent\",kind=\"video\","
                      "source=\"relay\"} 1"),
            std::string::npos);
}

TEST_F(ActiveCallTest, SamplingStopsWithTheCall) {
  hang_up();
  tick(RelayMedia{}, 3 * kRelaySampleMs);
  const std::lock_guard lock(relay_.mutex);
  EXPECT_EQ(relay_.sampled.size(), 1u);  // only the last sample, as the call ended
}

/// The relay's counters after 5 s and 2 s more of the caller's audio at 50 packets per second
/// (2 of the last 100 lost), and the callee's audio only in those last 2 s.
RelayMedia five_then_two_seconds(RelayMedia& at_five) {
  at_five.caller.audio = stream(250, 250, 2);
  RelayMedia m;
  m.caller.audio = stream(350, 348, 3);
  m.callee.audio = stream(100, 100, 1);
  return m;
}

/// The record holds all 350 + 100 packets, the last 2 s as their own intervals.
void expect_all_media(const CallRecord& r, TimeMs last_ms) {
  const QualitySummary& caller = r.quality.streams[0][0].relay;
  EXPECT_EQ(caller.intervals, 2u);
  EXPECT_EQ(caller.expected, 350u);
  EXPECT_EQ(caller.lost, 2u);
  EXPECT_EQ(caller.ms_in_class[static_cast<size_t>(QualityClass::kExcellent)], kRelaySampleMs);
  EXPECT_EQ(caller.ms_in_class[static_cast<size_t>(QualityClass::kGood)], last_ms);  // 2% lost
  const QualitySummary& callee = r.quality.streams[1][0].relay;
  EXPECT_EQ(callee.intervals, 1u);
  EXPECT_EQ(callee.expected, 100u);
  EXPECT_EQ(callee.ms_in_class[static_cast<size_t>(QualityClass::kExcellent)], last_ms);
}

TEST_F(ActiveCallTest, AHangUpKeepsTheMediaSinceTheLastSample) {
  RelayMedia first;
  const RelayMedia last = five_then_two_seconds(first);
  tick(first);
  tick(last, 2000);  // nothing due: the next sample would be 3 s later
  const CallRecord r = hang_up();
  expect_all_media(r, 2000);
  const std::lock_guard lock(relay_.mutex);
  EXPECT_EQ(relay_.sampled.size(), 2u);
}

TEST_F(ActiveCallTest, AShutdownKeepsTheMediaSinceTheLastSample) {
  RelayMedia first;
  const RelayMedia last = five_then_two_seconds(first);
  tick(first);
  tick(last, 2000);
  service_->stop();
  const std::lock_guard lock(records_mutex_);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].end_reason, "shutdown");
  expect_all_media(records_[0], 2000);
}

TEST_F(ActiveCallTest, AnEndedGracePeriodKeepsTheMediaSinceTheLastSample) {
  RelayMedia first;
  const RelayMedia last = five_then_two_seconds(first);
  tick(first);
  relay_.set(last);
  service_->on_close(b_);
  sync();
  // The grace period ends 15 s after the next sample was due: the call ends before it is
  // taken, so its last part runs from the previous sample to the end.
  tick(last, cfg_.engine.grace_ms);
  const std::lock_guard lock(records_mutex_);
  ASSERT_EQ(records_.size(), 1u);
  EXPECT_EQ(records_[0].end_reason, "callee-disconnected");
  expect_all_media(records_[0], cfg_.engine.grace_ms);
}

TEST_F(SignalingServiceTest, OnlineUsersAreTheTenantsUsersWithAnOpenConnection) {
  uint64_t b = 0;
  open("carol", nullptr, "acme");
  open("bob", &b, "acme");
  open("alice", nullptr, "acme");
  open("alice", nullptr, "acme");
  open("dave", nullptr, "other");
  EXPECT_EQ(service_->online_users("acme", 10),
            (std::vector<std::string>{"alice", "bob", "carol"}));
  EXPECT_EQ(service_->online_users("acme", 2), (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(service_->online_users("other", 10), std::vector<std::string>{"dave"});
  EXPECT_TRUE(service_->online_users("", 10).empty());
  service_->on_close(b);
  sync();  // bob's device is in its grace period, not online
  EXPECT_EQ(service_->online_users("acme", 10), (std::vector<std::string>{"alice", "carol"}));
  service_->stop();
  EXPECT_TRUE(service_->online_users("acme", 10).empty());
}

}  // namespace
}  // namespace callrelay::calls
