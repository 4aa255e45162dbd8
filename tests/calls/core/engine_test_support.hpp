// Fixture for the call state machine: a fake clock (a plain TimeMs), deterministic call ids,
// fake call-scoped credentials, a fake of the relay's last sample of an ending call, an observer
// that records what metrics would see, and helpers that connect devices and read what the
// engine sent to each.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "calls/core/engine.hpp"

namespace callrelay::calls::test {

using nlohmann::json;

class FakeIce : public IceServerSource {
 public:
  json ice_servers(std::string_view user, std::string_view call_id, TimeMs now) override {
    return json::array({{{"urls", {"turn:127.0.0.1:3478?transport=udp"}},
                         {"username", std::to_string(now / 1000 + 900) + ":" + std::string(user) +
                                          ":call=" + std::string(call_id)},
                         {"credential", "pw"}}});
  }
};

/// The service's relay sampling as an ending call sees it: hands out what the test set and
/// notes which calls asked, and when.
struct FakeFinalRelay : FinalRelaySource {
  std::vector<RelayInterval> final_intervals(const ActiveCall& call, TimeMs now) override {
    asked.push_back(call);
    asked_at.push_back(now);
    return next;
  }
  std::vector<RelayInterval> next;
  std::vector<ActiveCall> asked;
  std::vector<TimeMs> asked_at;
};

struct RecordingObserver : CallObserver {
  void on_message(ClientType t, std::string_view result) override {
    results.push_back(std::string(to_string(t)) + ":" + std::string(result));
  }
  void on_call_started(const CallRecord&) override { ++started; }
  void on_call_answered(const CallRecord&) override { ++answered; }
  void on_call_connected(const CallRecord& r) override { setups.push_back(r.setup_ms); }
  void on_call_ended(const CallRecord& r) override { outcomes.push_back(r.outcome); }
  void on_ice_restart() override { ++ice_restarts; }
  void on_reconnect(bool in_call) override { reconnects.push_back(in_call); }
  void on_quality_interval(const QualityInterval& i) override { intervals.push_back(i); }
  void on_disagreement(MediaKind kind, const char* reason) override {
    disagreements.push_back(std::string(to_string(kind)) + ":" + reason);
  }
  void on_video_fallback() override { ++video_fallbacks; }
  std::vector<std::string> results;
  std::vector<QualityInterval> intervals;
  std::vector<std::string> disagreements;
  int video_fallbacks = 0;
  int started = 0, answered = 0, ice_restarts = 0;
  std::vector<int64_t> setups;
  std::vector<Outcome> outcomes;
  std::vector<bool> reconnects;
};

inline constexpr TimeMs kStart = 1'700'000'000'000;

class EngineTest : public ::testing::Test {
 protected:
  explicit EngineTest(EngineConfig cfg = {}) : cfg_(cfg) { make_engine(); }

  void make_engine() {
    engine_ = std::make_unique<CallEngine>(
        cfg_, ice_,
        [this] {
          char id[32];
          std::snprintf(id, sizeof id, "c_%022d", ++next_call_);
          return std::string(id);
        },
        &observer_, &final_relay_);
  }

  /// Connects `device` of `user`; returns whether the engine took it.
  bool connect(const std::string& device, const std::string& user,
               const std::string& tenant = "") {
    return engine_->device_connected(device, user, tenant, now_, out_);
  }

  /// Sends a message from `device` with the next seq of that device.
  void send(const std::string& device, ClientMessage m) {
    m.seq = ++seq_[device];
    engine_->on_message(device, m, now_, out_);
  }
  void send(const std::string& device, ClientType type, const std::string& call = {}) {
    ClientMessage m;
    m.type = type;
    m.call = call;
    send(device, m);
  }

  /// alice (device "a1") invites bob; returns the call id from the ack.
  std::string invite(const std::string& from = "a1", const std::string& to = "bob",
                     Media media = {true, true}) {
    ClientMessage m;
    m.type = ClientType::kInvite;
    m.to = to;
    m.media = media;
    send(from, m);
    const json ack = last_to(from, "ack");
    return ack.is_object() ? ack.value("call", std::string()) : std::string();
  }

  /// invite + accept from `callee_device`, then offer/answer.
  std::string connecting_call(const std::string& callee_device = "b1") {
    const std::string id = invite();
    send(callee_device, ClientType::kAccept, id);
    return id;
  }
  std::string active_call(const std::string& callee_device = "b1") {
    const std::string id = connecting_call(callee_device);
    offer("a1", id);
    answer(callee_device, id);
    send("a1", ClientType::kConnected, id);
    send(callee_device, ClientType::kConnected, id);
    return id;
  }
  void offer(const std::string& device, const std::string& call, bool restart = false,
             const std::string& sdp = "v=0\r\n") {
    ClientMessage m;
    m.type = ClientType::kOffer;
    m.call = call;
    m.sdp = sdp;
    m.restart = restart;
    send(device, m);
  }
  void answer(const std::string& device, const std::string& call,
              const std::string& sdp = "v=0\r\n") {
    ClientMessage m;
    m.type = ClientType::kAnswer;
    m.call = call;
    m.sdp = sdp;
    send(device, m);
  }
  void candidate(const std::string& device, const std::string& call, const std::string& text) {
    ClientMessage m;
    m.type = ClientType::kCandidate;
    m.call = call;
    m.candidate.candidate = text;
    m.candidate.sdp_mid = "0";
    send(device, m);
  }

  void advance_to(TimeMs t) {
    now_ = t;
    engine_->on_timer(now_, out_);
  }

  /// Messages sent to `device` so far (optionally only of `type`).
  std::vector<json> to(const std::string& device, const std::string& type = {}) const {
    std::vector<json> r;
    for (const Outgoing& o : out_.send)
      if (o.to == device && (type.empty() || o.message.value("type", "") == type))
        r.push_back(o.message);
    return r;
  }
  json last_to(const std::string& device, const std::string& type) const {
    const auto all = to(device, type);
    return all.empty() ? json() : all.back();
  }
  size_t count_to(const std::string& device, const std::string& type) const {
    return to(device, type).size();
  }
  /// The one record of a call that ended.
  const CallRecord* record(const std::string& call) const {
    for (const CallRecord& r : out_.ended)
      if (r.id == call) return &r;
    return nullptr;
  }
  void clear() { out_ = Actions{}; }

  EngineConfig cfg_;
  FakeIce ice_;
  RecordingObserver observer_;
  FakeFinalRelay final_relay_;
  std::unique_ptr<CallEngine> engine_;
  Actions out_;
  TimeMs now_ = kStart;
  int next_call_ = 0;
  std::map<std::string, uint64_t> seq_;
};

/// alice on device a1, bob on devices b1 and b2, carol on c1.
class TwoUsersTest : public EngineTest {
 protected:
  explicit TwoUsersTest(EngineConfig cfg = {}) : EngineTest(cfg) {
    EXPECT_TRUE(connect("a1", "alice"));
    EXPECT_TRUE(connect("b1", "bob"));
    EXPECT_TRUE(connect("b2", "bob"));
    EXPECT_TRUE(connect("c1", "carol"));
  }
};

}  // namespace callrelay::calls::test
