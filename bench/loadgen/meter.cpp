#include "bench/loadgen/meter.hpp"

#include <cstdio>

namespace callrelay::bench {

Meter::Meter(const Options& options) : options_(options) {
  if (!options.echo_stats.empty()) echo_.emplace(SharedCounter::open(options.echo_stats));
}

Snapshot Meter::take() const {
  Snapshot s;
  s.t_ns = now_ns();
  s.cpu = read_cpu_ticks(options_.server_cpu).value_or(CpuTicks{});
  if (options_.gen_cpu >= 0) s.gen_cpu = read_cpu_ticks(options_.gen_cpu).value_or(CpuTicks{});
  if (options_.server_pid > 0) {
    s.process_cpu_s = read_process_cpu_s(options_.server_pid).value_or(0);
  }
  if (echo_) s.echo_rx = echo_->load();
  return s;
}

double Meter::busy_s(const Snapshot& a, const Snapshot& b) const {
  return static_cast<double>(b.cpu.busy - a.cpu.busy) / ticks_per_second();
}

namespace {
double utilisation(const CpuTicks& a, const CpuTicks& b) {
  const double total = static_cast<double>(b.total - a.total);
  return total > 0 ? static_cast<double>(b.busy - a.busy) / total : 0;
}
}  // namespace

std::string Meter::describe(const Snapshot& a, const Snapshot& b) const {
  const double window = static_cast<double>(b.t_ns - a.t_ns) / 1e9;
  char text[256];
  std::snprintf(text, sizeof text,
                "window_s=%.3f cpu_busy_s=%.3f cpu_util=%.3f cpu_irq_s=%.3f proc_cpu_s=%.3f "
                "gen_cpu_util=%.3f",
                window, busy_s(a, b), utilisation(a.cpu, b.cpu),
                static_cast<double>(b.cpu.irq - a.cpu.irq) / ticks_per_second(),
                b.process_cpu_s - a.process_cpu_s, utilisation(a.gen_cpu, b.gen_cpu));
  return text;
}

std::optional<uint64_t> Meter::rss_kib() const {
  if (options_.server_pid <= 0) return std::nullopt;
  return read_vmrss_kib(options_.server_pid);
}

void print_relayed(const Meter& meter, const Snapshot& a, const Snapshot& b, uint64_t client_rx) {
  const uint64_t echo_rx = b.echo_rx - a.echo_rx;
  // Each echoed packet crossed the relay twice; the echo counter adds those lost on the way back.
  const uint64_t relayed = meter.has_echo() ? echo_rx + client_rx : 2 * client_rx;
  const double window = static_cast<double>(b.t_ns - a.t_ns) / 1e9;
  const double busy = meter.busy_s(a, b);
  const double per = relayed ? 1e9 / static_cast<double>(relayed) : 0.0;
  std::printf(
      " client_rx=%llu echo_rx=%llu relayed=%llu pps=%.0f ns_per_pkt=%.1f "
      "proc_ns_per_pkt=%.1f %s\n",
      static_cast<unsigned long long>(client_rx), static_cast<unsigned long long>(echo_rx),
      static_cast<unsigned long long>(relayed), static_cast<double>(relayed) / window, busy * per,
      (b.process_cpu_s - a.process_cpu_s) * per, meter.describe(a, b).c_str());
}

}  // namespace callrelay::bench
