// The operator's view of the call state machine: a snapshot of the live calls with their
// quality so far, and ending one call by id as the server's own hang-up.
#include <algorithm>
#include <tuple>

#include "calls/core/engine_impl.hpp"

namespace callrelay::calls {
namespace {

/// The figures of the worst measured stream of `q`, or nullopt when none was measured.
std::optional<LiveCallQuality> worst_stream(const CallQuality& q) {
  std::optional<LiveCallQuality> worst;
  for (const auto& by_kind : q.streams) {
    for (const SourcePair& pair : by_kind) {
      for (const QualitySummary* s : {&pair.relay, &pair.client}) {
        if (s->intervals == 0) continue;
        if (worst && s->mean_mos >= worst->mos) continue;
        const double loss = s->expected == 0 ? 0.0
                                             : static_cast<double>(std::min(s->lost, s->expected)) /
                                                   static_cast<double>(s->expected);
        worst = LiveCallQuality{s->mean_mos, loss, s->mean_jitter_ms, s->mean_rtt_ms};
      }
    }
  }
  return worst;
}

}  // namespace

std::vector<LiveCall> CallEngine::live_calls() const {
  std::vector<LiveCall> list;
  list.reserve(impl_->calls.size());
  for (const auto& [id, c] : impl_->calls) {
    list.push_back(LiveCall{id, c.state, c.rec.caller, c.rec.callee, c.rec.tenant, c.rec.created,
                            worst_stream(c.quality.result())});
  }
  std::sort(list.begin(), list.end(), [](const LiveCall& a, const LiveCall& b) {
    return std::tie(a.created, a.id) < std::tie(b.created, b.id);
  });
  return list;
}

std::set<std::pair<std::string, std::string>> CallEngine::ringing_callees() const {
  std::set<std::pair<std::string, std::string>> users;
  if (calls_in(CallState::kRinging) == 0) return users;
  for (const auto& [id, c] : impl_->calls) {
    if (c.state == CallState::kRinging) users.emplace(c.rec.tenant, c.rec.callee);
  }
  return users;
}

bool CallEngine::end_by_operator(std::string_view call_id, TimeMs now, Actions& out) {
  const auto it = impl_->calls.find(std::string(call_id));
  if (it == impl_->calls.end()) return false;
  Call& c = it->second;
  const Outcome outcome = c.state == CallState::kActive ? Outcome::kCompleted : Outcome::kCancelled;
  impl_->end_call(c, outcome, "operator-ended", Party::kServer, now, out);
  return true;
}

}  // namespace callrelay::calls
