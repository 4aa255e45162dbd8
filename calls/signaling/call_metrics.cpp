#include "calls/signaling/call_metrics.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <mutex>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace callrelay::calls {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

/// Seconds: setup is usually 0.3-3 s through a relay; ring time is human (up to the timeout).
const prometheus::Histogram::BucketBoundaries kSetupBuckets{0.1, 0.25, 0.5, 0.75, 1,  1.5,
                                                            2,   3,    5,   10,   20, 30};
const prometheus::Histogram::BucketBoundaries kRingBuckets{1, 2, 3, 5, 8, 13, 20, 30, 45, 60};
const prometheus::Histogram::BucketBoundaries kDurationBuckets{10,   30,   60,   120,  300,
                                                               600,  1200, 1800, 3600, 7200};

// Call quality, per interval (README, section Call quality): MOS on the 1..4.5 scale WebRTC's
// E-model yields; loss ratio around the class limits (1%, 3%, 5%); jitter and round trip in
// seconds, as Prometheus base units want.
const prometheus::Histogram::BucketBoundaries kMosBuckets{1, 1.5, 2, 2.5, 3, 3.5, 4, 4.25, 4.5};
const prometheus::Histogram::BucketBoundaries kLossBuckets{.001, .005, .01, .02, .03,
                                                           .05,  .1,   .2,  .5};
const prometheus::Histogram::BucketBoundaries kJitterBuckets{.001, .0025, .005, .01, .02,
                                                             .03,  .05,   .1,   .2};
const prometheus::Histogram::BucketBoundaries kRttBuckets{.005, .01, .025, .05, .1,
                                                          .2,   .3,  .5,   1};
const char* const kDisagreementReasons[] = {"client_underreports", "loss_after_relay"};

const char* const kRejectReasons[] = {"invalid",     "too-large",      "unknown-call",
                                      "not-participant", "wrong-state", "rate-limited",
                                      "unavailable", "unauthorized"};

std::string metric_label(std::string_view text) {
  std::string s(text);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

}  // namespace

struct CallMetrics::Impl {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& calls = BuildCounter()
      .Name("callrelay_calls_total")
      .Help("Calls that ended, by outcome")
      .Register(registry);
  prometheus::Counter& started = BuildCounter()
      .Name("callrelay_calls_started_total")
      .Help("Calls invited")
      .Register(registry)
      .Add({});
  prometheus::Family<prometheus::Gauge>& live = BuildGauge()
      .Name("callrelay_calls")
      .Help("Live calls by state (ringing, connecting, active)")
      .Register(registry);
  prometheus::Gauge& connections = BuildGauge()
      .Name("callrelay_signaling_connections")
      .Help("Open signaling WebSocket connections")
      .Register(registry)
      .Add({});
  prometheus::Histogram& setup = BuildHistogram()
      .Name("callrelay_call_setup_seconds")
      .Help("Invite to connected (both sides' media connected), per call that connected")
      .Register(registry)
      .Add({}, kSetupBuckets);
  prometheus::Histogram& ring = BuildHistogram()
      .Name("callrelay_call_ring_seconds")
      .Help("Invite to accept, per answered call")
      .Register(registry)
      .Add({}, kRingBuckets);
  prometheus::Histogram& duration = BuildHistogram()
      .Name("callrelay_call_duration_seconds")
      .Help("Connected to ended, per call that connected")
      .Register(registry)
      .Add({}, kDurationBuckets);
  prometheus::Family<prometheus::Counter>& messages = BuildCounter()
      .Name("callrelay_signaling_messages_total")
      .Help("Client messages handled, by type and result (ok, duplicate, error)")
      .Register(registry);
  prometheus::Family<prometheus::Counter>& rejected = BuildCounter()
      .Name("callrelay_signaling_rejected_messages_total")
      .Help("Client messages and upgrades refused, by reason")
      .Register(registry);
  prometheus::Counter& ice_restarts = BuildCounter()
      .Name("callrelay_call_ice_restarts_total")
      .Help("ICE restarts offered by callers")
      .Register(registry)
      .Add({});
  prometheus::Family<prometheus::Counter>& resumes = BuildCounter()
      .Name("callrelay_signaling_resumes_total")
      .Help("Devices that reconnected within the grace period, by whether they were in a call")
      .Register(registry);
  prometheus::Family<prometheus::Counter>& records = BuildCounter()
      .Name("callrelay_call_records_total")
      .Help("Call records by result: written to the database, dropped (queue full), "
            "write_retry (a failed write, retried)")
      .Register(registry);
  prometheus::Gauge& records_pending = BuildGauge()
      .Name("callrelay_call_records_pending")
      .Help("Call records waiting to be written")
      .Register(registry)
      .Add({});
  prometheus::Family<prometheus::Counter>& webhook = BuildCounter()
      .Name("callrelay_call_webhook_posts_total")
      .Help("Call records posted to the webhook, by result (delivered, failed, dropped)")
      .Register(registry);
  prometheus::Family<prometheus::Counter>& cluster = BuildCounter()
      .Name("callrelay_signaling_cluster_messages_total")
      .Help("Signaling messages published to other instances, by result (sent, failed)")
      .Register(registry);
  prometheus::Family<prometheus::Histogram>& mos = BuildHistogram()
      .Name("callrelay_call_quality_mos")
      .Help("Mean opinion score (E-model) per interval of an active call, by source and kind")
      .Register(registry);
  prometheus::Family<prometheus::Histogram>& loss = BuildHistogram()
      .Name("callrelay_call_quality_loss_ratio")
      .Help("Packet loss ratio per interval of an active call, by source and kind")
      .Register(registry);
  prometheus::Family<prometheus::Histogram>& jitter = BuildHistogram()
      .Name("callrelay_call_quality_jitter_seconds")
      .Help("Interarrival jitter per interval of an active call, by source and kind")
      .Register(registry);
  prometheus::Family<prometheus::Histogram>& rtt = BuildHistogram()
      .Name("callrelay_call_quality_rtt_seconds")
      .Help("Round-trip time per interval of an active call (when known), by source and kind")
      .Register(registry);
  prometheus::Family<prometheus::Counter>& intervals = BuildCounter()
      .Name("callrelay_call_quality_intervals_total")
      .Help("Scored intervals of active calls, by source, kind and quality class")
      .Register(registry);
  prometheus::Family<prometheus::Counter>& disagreements = BuildCounter()
      .Name("callrelay_call_quality_disagreements_total")
      .Help("Intervals where the relay's and the receiving client's loss disagreed, by kind and "
            "reason (client_underreports, loss_after_relay)")
      .Register(registry);
  prometheus::Counter& fallbacks = BuildCounter()
      .Name("callrelay_call_video_fallbacks_total")
      .Help("Senders that stopped their video for poor quality")
      .Register(registry)
      .Add({});
  /// Per [source][kind]: the four histograms, and the interval counters by class.
  struct QualitySeries {
    prometheus::Histogram *mos = nullptr, *loss = nullptr, *jitter = nullptr, *rtt = nullptr;
    std::array<prometheus::Counter*, kQualityClasses> by_class{};
  };
  std::array<std::array<QualitySeries, 2>, 2> quality{};
  std::array<std::array<prometheus::Counter*, std::size(kDisagreementReasons)>, 2>
      disagreement{};
  std::mutex storage_mutex;
  StorageProbe storage_seen;  ///< the probe's totals already added to the counters
  uint64_t cluster_sent_seen = 0, cluster_failed_seen = 0;  ///< under storage_mutex

  std::array<prometheus::Counter*, std::size(kAllOutcomes)> by_outcome{};
  std::array<std::array<prometheus::Counter*, 3>, kClientTypeCount> by_type{};

  Impl() {
    // Every series exists from the start, so rates and ratios work before the first call.
    for (size_t i = 0; i < std::size(kAllOutcomes); ++i)
      by_outcome[i] = &calls.Add({{"outcome", metric_label(to_string(kAllOutcomes[i]))}});
    for (size_t t = 0; t < kClientTypeCount; ++t) {
      const std::string type = metric_label(to_string(static_cast<ClientType>(t)));
      by_type[t] = {&messages.Add({{"type", type}, {"result", "ok"}}),
                    &messages.Add({{"type", type}, {"result", "duplicate"}}),
                    &messages.Add({{"type", type}, {"result", "error"}})};
    }
    for (const char* r : kRejectReasons) rejected.Add({{"reason", metric_label(r)}});
    for (const char* s : {"ringing", "connecting", "active"}) live.Add({{"state", s}});
    for (const char* s : {"true", "false"}) resumes.Add({{"in_call", s}});
    for (const char* r : {"written", "dropped", "write_retry"}) records.Add({{"result", r}});
    for (const char* r : {"delivered", "failed", "dropped"}) webhook.Add({{"result", r}});
    add_quality_series();
  }

  void add_quality_series() {
    for (const QualitySource src : {QualitySource::kRelay, QualitySource::kClient}) {
      for (const MediaKind kind : {MediaKind::kAudio, MediaKind::kVideo}) {
        const prometheus::Labels labels{{"source", to_string(src)}, {"kind", to_string(kind)}};
        QualitySeries& q = quality[static_cast<size_t>(src)][static_cast<size_t>(kind)];
        q.mos = &mos.Add(labels, kMosBuckets);
        q.loss = &loss.Add(labels, kLossBuckets);
        q.jitter = &jitter.Add(labels, kJitterBuckets);
        q.rtt = &rtt.Add(labels, kRttBuckets);
        for (size_t c = 0; c < kQualityClasses; ++c) {
          prometheus::Labels with_class = labels;
          with_class["class"] = to_string(static_cast<QualityClass>(c));
          q.by_class[c] = &intervals.Add(with_class);
        }
      }
    }
    for (const MediaKind kind : {MediaKind::kAudio, MediaKind::kVideo})
      for (size_t r = 0; r < std::size(kDisagreementReasons); ++r)
        disagreement[static_cast<size_t>(kind)][r] = &disagreements.Add(
            {{"kind", to_string(kind)}, {"reason", kDisagreementReasons[r]}});
  }
};

CallMetrics::CallMetrics() : impl_(std::make_unique<Impl>()) {}
CallMetrics::~CallMetrics() = default;

void CallMetrics::on_message(ClientType type, std::string_view result) {
  auto& row = impl_->by_type[static_cast<size_t>(type)];
  if (result == "ok") {
    row[0]->Increment();
  } else if (result == "duplicate") {
    row[1]->Increment();
  } else {
    row[2]->Increment();
    on_rejected(result);
  }
}

void CallMetrics::on_rejected(std::string_view reason) {
  impl_->rejected.Add({{"reason", metric_label(reason)}}).Increment();
}

void CallMetrics::on_call_started(const CallRecord&) { impl_->started.Increment(); }

void CallMetrics::on_call_answered(const CallRecord& r) {
  impl_->ring.Observe(static_cast<double>(r.answered - r.created) / 1000.0);
}

void CallMetrics::on_call_connected(const CallRecord& r) {
  impl_->setup.Observe(static_cast<double>(r.setup_ms) / 1000.0);
}

void CallMetrics::on_call_ended(const CallRecord& r) {
  impl_->by_outcome[static_cast<size_t>(r.outcome)]->Increment();
  if (r.connected != 0)
    impl_->duration.Observe(static_cast<double>(r.ended - r.connected) / 1000.0);
}

void CallMetrics::on_ice_restart() { impl_->ice_restarts.Increment(); }

void CallMetrics::on_reconnect(bool in_call) {
  impl_->resumes.Add({{"in_call", in_call ? "true" : "false"}}).Increment();
}

void CallMetrics::on_quality_interval(const QualityInterval& i) {
  auto& q = impl_->quality[static_cast<size_t>(i.source)][static_cast<size_t>(i.kind)];
  q.mos->Observe(i.mos);
  q.loss->Observe(i.loss_ratio);
  q.jitter->Observe(i.measure.jitter_ms / 1000.0);
  if (i.measure.rtt_ms >= 0) q.rtt->Observe(i.measure.rtt_ms / 1000.0);
  q.by_class[static_cast<size_t>(i.quality)]->Increment();
}

void CallMetrics::on_disagreement(MediaKind kind, const char* reason) {
  if (reason == nullptr) return;
  auto& row = impl_->disagreement[static_cast<size_t>(kind)];
  for (size_t r = 0; r < std::size(kDisagreementReasons); ++r)
    if (std::string_view(reason) == kDisagreementReasons[r]) row[r]->Increment();
}

void CallMetrics::on_video_fallback() { impl_->fallbacks.Increment(); }

void CallMetrics::set_live(size_t ringing, size_t connecting, size_t active, size_t connections) {
  impl_->live.Add({{"state", "ringing"}}).Set(static_cast<double>(ringing));
  impl_->live.Add({{"state", "connecting"}}).Set(static_cast<double>(connecting));
  impl_->live.Add({{"state", "active"}}).Set(static_cast<double>(active));
  impl_->connections.Set(static_cast<double>(connections));
}

void CallMetrics::set_storage(const StorageProbe& p) {
  // The writer and the webhook keep running totals; counters advance by what is new.
  Impl& s = *impl_;
  const std::lock_guard lock(s.storage_mutex);
  const auto advance = [](prometheus::Counter& c, uint64_t now, uint64_t& seen) {
    if (now > seen) c.Increment(static_cast<double>(now - seen));
    seen = std::max(seen, now);
  };
  StorageProbe& seen = s.storage_seen;
  advance(s.records.Add({{"result", "written"}}), p.written, seen.written);
  advance(s.records.Add({{"result", "dropped"}}), p.dropped, seen.dropped);
  advance(s.records.Add({{"result", "write_retry"}}), p.write_retries, seen.write_retries);
  advance(s.webhook.Add({{"result", "delivered"}}), p.webhook_delivered, seen.webhook_delivered);
  advance(s.webhook.Add({{"result", "failed"}}), p.webhook_failed, seen.webhook_failed);
  advance(s.webhook.Add({{"result", "dropped"}}), p.webhook_dropped, seen.webhook_dropped);
  s.records_pending.Set(static_cast<double>(p.pending));
}

void CallMetrics::set_cluster(uint64_t sent, uint64_t failed) {
  Impl& s = *impl_;
  const std::lock_guard lock(s.storage_mutex);
  const auto advance = [](prometheus::Counter& c, uint64_t now, uint64_t& seen) {
    if (now > seen) c.Increment(static_cast<double>(now - seen));
    seen = std::max(seen, now);
  };
  advance(s.cluster.Add({{"result", "sent"}}), sent, s.cluster_sent_seen);
  advance(s.cluster.Add({{"result", "failed"}}), failed, s.cluster_failed_seen);
}

std::string CallMetrics::scrape_text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry.Collect());
  return out.str();
}

}  // namespace callrelay::calls
