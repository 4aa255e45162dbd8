#include "telemetry/live_view.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace callrelay::telemetry {
namespace {

/// The media quality of an allocation, or nullopt while no RTP packet was expected.
std::optional<LiveQuality> quality_of(const media::MediaCounters& m) {
  uint64_t expected = 0, received = 0, jitter_us = 0;
  for (const media::KindCounters& k : m.kind) {
    const uint64_t e = k.expected.get();
    const uint64_t r = k.received.get();
    expected += e;
    received += std::min(r, e);  // read apart from `expected`: never count more than expected
    if (r > 0) jitter_us = std::max(jitter_us, k.jitter_us.get());
  }
  if (expected == 0) return std::nullopt;
  return LiveQuality{static_cast<double>(expected - received) / static_cast<double>(expected),
                     static_cast<double>(jitter_us) / 1000.0};
}

/// The numeric parts of "<worker>-<core id>" for sorting (ids are made by WorkerMetrics).
std::pair<uint64_t, uint64_t> id_key(const std::string& id) {
  uint64_t worker = 0, core_id = 0;
  const size_t dash = id.find('-');
  if (dash == std::string::npos) return {0, 0};
  std::from_chars(id.data(), id.data() + dash, worker);
  std::from_chars(id.data() + dash + 1, id.data() + id.size(), core_id);
  return {worker, core_id};
}

}  // namespace

std::vector<LiveAllocationView> live_allocations(
    const std::vector<std::unique_ptr<WorkerMetrics>>& workers, core::TimeMs now) {
  std::vector<LiveAllocationView> out;
  for (const auto& w : workers) {
    w->with_state([&](const AllocationState& st) {
      out.reserve(out.size() + st.live.size());
      for (const auto& [id, live] : st.live) {
        const core::TrafficCounters& c = live.info->traffic;
        const core::AllocationInfo& a = *live.info;
        LiveAllocationView v;
        v.id = std::to_string(w->index()) + "-" + std::to_string(a.id);
        v.user = a.user_id;
        v.transport = transport_label(live.transport);
        v.family = family_label(live.family);
        v.client = a.client.client.to_string();
        v.relayed.push_back(a.relayed.to_string());
        if (a.relayed_additional) v.relayed.push_back(a.relayed_additional->to_string());
        v.call_id = a.call_id;
        v.age_s = static_cast<double>(std::max<core::TimeMs>(now - a.started, 0)) / 1e3;
        v.bytes = {c.bytes_to_peer.get(), c.bytes_to_client.get()};
        v.rate = live.throughput();
        v.quality = quality_of(live.info->media.get());
        out.push_back(std::move(v));
      }
    });
  }
  std::sort(out.begin(), out.end(), [](const LiveAllocationView& a, const LiveAllocationView& b) {
    return id_key(a.id) < id_key(b.id);
  });
  return out;
}

LiveCounts live_counts(const std::vector<std::unique_ptr<WorkerMetrics>>& workers) {
  LiveCounts counts;
  for (const auto& w : workers) {
    w->with_state([&](const AllocationState& st) {
      for (const auto& [id, live] : st.live) ++counts.by_transport[live.transport];
      counts.total += st.live.size();
    });
  }
  return counts;
}

}  // namespace callrelay::telemetry
