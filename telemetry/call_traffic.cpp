// CallTraffic: per-call traffic of call-scoped allocations, read when the call ends, and their
// relay-observed media, read every few seconds while the call runs.
#include "telemetry/call_traffic.hpp"

#include <algorithm>

namespace callrelay::telemetry {

/// One worker's link in its observer chain: records into the shared CallTraffic, forwards to
/// that worker's next observer.
class CallTraffic::WorkerObserver final : public core::Observer {
 public:
  WorkerObserver(CallTraffic& shared, core::Observer* next) : shared_(shared), next_(next) {}
  void set_next(core::Observer* next) { next_ = next; }

  void on_allocation_created(const core::AllocationInfo& a) override {
    shared_.record_created(a);
    if (next_ != nullptr) next_->on_allocation_created(a);
  }
  void on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                           core::TimeMs now) override {
    shared_.record_ended(a, reason);
    if (next_ != nullptr) next_->on_allocation_ended(a, reason, now);
  }
  void on_request(stun::Method m, core::Transport t, uint16_t code) override {
    if (next_ != nullptr) next_->on_request(m, t, code);
  }
  void on_auth_failure(core::AuthFailure r) override {
    if (next_ != nullptr) next_->on_auth_failure(r);
  }
  void on_peer_denied(core::PeerDenyReason r) override {
    if (next_ != nullptr) next_->on_peer_denied(r);
  }
  void on_drop(core::DropReason r) override {
    if (next_ != nullptr) next_->on_drop(r);
  }

 private:
  CallTraffic& shared_;
  core::Observer* next_;
};

CallTraffic::CallTraffic(core::Observer* next) : next_(next) {}

CallTraffic::~CallTraffic() = default;

core::Observer* CallTraffic::observer_for_worker(unsigned index, core::Observer* next) {
  if (index >= workers_.size()) workers_.resize(index + 1);
  auto& w = workers_[index];
  if (w) {
    w->set_next(next);
  } else {
    w = std::make_unique<WorkerObserver>(*this, next);
  }
  return w.get();
}

void CallTraffic::record_created(const core::AllocationInfo& a) {
  if (a.call_id.empty()) return;
  const std::lock_guard lock(mu_);
  Call& call = calls_[a.call_id];
  call.live.push_back(Live{a.id, a.user_id, &a.traffic, &a.media, {}, {}});
  ++call.allocations;
}

void CallTraffic::record_ended(const core::AllocationInfo& a, core::EndReason reason) {
  if (a.call_id.empty()) return;
  const std::lock_guard lock(mu_);
  const auto it = calls_.find(std::string_view(a.call_id));
  if (it == calls_.end()) return;  // forgotten: its record is written already
  Call& call = it->second;
  const auto live = std::find_if(call.live.begin(), call.live.end(),
                                 [&](const Live& l) { return l.id == a.id; });
  if (live == call.live.end()) return;
  observe_rtt(*live, ++read_stamp_);
  const Live ended = std::move(*live);
  call.live.erase(live);
  if (reason == core::EndReason::kCallEnded && call.live.empty()) {
    // The call ended and its traffic was read before its allocations were ended: nothing will
    // ask again. (This also drops what an allocation racing the call's end left behind.)
    calls_.erase(it);
    return;
  }
  auto user = std::find_if(call.ended.begin(), call.ended.end(),
                           [&](const UserBytes& u) { return u.user_id == a.user_id; });
  if (user == call.ended.end()) {
    UserBytes fresh;
    fresh.user_id = a.user_id;
    user = call.ended.insert(call.ended.end(), std::move(fresh));
  }
  user->to_peer += a.traffic.bytes_to_peer.get();
  user->to_client += a.traffic.bytes_to_client.get();
  for (size_t k = 0; k < media::kKinds; ++k) {
    user->expected[k] += a.media.get().kind[k].expected.get();
    user->received[k] += a.media.get().kind[k].received.get();
  }
  if (ended.rtt_client.stamp > user->rtt_client.stamp) user->rtt_client = ended.rtt_client;
  if (ended.rtt_peer.stamp > user->rtt_peer.stamp) user->rtt_peer = ended.rtt_peer;
}

void CallTraffic::observe_rtt(Live& l, uint64_t stamp) {
  const auto note = [stamp](RttSeen& seen, const media::Relaxed& us, const media::Relaxed& n) {
    const uint64_t samples = n.get();
    if (samples == seen.samples) return;
    seen = RttSeen{samples, us.get(), stamp};
  };
  const media::MediaCounters& m = l.media->get();
  note(l.rtt_client, m.rtt_client_us, m.rtt_client_samples);
  note(l.rtt_peer, m.rtt_peer_us, m.rtt_peer_samples);
}

CallMediaTotals CallTraffic::media(std::string_view call_id, std::string_view caller,
                                   std::string_view callee) const {
  CallMediaTotals out;
  // The most recent round-trip sample per user and leg: the highest stamp, live ones winning
  // ties with ended ones (they are visited last).
  struct Pick {
    uint64_t stamp = 0;
    uint64_t us = 0;
    void consider(const RttSeen& s) {
      if (s.stamp != 0 && s.stamp >= stamp) *this = Pick{s.stamp, s.us};
    }
  };
  std::array<Pick, 2> client{}, peer{};  // [0] caller, [1] callee
  const auto slot = [&](std::string_view user) -> int {
    if (user == caller) return 0;
    if (user == callee) return 1;
    return -1;
  };
  const std::lock_guard lock(mu_);
  const auto it = calls_.find(call_id);
  if (it == calls_.end()) return out;
  Call& call = it->second;
  const uint64_t stamp = ++read_stamp_;
  for (const UserBytes& u : call.ended) {
    const int i = slot(u.user_id);
    if (i < 0) continue;
    UserMediaTotals& t = i == 0 ? out.caller : out.callee;
    for (size_t k = 0; k < media::kKinds; ++k) {
      t.kind[k].expected += u.expected[k];
      t.kind[k].received += u.received[k];
    }
    client[static_cast<size_t>(i)].consider(u.rtt_client);
    peer[static_cast<size_t>(i)].consider(u.rtt_peer);
  }
  for (Live& l : call.live) {
    const int i = slot(l.user_id);
    if (i < 0) continue;
    UserMediaTotals& t = i == 0 ? out.caller : out.callee;
    for (size_t k = 0; k < media::kKinds; ++k) {
      const media::KindCounters& c = l.media->get().kind[k];
      const uint64_t received = c.received.get();
      t.kind[k].expected += c.expected.get();
      t.kind[k].received += received;
      if (received > 0) {
        t.kind[k].jitter_us =
            std::max(t.kind[k].jitter_us, static_cast<int64_t>(c.jitter_us.get()));
      }
    }
    observe_rtt(l, stamp);
    client[static_cast<size_t>(i)].consider(l.rtt_client);
    peer[static_cast<size_t>(i)].consider(l.rtt_peer);
  }
  for (size_t i = 0; i < 2; ++i) {
    UserMediaTotals& t = i == 0 ? out.caller : out.callee;
    if (client[i].stamp != 0) t.rtt_client_us = static_cast<int64_t>(client[i].us);
    if (peer[i].stamp != 0) t.rtt_peer_us = static_cast<int64_t>(peer[i].us);
  }
  return out;
}

CallTrafficTotals CallTraffic::traffic(std::string_view call_id, std::string_view caller,
                                       std::string_view callee) const {
  CallTrafficTotals out;
  const auto add = [&](std::string_view user, uint64_t to_peer, uint64_t to_client) {
    if (user == caller) {
      out.caller_to_peer += to_peer;
      out.caller_to_client += to_client;
    } else if (user == callee) {
      out.callee_to_peer += to_peer;
      out.callee_to_client += to_client;
    }
  };
  const std::lock_guard lock(mu_);
  const auto it = calls_.find(call_id);
  if (it == calls_.end()) return out;
  const Call& call = it->second;
  for (const UserBytes& u : call.ended) add(u.user_id, u.to_peer, u.to_client);
  for (const Live& l : call.live) {
    add(l.user_id, l.traffic->bytes_to_peer.get(), l.traffic->bytes_to_client.get());
  }
  out.allocations = call.allocations;
  return out;
}

void CallTraffic::forget(std::string_view call_id) {
  const std::lock_guard lock(mu_);
  if (const auto it = calls_.find(call_id); it != calls_.end()) calls_.erase(it);
}

size_t CallTraffic::call_count() const {
  const std::lock_guard lock(mu_);
  return calls_.size();
}

void CallTraffic::on_allocation_created(const core::AllocationInfo& a) {
  record_created(a);
  if (next_ != nullptr) next_->on_allocation_created(a);
}

void CallTraffic::on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                                      core::TimeMs now) {
  record_ended(a, reason);
  if (next_ != nullptr) next_->on_allocation_ended(a, reason, now);
}

void CallTraffic::on_request(stun::Method m, core::Transport t, uint16_t code) {
  if (next_ != nullptr) next_->on_request(m, t, code);
}

void CallTraffic::on_auth_failure(core::AuthFailure r) {
  if (next_ != nullptr) next_->on_auth_failure(r);
}

void CallTraffic::on_peer_denied(core::PeerDenyReason r) {
  if (next_ != nullptr) next_->on_peer_denied(r);
}

void CallTraffic::on_drop(core::DropReason r) {
  if (next_ != nullptr) next_->on_drop(r);
}

}  // namespace callrelay::telemetry
