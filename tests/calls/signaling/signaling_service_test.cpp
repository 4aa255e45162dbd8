// The signaling service between fake WebSockets and a fake relay: upgrades authenticated by
// token or resume token, welcome, acks and errors, rate limiting, replay after a reconnect,
// and a finished call's record carrying the relay's traffic while its allocations are ended.
#include "calls/signaling/signaling_service.hpp"

#include <gtest/gtest.h>

#include <mutex>
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
  json ice_servers(std::string_view user, std::string_view, TimeMs) override {
    return json::array({{{"urls", {"turn:127.0.0.1:3478"}}, {"username", user}}});
  }
  std::vector<std::string> ended;
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
  std::shared_ptr<FakeConn> open(const std::string& user, uint64_t* session = nullptr) {
    const auto v = service_->on_upgrade(
        upgrade("token=" + signer_.mint(user, "", 300, now_ / 1000)));
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

}  // namespace
}  // namespace callrelay::calls
