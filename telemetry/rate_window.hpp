// The current throughput of one allocation (its "bitrate", exported in bytes per second):
// cumulative byte counts sampled by Telemetry::tick() in a small ring, and the rate between
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "relay/core/types.hpp"

namespace callrelay::telemetry {

/// Not thread-safe: the owner's mutex guards it.
class RateWindow {
 public:
  /// Averages over about `window_s` seconds (at least 1) of samples taken about once a second.
  explicit RateWindow(uint32_t window_s);

  /// Records the cumulative payload bytes each way at `t`. A sample older than the newest is
  /// ignored; one at the same time replaces it.
  void add(core::TimeMs t, uint64_t to_peer, uint64_t to_client);

  /// Bytes per second each way ([0] client to peer, [1] peer to client) between the oldest and
  /// the newest sample; zero until two samples at different times exist.
  std::array<double, 2> bytes_per_second() const;

  /// How many samples a window of `window_s` seconds holds at most.
  static size_t capacity_for(uint32_t window_s);

 private:
  struct Sample {
    core::TimeMs t = 0;
    uint64_t to_peer = 0, to_client = 0;
  };
  const Sample& at(size_t i) const { return ring_[(head_ + i) % ring_.size()]; }

  core::TimeMs window_ms_;
  std::vector<Sample> ring_;
  size_t head_ = 0;  ///< oldest sample
  size_t size_ = 0;
};

}  // namespace callrelay::telemetry
