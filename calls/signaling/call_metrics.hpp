// Prometheus metrics of calls and signaling (README, section Metrics: Calls) and of call
// quality (section Call quality). Labels are bounded: outcome, message type, result, rejection
// reason, quality source, media kind, quality class and disagreement reason only; never a user
// or a call id.
// The engine's observer callbacks run on the signaling thread; scrapes run on HTTP threads:
// prometheus-cpp's counters and histograms are safe for that.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "calls/core/engine.hpp"

namespace callrelay::calls {

class CallMetrics : public CallObserver {
 public:
  CallMetrics();
  ~CallMetrics() override;
  CallMetrics(const CallMetrics&) = delete;
  CallMetrics& operator=(const CallMetrics&) = delete;

  // CallObserver (signaling thread)
  void on_message(ClientType type, std::string_view result) override;
  void on_call_started(const CallRecord& r) override;
  void on_call_answered(const CallRecord& r) override;
  void on_call_connected(const CallRecord& r) override;
  void on_call_ended(const CallRecord& r) override;
  void on_ice_restart() override;
  void on_reconnect(bool in_call) override;
  void on_quality_interval(const QualityInterval& interval) override;
  void on_disagreement(MediaKind kind, const char* reason) override;
  void on_video_fallback() override;

  /// A message refused before it reached the engine: `reason` is the error code (invalid,
  /// too-large, rate-limited) or "unauthorized" for a refused upgrade.
  void on_rejected(std::string_view reason);
  /// Live calls per state and open signaling connections, set after each engine step.
  void set_live(size_t ringing, size_t connecting, size_t active, size_t connections);
  /// Call records: written, waiting to be written, and lost (queue full); webhook deliveries.
  struct StorageProbe {
    uint64_t written = 0, pending = 0, dropped = 0, write_retries = 0;
    uint64_t webhook_delivered = 0, webhook_failed = 0, webhook_dropped = 0;
  };
  void set_storage(const StorageProbe& p);
  /// Signaling messages to other instances (cluster.redis_url), running totals: `sent` (an
  /// instance was listening), `failed` (Redis unreachable, nobody listening, queue full).
  void set_cluster(uint64_t sent, uint64_t failed);

  /// The exposition text (format 0.0.4) of every call metric. Any thread.
  std::string scrape_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::calls
