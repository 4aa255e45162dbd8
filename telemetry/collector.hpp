// The custom prometheus::Collectable: at scrape time it reads every worker's counters and live
// allocations and turns them into metric families. Nothing is pushed into prometheus-cpp by the
// workers.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "telemetry/per_allocation.hpp"
#include "telemetry/telemetry.hpp"
#include "telemetry/worker_metrics.hpp"

namespace callrelay::telemetry {

/// One scrape: metric families, then (with series_as_text) the selected per-allocation series
/// still to be rendered with render_series_text() after the families.
struct CollectResult {
  std::vector<prometheus::MetricFamily> families;
  std::vector<SeriesSample> series;
  bool series_pending = false;  ///< render `series` (possibly none) after the families
};

/// Thread-safe: Collect() may run on several threads at once.
class RelayCollector final : public prometheus::Collectable {
 public:
  /// `workers` must outlive the collector.
  RelayCollector(const TelemetryConfig& cfg,
                 const std::vector<std::unique_ptr<WorkerMetrics>>& workers);

  /// Every family, the per-allocation series included (last).
  std::vector<prometheus::MetricFamily> Collect() const override;

  /// The same data; with `series_as_text` the per-allocation families are left out of
  /// `families` and their samples returned in `series` instead, to be written with
  /// render_series_text() (see per_allocation.hpp: the serializer is too slow for tens of
  /// thousands of samples). Serializing `families` and then rendering `series` gives the same
  /// text as serializing Collect().
  CollectResult collect(bool series_as_text) const;

 private:
  struct Snapshot;
  void collect_events(std::vector<prometheus::MetricFamily>& out) const;
  void collect_allocations(const Snapshot& s, std::vector<prometheus::MetricFamily>& out) const;
  void collect_histograms(const Snapshot& s, std::vector<prometheus::MetricFamily>& out) const;
  void collect_series(Snapshot& s, bool as_text, CollectResult& out) const;

  TelemetryConfig cfg_;
  const std::vector<std::unique_ptr<WorkerMetrics>>& workers_;
  mutable std::atomic<uint64_t> cap_hits_{0};
};

}  // namespace callrelay::telemetry
