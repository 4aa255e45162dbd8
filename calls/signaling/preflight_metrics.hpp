// Prometheus metrics of connectivity preflights (README, section Metrics: Calls): what browsers
// report about reaching the relay over each transport before a call. Labels are bounded
// (transport udp|tcp|tls, outcome ok|failed); never a user or a preflight id. Observed on HTTP
// threads, scraped on HTTP threads: prometheus-cpp's counters and histograms are safe for that.
#pragma once

#include <memory>
#include <string>

namespace callrelay::calls {

/// A transport a preflight tests (the SDK classifies the TURN URIs: turn:...?transport=udp or
/// no transport is udp, turn:...?transport=tcp is tcp, turns: is tls).
enum class PreflightTransport { kUdp, kTcp, kTls };
inline constexpr size_t kPreflightTransportCount = 3;

const char* to_string(PreflightTransport t);

class PreflightMetrics {
 public:
  PreflightMetrics();
  ~PreflightMetrics();
  PreflightMetrics(const PreflightMetrics&) = delete;
  PreflightMetrics& operator=(const PreflightMetrics&) = delete;

  /// One transport's result: callrelay_preflight_total{transport,outcome}; for a transport
  /// that worked, its gather time and round trip (negative: not reported) in the histograms.
  void on_result(PreflightTransport t, bool ok, double gather_ms, double rtt_ms);

  /// The counter's value (tests and status).
  double total(PreflightTransport t, bool ok) const;
  /// Samples in the transport's gather and RTT histograms (tests and status).
  uint64_t gather_samples(PreflightTransport t) const;
  uint64_t rtt_samples(PreflightTransport t) const;

  /// The exposition text (format 0.0.4) of every preflight metric. Any thread.
  std::string scrape_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::calls
