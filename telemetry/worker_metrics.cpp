#include "telemetry/worker_metrics.hpp"

#include <algorithm>

namespace callrelay::telemetry {
namespace {

template <typename E>
size_t bounded(E e, size_t n) {
  const auto i = static_cast<size_t>(e);
  return i < n ? i : n - 1;
}

}  // namespace

WorkerMetrics::WorkerMetrics(unsigned index, uint32_t rate_window_s)
    : index_(index), rate_window_s_(rate_window_s) {}

void WorkerMetrics::on_allocation_created(const core::AllocationInfo& a) {
  const size_t t = transport_index(a.client.transport);
  const size_t f = family_index(a);
  events_.created[t][f].add(1);
  events_.by_secret[secret_index(a.secret_index)].add(1);

  auto labels = std::make_shared<SeriesLabels>();
  labels->allocation_id = std::to_string(index_) + "-" + std::to_string(a.id);
  labels->user = sanitize_label(a.user_id);
  labels->transport = t;
  labels->family = f;
  AllocationFacts facts{a.user_id, a.call_id, a.client.client, a.relayed, a.relayed_additional,
                        a.started};
  LiveAllocation live{&a, std::move(labels), RateWindow(rate_window_s_), {}, std::move(facts)};
  // The first sample is the allocation's start, so the first tick already yields a rate.
  live.window.add(a.started, a.traffic.bytes_to_peer.get(), a.traffic.bytes_to_client.get());
  {
    std::lock_guard lock(mu_);
    state_.live.insert_or_assign(a.id, std::move(live));
  }
  if (next_ != nullptr) next_->on_allocation_created(a);
}

void WorkerMetrics::on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                                        core::TimeMs now) {
  // On the worker's thread: nothing else writes these counters now, so they are final.
  const std::array<uint64_t, kDirections> bytes = {a.traffic.bytes_to_peer.get(),
                                                   a.traffic.bytes_to_client.get()};
  const std::array<uint64_t, kDirections> packets = {a.traffic.packets_to_peer.get(),
                                                     a.traffic.packets_to_client.get()};
  const size_t t = transport_index(a.client.transport);
  const size_t f = family_index(a);
  const core::TimeMs lifetime_ms = std::max<core::TimeMs>(now - a.started, 0);
  {
    // Moving the counts into the ended totals and out of the live set in one step keeps the
    // aggregate (live + ended) monotonic for scrapes.
    std::lock_guard lock(mu_);
    EndedTraffic& e = state_.ended_traffic[t];
    for (size_t d = 0; d < kDirections; ++d) {
      e.bytes[d] += bytes[d];
      e.packets[d] += packets[d];
      state_.bytes[d].observe(static_cast<double>(bytes[d]), kBytesBounds);
    }
    ++state_.ended[bounded(reason, kEndReasons)][t][f];
    const double seconds = static_cast<double>(lifetime_ms) / 1000.0;
    state_.lifetime.observe(seconds, kLifetimeBounds);
    // A mean over no time is undefined: an allocation ended within its first millisecond is
    // left out of the throughput histogram.
    if (lifetime_ms > 0) {
      state_.throughput.observe(static_cast<double>(bytes[0] + bytes[1]) / seconds,
                                kThroughputBounds);
    }
    state_.live.erase(a.id);
  }
  if (next_ != nullptr) next_->on_allocation_ended(a, reason, now);
}

void WorkerMetrics::on_request(stun::Method m, core::Transport t, uint16_t code) {
  events_.requests[method_index(m)][transport_index(t)][code_index(code)].add(1);
  if (next_ != nullptr) next_->on_request(m, t, code);
}

void WorkerMetrics::on_auth_failure(core::AuthFailure r) {
  events_.auth_failures[bounded(r, kAuthFailures)].add(1);
  if (next_ != nullptr) next_->on_auth_failure(r);
}

void WorkerMetrics::on_peer_denied(core::PeerDenyReason r) {
  events_.peer_denials[bounded(r, kDenyReasons)].add(1);
  if (next_ != nullptr) next_->on_peer_denied(r);
}

void WorkerMetrics::on_drop(core::DropReason r) {
  events_.drops[bounded(r, kDropReasons)].add(1);
  if (next_ != nullptr) next_->on_drop(r);
}

void WorkerMetrics::sample(core::TimeMs now) {
  std::lock_guard lock(mu_);
  for (auto& [id, live] : state_.live) {
    const core::TrafficCounters& c = live.info->traffic;
    live.window.add(now, c.bytes_to_peer.get(), c.bytes_to_client.get());
    live.throughput = live.window.bytes_per_second();
  }
}

}  // namespace callrelay::telemetry
