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

  LiveAllocation live;
  live.info = &a;
  live.transport = static_cast<uint8_t>(t);
  live.family = static_cast<uint8_t>(f);
  const uint64_t to_peer = a.traffic.bytes_to_peer.get();
  const uint64_t to_client = a.traffic.bytes_to_client.get();
  if (to_peer != 0 || to_client != 0) {
    // Traffic before the registry saw it: the window starts now, as an eager one would.
    live.rate = std::make_unique<ActiveRate>(rate_window_s_);
    live.rate->window.add(a.started, to_peer, to_client);
  }
  {
    std::lock_guard lock(mu_);
    live.created_tick = ticks_;
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
  // Ticks come from one thread on the monotonic clock: a tick at the previous one's time only
  // renews it (an idle window would replace its zero sample with another); an older one (which
  // every window ignores) is not remembered.
  if (tick_times_.empty()) tick_times_.resize(RateWindow::capacity_for(rate_window_s_));
  ++ticks_;
  Tick* newest = distinct_ticks_ == 0 ? nullptr
                                      : &tick_times_[(distinct_ticks_ - 1) % tick_times_.size()];
  if (newest != nullptr && newest->t == now) {
    newest->last = ticks_;
  } else if (newest == nullptr || now > newest->t) {
    tick_times_[distinct_ticks_ % tick_times_.size()] = {now, ticks_};
    ++distinct_ticks_;
  }
  for (auto& [id, live] : state_.live) {
    const core::TrafficCounters& c = live.info->traffic;
    const uint64_t to_peer = c.bytes_to_peer.get();
    const uint64_t to_client = c.bytes_to_client.get();
    if (!live.rate) {
      if (to_peer == 0 && to_client == 0) continue;  // idle: its rate stays 0, nothing kept
      activate(live, now, to_peer, to_client);
      continue;
    }
    live.rate->window.add(now, to_peer, to_client);
    live.rate->throughput = live.rate->window.bytes_per_second();
  }
}

void WorkerMetrics::activate(LiveAllocation& live, core::TimeMs now, uint64_t to_peer,
                             uint64_t to_client) {
  live.rate = std::make_unique<ActiveRate>(rate_window_s_);
  RateWindow& w = live.rate->window;
  // The samples an eager window would have taken: the start, then every tick since the
  // allocation was created, all with zero bytes. Only the last capacity_for() of them can
  // still be in a window, and tick_times_ remembers that many.
  w.add(live.info->started, 0, 0);
  const auto remembered = static_cast<uint32_t>(tick_times_.size());
  const uint32_t first = distinct_ticks_ > remembered ? distinct_ticks_ - remembered : 0;
  for (uint32_t n = first; n < distinct_ticks_; ++n) {
    const Tick& tick = tick_times_[n % remembered];
    if (tick.last > live.created_tick) w.add(tick.t, 0, 0);
  }
  w.add(now, to_peer, to_client);
  live.rate->throughput = w.bytes_per_second();
}

}  // namespace callrelay::telemetry
