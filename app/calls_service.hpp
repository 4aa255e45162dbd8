// Calls wired to the running relay and HTTP listener: the signaling token secret (configured or
// generated into the state directory), the record store and its writer thread, the webhook,
// the call metrics, the signaling service, and the HTTP routes of /api/v1/signal,
// /api/v1/signal/token and /api/v1/calls.
#pragma once

#include <memory>
#include <string>

#include "calls/core/config.hpp"
#include "calls/core/engine.hpp"
#include "calls/signaling/call_metrics.hpp"
#include "calls/signaling/records_api.hpp"
#include "calls/signaling/relay_seam.hpp"
#include "calls/signaling/signaling_service.hpp"
#include "calls/signaling/token.hpp"
#include "calls/signaling/token_api.hpp"
#include "calls/store/record_writer.hpp"
#include "calls/store/sqlite_store.hpp"
#include "calls/store/webhook.hpp"
#include "http/api_keys.hpp"
#include "http/router.hpp"

namespace callrelay::app {

class CallsService {
 public:
  /// Opens the record database and loads or creates the token secret now (throws
  /// std::runtime_error naming the file and what to fix). `relay`, `ice` and `keys` outlive
  /// the service.
  CallsService(const calls::CallsConfig& cfg, const std::string& state_dir,
               calls::CallRelay& relay, calls::IceServerSource& ice, http::ApiKeys& keys);
  ~CallsService();
  CallsService(const CallsService&) = delete;
  CallsService& operator=(const CallsService&) = delete;

  /// The WebSocket endpoint and the API routes, before the HTTP listener starts.
  void add_routes(http::Router& router);
  void start();
  /// Ends live calls (their records are written), then drains the record writer (a few
  /// seconds at most) and the webhook.
  void stop();
  /// About once a second (HTTP tick): storage counters into the metrics.
  void tick();
  std::string scrape_text() const { return metrics_.scrape_text(); }
  /// Where the token secret came from, for the startup log ("" when configured).
  const std::string& generated_secret_path() const { return secret_path_; }

 private:
  std::string secret_path_;
  calls::TokenSigner tokens_;
  calls::SqliteStore store_;
  std::unique_ptr<calls::Webhook> webhook_;
  calls::RecordWriter writer_;
  calls::CallMetrics metrics_;
  calls::SignalingService signaling_;
  calls::SignalTokenApi token_api_;
  calls::RecordsApi records_api_;
};

}  // namespace callrelay::app
