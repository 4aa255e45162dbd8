#include "calls/signaling/preflight_metrics.hpp"

#include <array>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace callrelay::calls {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;

/// Seconds: candidate gathering through a relay takes tens to hundreds of milliseconds; the
/// SDK gives a transport up after about 8 s.
const prometheus::Histogram::BucketBoundaries kGatherBuckets{0.05, 0.1, 0.25, 0.5, 1,
                                                             2,    3,   5,    8,   15};
/// Seconds: browser to relay to browser, data channel ping/pong.
const prometheus::Histogram::BucketBoundaries kRttBuckets{0.001, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,   0.2,   0.3,  0.5,   1};

constexpr std::array<PreflightTransport, kPreflightTransportCount> kTransports{
    PreflightTransport::kUdp, PreflightTransport::kTcp, PreflightTransport::kTls};

size_t index(PreflightTransport t) { return static_cast<size_t>(t); }

/// The sample count of a histogram, from its collected form.
uint64_t samples(prometheus::Histogram& h) { return h.Collect().histogram.sample_count; }

}  // namespace

const char* to_string(PreflightTransport t) {
  switch (t) {
    case PreflightTransport::kUdp: return "udp";
    case PreflightTransport::kTcp: return "tcp";
    case PreflightTransport::kTls: return "tls";
  }
  return "udp";
}

struct PreflightMetrics::Impl {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& total = BuildCounter()
      .Name("callrelay_preflight_total")
      .Help("Preflight results reported by browsers, by transport and outcome (ok, failed)")
      .Register(registry);
  prometheus::Family<prometheus::Histogram>& gather = BuildHistogram()
      .Name("callrelay_preflight_gather_seconds")
      .Help("Time to the first relay candidate, per transport that worked")
      .Register(registry);
  prometheus::Family<prometheus::Histogram>& rtt = BuildHistogram()
      .Name("callrelay_preflight_rtt_seconds")
      .Help("Round trip through the relay (data channel ping), per transport that worked")
      .Register(registry);
  std::array<std::array<prometheus::Counter*, 2>, kPreflightTransportCount> by_outcome{};
  std::array<prometheus::Histogram*, kPreflightTransportCount> gather_by{};
  std::array<prometheus::Histogram*, kPreflightTransportCount> rtt_by{};

  Impl() {
    // Every series exists from the start, so failure ratios work before the first preflight.
    for (const PreflightTransport t : kTransports) {
      const std::string name = to_string(t);
      by_outcome[index(t)] = {&total.Add({{"transport", name}, {"outcome", "ok"}}),
                              &total.Add({{"transport", name}, {"outcome", "failed"}})};
      gather_by[index(t)] = &gather.Add({{"transport", name}}, kGatherBuckets);
      rtt_by[index(t)] = &rtt.Add({{"transport", name}}, kRttBuckets);
    }
  }
};

PreflightMetrics::PreflightMetrics() : impl_(std::make_unique<Impl>()) {}
PreflightMetrics::~PreflightMetrics() = default;

void PreflightMetrics::on_result(PreflightTransport t, bool ok, double gather_ms, double rtt_ms) {
  impl_->by_outcome[index(t)][ok ? 0 : 1]->Increment();
  if (!ok) return;  // a failed transport's gather time is its timeout: it says nothing
  if (gather_ms >= 0) impl_->gather_by[index(t)]->Observe(gather_ms / 1000.0);
  if (rtt_ms >= 0) impl_->rtt_by[index(t)]->Observe(rtt_ms / 1000.0);
}

double PreflightMetrics::total(PreflightTransport t, bool ok) const {
  return impl_->by_outcome[index(t)][ok ? 0 : 1]->Value();
}

uint64_t PreflightMetrics::gather_samples(PreflightTransport t) const {
  return samples(*impl_->gather_by[index(t)]);
}

uint64_t PreflightMetrics::rtt_samples(PreflightTransport t) const {
  return samples(*impl_->rtt_by[index(t)]);
}

std::string PreflightMetrics::scrape_text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry.Collect());
  return out.str();
}

}  // namespace callrelay::calls
