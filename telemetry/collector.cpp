// Builds the metric families from the workers' counters at scrape time. Per-worker locks are
// held only while copying a worker's live-allocation numbers; the families are built after.
#include "telemetry/collector.hpp"

#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <utility>

namespace callrelay::telemetry {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using LabelList = std::initializer_list<std::pair<std::string_view, std::string_view>>;

MetricFamily family(std::string_view name, std::string_view help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

/// Appends one sample; labels are given in alphabetical order by the callers.
void add(MetricFamily& f, double v, LabelList labels) {
  ClientMetric m;
  m.label.reserve(labels.size());
  for (const auto& [name, value] : labels)
    m.label.push_back({std::string(name), std::string(value)});
  if (f.type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

template <size_t N>
ClientMetric histogram_metric(const FixedHistogram<N>& h, const std::array<double, N>& bounds,
                              LabelList labels) {
  ClientMetric m;
  for (const auto& [name, value] : labels)
    m.label.push_back({std::string(name), std::string(value)});
  uint64_t cumulative = 0;
  for (size_t i = 0; i < N; ++i) {
    cumulative += h.counts[i];
    m.histogram.bucket.push_back({cumulative, bounds[i]});
  }
  m.histogram.sample_count = h.count;  // the serializer writes the +Inf bucket from it
  m.histogram.sample_sum = h.sum;
  return m;
}

double d(uint64_t v) { return static_cast<double>(v); }

/// The labels of a live allocation's series, made when a scrape reads it (under its worker's
/// mutex: `live.info` is valid then).
SeriesLabels series_labels(unsigned worker, const LiveAllocation& live) {
  return {std::to_string(worker) + "-" + std::to_string(live.info->id),
          sanitize_label(live.info->user_id), live.transport, live.family};
}

}  // namespace

struct RelayCollector::Snapshot {
  std::array<EndedTraffic, kTransports> traffic{};  ///< live + ended
  std::array<std::array<uint64_t, kFamilies>, kTransports> active{};
  std::array<std::array<std::array<uint64_t, kFamilies>, kTransports>, kEndReasons> ended{};
  FixedHistogram<kLifetimeBounds.size()> lifetime;
  std::array<FixedHistogram<kBytesBounds.size()>, kDirections> bytes;
  FixedHistogram<kThroughputBounds.size()> throughput;
  std::vector<SeriesSample> series;
};

RelayCollector::RelayCollector(const TelemetryConfig& cfg,
                               const std::vector<std::unique_ptr<WorkerMetrics>>& workers)
    : cfg_(cfg), workers_(workers) {}

std::vector<MetricFamily> RelayCollector::Collect() const { return collect(false).families; }

CollectResult RelayCollector::collect(bool series_as_text) const {
  Snapshot s;
  for (const auto& w : workers_) {
    w->with_state([&](const AllocationState& st) {
      if (cfg_.per_allocation_enabled) s.series.reserve(s.series.size() + st.live.size());
      for (const auto& [id, live] : st.live) {
        const core::TrafficCounters& c = live.info->traffic;
        const std::array<uint64_t, kDirections> bytes = {c.bytes_to_peer.get(),
                                                         c.bytes_to_client.get()};
        const std::array<uint64_t, kDirections> packets = {c.packets_to_peer.get(),
                                                           c.packets_to_client.get()};
        EndedTraffic& t = s.traffic[live.transport];
        for (size_t dir = 0; dir < kDirections; ++dir) {
          t.bytes[dir] += bytes[dir];
          t.packets[dir] += packets[dir];
        }
        ++s.active[live.transport][live.family];
        if (cfg_.per_allocation_enabled) {
          SeriesSample sample{series_labels(w->index(), live), bytes, packets, live.throughput()};
          set_media(sample, live.info->media.get());
          s.series.push_back(std::move(sample));
        }
      }
      for (size_t t = 0; t < kTransports; ++t) {
        for (size_t dir = 0; dir < kDirections; ++dir) {
          s.traffic[t].bytes[dir] += st.ended_traffic[t].bytes[dir];
          s.traffic[t].packets[dir] += st.ended_traffic[t].packets[dir];
        }
      }
      for (size_t r = 0; r < kEndReasons; ++r) {
        for (size_t t = 0; t < kTransports; ++t) {
          for (size_t f = 0; f < kFamilies; ++f) s.ended[r][t][f] += st.ended[r][t][f];
        }
      }
      s.lifetime.merge(st.lifetime);
      for (size_t dir = 0; dir < kDirections; ++dir) s.bytes[dir].merge(st.bytes[dir]);
      s.throughput.merge(st.throughput);
    });
  }
  CollectResult result;
  result.families.reserve(24);
  collect_allocations(s, result.families);
  collect_events(result.families);
  collect_histograms(s, result.families);
  if (cfg_.per_allocation_enabled) collect_series(s, series_as_text, result);
  return result;
}

void RelayCollector::collect_allocations(const Snapshot& s, std::vector<MetricFamily>& out) const {
  auto bytes =
      family("callrelay_relayed_bytes_total",
             "Payload bytes relayed, by direction and client transport.", MetricType::Counter);
  auto packets = family("callrelay_relayed_packets_total",
                        "Packets relayed, by direction and client transport.", MetricType::Counter);
  auto active = family("callrelay_allocations_active",
                       "Live allocations, by client transport and relayed address family.",
                       MetricType::Gauge);
  auto created = family("callrelay_allocations_created_total",
                        "Allocations created, by client transport and relayed address family.",
                        MetricType::Counter);
  auto ended = family("callrelay_allocations_ended_total",
                      "Allocations ended, by end reason, client transport and address family.",
                      MetricType::Counter);
  std::array<std::array<uint64_t, kFamilies>, kTransports> created_sum{};
  for (const auto& w : workers_) {
    for (size_t t = 0; t < kTransports; ++t) {
      for (size_t f = 0; f < kFamilies; ++f) created_sum[t][f] += w->events().created[t][f].get();
    }
  }
  for (size_t t = 0; t < kTransports; ++t) {
    const auto tl = transport_label(t);
    for (size_t dir = 0; dir < kDirections; ++dir) {
      add(bytes, d(s.traffic[t].bytes[dir]),
          {{"direction", direction_label(dir)}, {"transport", tl}});
      add(packets, d(s.traffic[t].packets[dir]),
          {{"direction", direction_label(dir)}, {"transport", tl}});
    }
    for (size_t f = 0; f < kFamilies; ++f) {
      add(active, d(s.active[t][f]), {{"family", family_label(f)}, {"transport", tl}});
      // A scrape reads `created` without the lock that guards `live`: never report fewer
      // created than are live plus ended.
      uint64_t ended_tf = 0;
      for (size_t r = 0; r < kEndReasons; ++r) ended_tf += s.ended[r][t][f];
      add(created, d(std::max(created_sum[t][f], ended_tf + s.active[t][f])),
          {{"family", family_label(f)}, {"transport", tl}});
    }
  }
  for (size_t r = 0; r < kEndReasons; ++r) {
    for (size_t t = 0; t < kTransports; ++t) {
      for (size_t f = 0; f < kFamilies; ++f) {
        add(ended, d(s.ended[r][t][f]),
            {{"family", family_label(f)},
             {"reason", end_reason_label(r)},
             {"transport", transport_label(t)}});
      }
    }
  }
  for (auto* f : {&bytes, &packets, &active, &created, &ended}) out.push_back(std::move(*f));
}

void RelayCollector::collect_events(std::vector<MetricFamily>& out) const {
  auto requests = family("callrelay_requests_total",
                         "STUN/TURN requests answered, by method, client transport and response "
                         "code (success, a known STUN error code, or other).",
                         MetricType::Counter);
  auto auth = family("callrelay_auth_failures_total",
                     "Requests that failed authentication, by reason.", MetricType::Counter);
  auto secrets = family("callrelay_allocations_by_secret_total",
                        "Allocations created, by the index of the REST secret that validated the "
                        "username (static for static users; other for index 8 and up).",
                        MetricType::Counter);
  auto denials =
      family("callrelay_peer_denials_total",
             "Peer addresses refused by the peer policy, by reason.", MetricType::Counter);
  auto drops =
      family("callrelay_dropped_packets_total", "Packets dropped, by reason.", MetricType::Counter);
  const auto sum = [this](auto&& get) {
    uint64_t v = 0;
    for (const auto& w : workers_) v += get(w->events()).get();
    return v;
  };
  for (size_t m = 0; m < kMethods; ++m) {
    for (size_t t = 0; t < kTransports; ++t) {
      for (size_t c = 0; c < kCodes; ++c) {
        const uint64_t v =
            sum([&](const EventCounters& e) -> auto& { return e.requests[m][t][c]; });
        // Only combinations seen so far: most of the 594 never happen.
        if (v == 0) continue;
        add(requests, d(v),
            {{"code", code_label(c)},
             {"method", method_label(m)},
             {"transport", transport_label(t)}});
      }
    }
  }
  for (size_t r = 0; r < kAuthFailures; ++r) {
    add(auth, d(sum([&](const EventCounters& e) -> auto& { return e.auth_failures[r]; })),
        {{"reason", auth_failure_label(r)}});
  }
  for (size_t i = 0; i < kSecretSlots; ++i) {
    const uint64_t v = sum([&](const EventCounters& e) -> auto& { return e.by_secret[i]; });
    if (v != 0) add(secrets, d(v), {{"secret_index", secret_label(i)}});
  }
  for (size_t r = 0; r < kDenyReasons; ++r) {
    add(denials, d(sum([&](const EventCounters& e) -> auto& { return e.peer_denials[r]; })),
        {{"reason", deny_reason_label(r)}});
  }
  for (size_t r = 0; r < kDropReasons; ++r) {
    add(drops, d(sum([&](const EventCounters& e) -> auto& { return e.drops[r]; })),
        {{"reason", drop_reason_label(r)}});
  }
  for (auto* f : {&requests, &auth, &secrets, &denials, &drops}) out.push_back(std::move(*f));
}

void RelayCollector::collect_histograms(const Snapshot& s, std::vector<MetricFamily>& out) const {
  auto lifetime = family("callrelay_allocation_lifetime_seconds", "Lifetime of ended allocations.",
                         MetricType::Histogram);
  lifetime.metric.push_back(histogram_metric(s.lifetime, kLifetimeBounds, {}));
  auto bytes = family("callrelay_allocation_traffic_bytes",
                      "Payload bytes relayed by an allocation over its life, by direction; "
                      "observed when it ends.",
                      MetricType::Histogram);
  for (size_t dir = 0; dir < kDirections; ++dir) {
    bytes.metric.push_back(
        histogram_metric(s.bytes[dir], kBytesBounds, {{"direction", direction_label(dir)}}));
  }
  auto throughput = family("callrelay_allocation_mean_throughput_bytes_per_second",
                           "Mean throughput (both directions) of an allocation over its life; "
                           "observed when it ends.",
                           MetricType::Histogram);
  throughput.metric.push_back(histogram_metric(s.throughput, kThroughputBounds, {}));
  for (auto* f : {&lifetime, &bytes, &throughput}) out.push_back(std::move(*f));
}

void RelayCollector::collect_series(Snapshot& s, bool as_text, CollectResult& out) const {
  const size_t suppressed = select_series(s.series, cfg_.per_allocation_max_series);
  if (suppressed != 0) cap_hits_.fetch_add(1, std::memory_order_relaxed);
  auto hits = family("callrelay_allocation_series_cap_hits_total",
                     "Scrapes that left out per-allocation series because more allocations were "
                     "live than telemetry.per_allocation.max_series.",
                     MetricType::Counter);
  add(hits, d(cap_hits_.load(std::memory_order_relaxed)), {});
  auto hidden = family("callrelay_allocation_series_suppressed",
                       "Live allocations left out of the per-allocation series by the last scrape.",
                       MetricType::Gauge);
  add(hidden, d(suppressed), {});
  out.families.push_back(std::move(hits));
  out.families.push_back(std::move(hidden));
  if (as_text) {
    out.series = std::move(s.series);
    out.series_pending = true;
  } else {
    add_series_families(s.series, out.families);
  }
}

}  // namespace callrelay::telemetry
