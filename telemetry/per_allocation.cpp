#include "telemetry/per_allocation.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <string_view>

namespace callrelay::telemetry {
namespace {

struct FamilyInfo {
  const char* name;
  const char* help;
  prometheus::MetricType type;
  const char* type_name;
  size_t directions;  ///< series per allocation: both directions, or client_to_peer only
};
constexpr FamilyInfo kBytes = {"callrelay_allocation_relayed_bytes_total",
                               "Payload bytes relayed by one live allocation, by direction.",
                               prometheus::MetricType::Counter, "counter", kDirections};
constexpr FamilyInfo kPackets = {"callrelay_allocation_relayed_packets_total",
                                 "Packets relayed by one live allocation, by direction.",
                                 prometheus::MetricType::Counter, "counter", kDirections};
constexpr FamilyInfo kThroughput = {
    "callrelay_allocation_throughput_bytes_per_second",
    "Current throughput of one live allocation over the last few seconds "
    "(TelemetryConfig::bitrate_window_s), by direction.",
    prometheus::MetricType::Gauge, "gauge", kDirections};
constexpr FamilyInfo kMediaLoss = {
    "callrelay_allocation_media_loss_ratio",
    "RTP packets lost on the way from the client to the relay, over those expected, since one "
    "live allocation started (audio and video).",
    prometheus::MetricType::Gauge, "gauge", 1};
constexpr FamilyInfo kMediaJitter = {
    "callrelay_allocation_media_jitter_seconds",
    "Current RTP interarrival jitter of the media the client sends through one live allocation "
    "(the worse of audio and video).",
    prometheus::MetricType::Gauge, "gauge", 1};
constexpr std::array<const FamilyInfo*, 5> kFamiliesInOrder = {&kBytes, &kPackets, &kThroughput,
                                                               &kMediaLoss, &kMediaJitter};

double value_of(const FamilyInfo& f, const SeriesSample& s, size_t dir) {
  if (&f == &kBytes) return static_cast<double>(s.bytes[dir]);
  if (&f == &kPackets) return static_cast<double>(s.packets[dir]);
  if (&f == &kMediaLoss) return s.media_loss_ratio;
  if (&f == &kMediaJitter) return s.media_jitter_seconds;
  return s.throughput[dir];
}

/// Label value escaping of the text format: backslash, double quote and line feed.
void append_escaped(std::string& out, std::string_view v) {
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

/// As prometheus-cpp 1.0 writes a value: "%.16g" (max_digits10 - 1), "Nan", "+Inf", "-Inf".
void append_value(std::string& out, double v) {
  char buf[64];
  // Exact integers below 1e16 print the same with %.16g and as integers; to_chars is faster.
  if (v >= 0 && v < 1e16 && v == static_cast<double>(static_cast<uint64_t>(v))) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<uint64_t>(v));
    out.append(buf, r.ptr);
    return;
  }
  if (v != v) {
    out += "Nan";
    return;
  }
  if (v == std::numeric_limits<double>::infinity() ||
      v == -std::numeric_limits<double>::infinity()) {
    out += v < 0 ? "-Inf" : "+Inf";
    return;
  }
  const int n =
      std::snprintf(buf, sizeof buf, "%.*g", std::numeric_limits<double>::max_digits10 - 1, v);
  out.append(buf, static_cast<size_t>(std::max(n, 0)));
}

}  // namespace

void set_media(SeriesSample& s, const media::MediaCounters& m) {
  uint64_t expected = 0, received = 0, jitter_us = 0;
  for (const media::KindCounters& k : m.kind) {
    const uint64_t e = k.expected.get();
    const uint64_t r = k.received.get();
    expected += e;
    received += std::min(r, e);  // read apart from `expected`: never count more than expected
    if (r > 0) jitter_us = std::max(jitter_us, k.jitter_us.get());
  }
  s.media_loss_ratio =
      expected == 0 ? 0.0 : static_cast<double>(expected - received) / static_cast<double>(expected);
  s.media_jitter_seconds = static_cast<double>(jitter_us) / 1e6;
}

size_t select_series(std::vector<SeriesSample>& series, size_t cap) {
  size_t dropped = 0;
  if (series.size() > cap) {
    const auto bigger = [](const SeriesSample& a, const SeriesSample& b) {
      if (a.rank() != b.rank()) return a.rank() > b.rank();
      return a.labels.allocation_id < b.labels.allocation_id;
    };
    std::nth_element(series.begin(), series.begin() + static_cast<std::ptrdiff_t>(cap),
                     series.end(), bigger);
    dropped = series.size() - cap;
    series.resize(cap);
  }
  std::sort(series.begin(), series.end(), [](const SeriesSample& a, const SeriesSample& b) {
    return a.labels.allocation_id < b.labels.allocation_id;
  });
  return dropped;
}

void add_series_families(const std::vector<SeriesSample>& series,
                         std::vector<prometheus::MetricFamily>& out) {
  for (const FamilyInfo* f : kFamiliesInOrder) {
    prometheus::MetricFamily fam;
    fam.name = f->name;
    fam.help = f->help;
    fam.type = f->type;
    fam.metric.reserve(series.size() * f->directions);
    for (const SeriesSample& s : series) {
      for (size_t dir = 0; dir < f->directions; ++dir) {
        prometheus::ClientMetric m;
        m.label = {{"allocation_id", s.labels.allocation_id},
                   {"direction", std::string(direction_label(dir))},
                   {"transport", std::string(transport_label(s.labels.transport))},
                   {"user", s.labels.user}};
        const double v = value_of(*f, s, dir);
        if (f->type == prometheus::MetricType::Counter) {
          m.counter.value = v;
        } else {
          m.gauge.value = v;
        }
        fam.metric.push_back(std::move(m));
      }
    }
    out.push_back(std::move(fam));
  }
}

void render_series_text(const std::vector<SeriesSample>& series, std::string& out) {
  out.reserve(out.size() + series.size() * (kDirections * 3 + 2) * 160);
  for (const FamilyInfo* f : kFamiliesInOrder) {
    out.append("# HELP ").append(f->name).append(" ").append(f->help).append("\n");
    out.append("# TYPE ").append(f->name).append(" ").append(f->type_name).append("\n");
    for (const SeriesSample& s : series) {
      for (size_t dir = 0; dir < f->directions; ++dir) {
        out.append(f->name).append("{allocation_id=\"");
        append_escaped(out, s.labels.allocation_id);
        out.append("\",direction=\"").append(direction_label(dir));
        out.append("\",transport=\"").append(transport_label(s.labels.transport));
        out.append("\",user=\"");
        append_escaped(out, s.labels.user);
        out.append("\"} ");
        append_value(out, value_of(*f, s, dir));
        out += '\n';
      }
    }
  }
}

}  // namespace callrelay::telemetry
