// CallTraffic: per-call traffic of call-scoped allocations, read when the call ends.
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
  call.live.push_back(Live{a.id, a.user_id, &a.traffic});
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
  call.live.erase(live);
  if (reason == core::EndReason::kCallEnded && call.live.empty()) {
    // The call ended and its traffic was read before its allocations were ended: nothing will
    // ask again. (This also drops what an allocation racing the call's end left behind.)
    calls_.erase(it);
    return;
  }
  auto user = std::find_if(call.ended.begin(), call.ended.end(),
                           [&](const UserBytes& u) { return u.user_id == a.user_id; });
  if (user == call.ended.end()) user = call.ended.insert(call.ended.end(), UserBytes{a.user_id});
  user->to_peer += a.traffic.bytes_to_peer.get();
  user->to_client += a.traffic.bytes_to_client.get();
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
