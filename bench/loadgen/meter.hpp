// Snapshots of what the bench measures around a window: the server CPU's busy ticks, the
// server process's CPU time and RSS, and the echo peer's receive counter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bench/common/common.hpp"
#include "bench/loadgen/options.hpp"

namespace callrelay::bench {

struct Snapshot {
  uint64_t t_ns = 0;
  CpuTicks cpu;
  CpuTicks gen_cpu;  ///< the generator's CPU, to tell who saturated
  double process_cpu_s = 0;
  uint64_t echo_rx = 0;
};

class Meter {
 public:
  /// Throws std::runtime_error when --echo-stats names a file that cannot be mapped.
  explicit Meter(const Options& options);
  Snapshot take() const;
  bool has_echo() const { return echo_.has_value(); }
  /// "window_s=.. cpu_busy_s=.. cpu_util=.. proc_cpu_s=.." between two snapshots.
  std::string describe(const Snapshot& a, const Snapshot& b) const;
  /// Server CPU busy seconds between two snapshots.
  double busy_s(const Snapshot& a, const Snapshot& b) const;
  std::optional<uint64_t> rss_kib() const;

 private:
  const Options& options_;
  std::optional<SharedCounter> echo_;
};

/// Prints the max mode's packet counts and CPU per relayed packet between two snapshots
/// (" client_rx=.. echo_rx=.. relayed=.. pps=.. ns_per_pkt=.. ..." and a newline); `client_rx`
/// is how many well-formed echoes the clients received in the window.
void print_relayed(const Meter& meter, const Snapshot& a, const Snapshot& b, uint64_t client_rx);

}  // namespace callrelay::bench
