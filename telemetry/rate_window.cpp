#include "telemetry/rate_window.hpp"

#include <algorithm>

namespace callrelay::telemetry {

RateWindow::RateWindow(uint32_t window_s)
    : window_ms_(core::ms_from_seconds(std::max<uint32_t>(window_s, 1))),
      ring_(capacity_for(window_s)) {}

size_t RateWindow::capacity_for(uint32_t window_s) {
  // One sample a second over the window, plus the one at its start, plus slack for jitter.
  return std::max<uint32_t>(window_s, 1) + 2;
}

void RateWindow::add(core::TimeMs t, uint64_t to_peer, uint64_t to_client) {
  if (size_ > 0) {
    Sample& newest = ring_[(head_ + size_ - 1) % ring_.size()];
    if (t < newest.t) return;
    if (t == newest.t) {
      newest = {t, to_peer, to_client};
      return;
    }
  }
  if (size_ == ring_.size()) {  // full: the oldest goes
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
  ring_[(head_ + size_) % ring_.size()] = {t, to_peer, to_client};
  ++size_;
  // Keep the newest sample at or before the window's start, drop the ones before it.
  while (size_ >= 2 && at(1).t <= t - window_ms_) {
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }
}

std::array<double, 2> RateWindow::bytes_per_second() const {
  if (size_ < 2) return {0.0, 0.0};
  const Sample& first = at(0);
  const Sample& last = at(size_ - 1);
  const double seconds = static_cast<double>(last.t - first.t) / 1000.0;
  // Counters only grow; a smaller value would mean a reset, so it reads as zero.
  const auto rate = [seconds](uint64_t a, uint64_t b) {
    return b >= a ? static_cast<double>(b - a) / seconds : 0.0;
  };
  return {rate(first.to_peer, last.to_peer), rate(first.to_client, last.to_client)};
}

}  // namespace callrelay::telemetry
