// The live per-allocation series: which allocations get them (the cap), and the two ways to
// emit them, as prometheus-cpp metric families or straight to exposition text. The text path
// exists for speed: at 10,000 allocations (80,000 samples) prometheus-cpp's TextSerializer
// alone takes well over 50 ms, the direct writer a fraction of it. Both produce the same bytes.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "relay/media/monitor.hpp"
#include "telemetry/worker_metrics.hpp"

namespace callrelay::telemetry {

/// One live allocation's numbers as a scrape read them.
struct SeriesSample {
  SeriesLabels labels;
  std::array<uint64_t, kDirections> bytes{}, packets{};
  std::array<double, kDirections> throughput{};  ///< bytes/s as of the last tick
  /// Relay-observed media the client sent (core::AllocationInfo::media, both kinds):
  /// lost / expected since the allocation started (0 when nothing was expected yet).
  double media_loss_ratio = 0;
  double media_jitter_seconds = 0;  ///< the worst kind's current interarrival jitter
  double rank() const { return throughput[0] + throughput[1]; }
};

/// Keeps at most `cap` samples, the biggest by current throughput (ties: the smaller
/// allocation id), and sorts them by allocation id. Returns how many were dropped.
size_t select_series(std::vector<SeriesSample>& series, size_t cap);

/// The media fields of a sample from an allocation's media counters.
void set_media(SeriesSample& s, const media::MediaCounters& m);

/// Appends the per-allocation families: bytes, packets and throughput by direction, then media
/// loss ratio and jitter (labelled with the one direction they measure, client_to_peer).
void add_series_families(const std::vector<SeriesSample>& series,
                         std::vector<prometheus::MetricFamily>& out);

/// Appends the same families in the text exposition format 0.0.4, byte for byte what
/// prometheus::TextSerializer writes for add_series_families' output.
void render_series_text(const std::vector<SeriesSample>& series, std::string& out);

}  // namespace callrelay::telemetry
