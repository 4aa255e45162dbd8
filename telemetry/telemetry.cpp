// Telemetry: one WorkerMetrics per worker, the custom collector over them, and the process
// gauges kept in a prometheus::Registry; scrape_text serializes both.
#include "telemetry/telemetry.hpp"

#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "base/limits.hpp"
#include "base/log.hpp"
#include "telemetry/collector.hpp"
#include "telemetry/worker_metrics.hpp"

namespace callrelay::telemetry {
namespace {

/// Open file descriptors of this process (entries of /proc/self/fd, less the one listing it).
uint64_t open_fds() {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return 0;
  uint64_t n = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    ++n;
  }
  return n > 0 ? n - 1 : 0;
}

/// The steady clock in ms: the clock relay/net's now_ms() reads (the core's `now`).
core::TimeMs monotonic_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name, const std::string& help,
                         const prometheus::Labels& labels = {}) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

}  // namespace

struct Telemetry::Impl {
  Impl(TelemetryConfig c, unsigned workers, ProcessProbes p)
      : cfg(c),
        probes(std::move(p)),
        started_at(probes.started_at != 0 ? probes.started_at : monotonic_now_ms()) {
    for (unsigned i = 0; i < workers; ++i) {
      worker_metrics.push_back(std::make_unique<WorkerMetrics>(i, cfg.bitrate_window_s));
    }
    collector = std::make_unique<RelayCollector>(cfg, worker_metrics);
    gauge(registry, "callrelay_build_info", "Always 1; the version label names the build.",
          {{"version", probes.version}})
        .Set(1);
    gauge(registry, "callrelay_worker_threads", "Relay worker threads (one core shard each).")
        .Set(probes.worker_threads != 0 ? probes.worker_threads : workers);
    gauge(registry, "callrelay_relay_ports_capacity",
          "Relay ports in the configured range (relay.port_min..port_max).")
        .Set(static_cast<double>(probes.relay_ports_total));
    uptime = &gauge(registry, "callrelay_uptime_seconds", "Seconds since the process started.");
    fds = &gauge(registry, "callrelay_open_fds", "Open file descriptors of the process.");
    draining = &gauge(registry, "callrelay_draining",
                      "1 while the relay drains (/readyz answers 503), else 0.");
    if (probes.relay_ports_in_use) {
      ports_in_use = &gauge(registry, "callrelay_relay_ports_in_use",
                            "Relay ports currently open (allocations and reservations).");
    }
    if (probes.tcp_peer_connections) {
      tcp_peers = &gauge(registry, "callrelay_tcp_peer_connections",
                         "RFC 6062 peer data connections open now (connecting, waiting for their "
                         "ConnectionBind, or relaying).");
    }
  }

  TelemetryConfig cfg;
  ProcessProbes probes;
  core::TimeMs started_at;
  std::vector<std::unique_ptr<WorkerMetrics>> worker_metrics;
  std::unique_ptr<RelayCollector> collector;
  prometheus::Registry registry;
  prometheus::Gauge* uptime = nullptr;
  prometheus::Gauge* fds = nullptr;
  prometheus::Gauge* ports_in_use = nullptr;
  prometheus::Gauge* tcp_peers = nullptr;
  prometheus::Gauge* draining = nullptr;
  prometheus::TextSerializer serializer;
};

Telemetry::Telemetry(TelemetryConfig cfg, unsigned workers, ProcessProbes probes)
    : impl_(std::make_unique<Impl>(cfg, workers, std::move(probes))) {}

Telemetry::~Telemetry() = default;

core::Observer* Telemetry::observer_for_worker(unsigned index, core::Observer* next) {
  if (index >= impl_->worker_metrics.size()) {
    throw std::out_of_range("telemetry: no worker " + std::to_string(index));
  }
  WorkerMetrics& w = *impl_->worker_metrics[index];
  w.set_next(next);
  return &w;
}

void Telemetry::tick(core::TimeMs now) {
  // The rates feed the per-allocation series and the admin API's view, which is never off.
  for (auto& w : impl_->worker_metrics) w->sample(now);
}

std::vector<LiveAllocationView> Telemetry::live_allocations(core::TimeMs now) const {
  return telemetry::live_allocations(impl_->worker_metrics, now);
}

LiveCounts Telemetry::live_counts() const { return telemetry::live_counts(impl_->worker_metrics); }

const ProcessProbes& Telemetry::probes() const { return impl_->probes; }

core::TimeMs Telemetry::started_at() const { return impl_->started_at; }

namespace {

/// Every limit is rendered, hit or not, so that rate() and alerts work from the first scrape.
void render_limits(const base::LimitCounters& c, std::string& out) {
  out += "# HELP callrelay_limit_hits_total Requests, connections and packets refused, closed, "
         "withheld or dropped by an abuse limit or bandwidth cap, by limit.\n"
         "# TYPE callrelay_limit_hits_total counter\n";
  for (size_t i = 0; i < base::kLimitCount; ++i) {
    const auto l = static_cast<base::Limit>(i);
    out += "callrelay_limit_hits_total{limit=\"";
    out += base::to_string(l);
    out += "\"} ";
    out += std::to_string(c.hits(l));
    out += '\n';
  }
  out += "# HELP callrelay_bandwidth_dropped_bytes_total Relayed payload bytes dropped by a "
         "bandwidth cap, by scope (allocation, user, total).\n"
         "# TYPE callrelay_bandwidth_dropped_bytes_total counter\n";
  for (const auto& [l, scope] : {std::pair{base::Limit::kBandwidthAllocation, "allocation"},
                                 std::pair{base::Limit::kBandwidthUser, "user"},
                                 std::pair{base::Limit::kBandwidthTotal, "total"}}) {
    out += "callrelay_bandwidth_dropped_bytes_total{scope=\"";
    out += scope;
    out += "\"} ";
    out += std::to_string(c.bytes(l));
    out += '\n';
  }
}

/// The log's lines dropped because stderr took none for a while (its buffer was full): read
/// from the logger at scrape time, as the limits are.
void render_log_drops(std::string& out) {
  out += "# HELP callrelay_log_lines_dropped_total Log lines dropped because stderr took no "
         "more for a while (the log's buffer was full).\n"
         "# TYPE callrelay_log_lines_dropped_total counter\n"
         "callrelay_log_lines_dropped_total ";
  out += std::to_string(log::dropped_lines());
  out += '\n';
}

}  // namespace

std::string Telemetry::scrape_text(core::TimeMs now) {
  Impl& s = *impl_;
  s.uptime->Set(static_cast<double>(std::max<core::TimeMs>(now - s.started_at, 0)) / 1000.0);
  s.fds->Set(static_cast<double>(open_fds()));
  if (s.ports_in_use != nullptr)
    s.ports_in_use->Set(static_cast<double>(s.probes.relay_ports_in_use()));
  if (s.tcp_peers != nullptr) {
    s.tcp_peers->Set(static_cast<double>(s.probes.tcp_peer_connections()));
  }
  s.draining->Set(s.probes.draining && s.probes.draining() ? 1.0 : 0.0);
  std::vector<prometheus::MetricFamily> families = s.registry.Collect();
  CollectResult relay = s.collector->collect(/*series_as_text=*/true);
  families.insert(families.end(), std::make_move_iterator(relay.families.begin()),
                  std::make_move_iterator(relay.families.end()));
  std::ostringstream out;
  s.serializer.Serialize(out, families);
  std::string text = std::move(out).str();
  if (relay.series_pending) render_series_text(relay.series, text);
  if (s.probes.limits != nullptr) render_limits(*s.probes.limits, text);
  render_log_drops(text);
  return text;
}

}  // namespace callrelay::telemetry
