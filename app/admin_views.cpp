#include "app/admin_views.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "relay/net/worker.hpp"

namespace callrelay::app {
namespace {

http::AdminAllocation to_admin(telemetry::LiveAllocationView&& v) {
  http::AdminAllocation a;
  a.id = std::move(v.id);
  a.user = std::move(v.user);
  a.transport = std::move(v.transport);
  a.family = std::move(v.family);
  a.client = std::move(v.client);
  a.relayed = std::move(v.relayed);
  a.age_s = v.age_s;
  a.bytes = v.bytes;
  a.rate = v.rate;
  if (v.quality)
    a.quality = http::AdminAllocationQuality{v.quality->loss_ratio, v.quality->jitter_ms};
  a.call_id = std::move(v.call_id);
  return a;
}

http::AdminCall to_admin(const calls::LiveCall& c, uint32_t allocations, calls::TimeMs now) {
  http::AdminCall a;
  a.id = c.id;
  a.state = calls::to_string(c.state);
  a.caller = c.caller;
  a.callee = c.callee;
  a.age_s = static_cast<double>(std::max<calls::TimeMs>(now - c.created, 0)) / 1000.0;
  a.allocations = allocations;
  if (c.quality) {
    a.quality = http::AdminCallQuality{c.quality->mos, c.quality->loss_ratio, c.quality->jitter_ms,
                                       std::nullopt};
    if (c.quality->rtt_ms >= 0) a.quality->rtt_ms = c.quality->rtt_ms;
  }
  return a;
}

}  // namespace

std::vector<http::AdminAllocation> admin_allocations(const telemetry::Telemetry& metrics,
                                                     core::TimeMs now) {
  std::vector<telemetry::LiveAllocationView> views = metrics.live_allocations(now);
  std::vector<http::AdminAllocation> out;
  out.reserve(views.size());
  for (auto& v : views) out.push_back(to_admin(std::move(v)));
  return out;
}

http::AdminStatus admin_status(const telemetry::Telemetry& metrics, const net::Server& relay,
                               const http::Readiness& readiness,
                               std::optional<int64_t> drain_left_s, core::TimeMs now) {
  const telemetry::ProcessProbes& p = metrics.probes();
  http::AdminStatus s;
  s.version = p.version;
  s.uptime_s = std::max<core::TimeMs>(now - metrics.started_at(), 0) / 1000;
  s.workers = relay.worker_count();
  s.draining = readiness.draining();
  if (s.draining) s.drain_deadline_s = drain_left_s;
  const telemetry::LiveCounts counts = metrics.live_counts();
  for (size_t t = 0; t < s.allocations_by_transport.size(); ++t)
    s.allocations_by_transport[t] = counts.by_transport[t];
  s.relay_ports_in_use = relay.relay_ports_in_use();
  s.relay_ports_total = p.relay_ports_total;
  return s;
}

http::AdminApi::CallActions admin_call_actions(calls::SignalingService& signaling,
                                               const telemetry::Telemetry& metrics) {
  http::AdminApi::CallActions a;
  a.calls = [&signaling, &metrics]() -> std::optional<std::vector<http::AdminCall>> {
    const auto live = signaling.live_calls(kAdminWait);
    if (!live) return std::nullopt;
    std::unordered_map<std::string, uint32_t> per_call;
    if (!live->empty()) {
      for (const auto& v : metrics.live_allocations(net::now_ms()))
        if (!v.call_id.empty()) ++per_call[v.call_id];
    }
    // The calls' times are Unix milliseconds (the signaling clock follows the wall clock).
    const calls::TimeMs now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
    std::vector<http::AdminCall> out;
    out.reserve(live->size());
    for (const calls::LiveCall& c : *live) {
      const auto it = per_call.find(c.id);
      out.push_back(to_admin(c, it == per_call.end() ? 0 : it->second, now));
    }
    return out;
  };
  a.end_call = [&signaling](const std::string& id) { return signaling.end_call(id, kAdminWait); };
  a.connections = [&signaling] { return signaling.open_sessions(); };
  return a;
}

}  // namespace callrelay::app
