// Calls wired to the running relay and HTTP listener: the signaling token secret (configured or
// generated into the state directory), the record store and its writer thread, the webhook,
// the call metrics, the signaling service, and the HTTP routes of /api/v1/signal,
// /api/v1/signal/token, /api/v1/calls, /api/v1/preflight and (demo only) /demo/api/.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "app/call_relay.hpp"
#include "calls/cluster/redis_cluster.hpp"
#include "calls/core/config.hpp"
#include "calls/core/engine.hpp"
#include "calls/signaling/call_metrics.hpp"
#include "calls/signaling/demo_api.hpp"
#include "calls/signaling/preflight_api.hpp"
#include "calls/signaling/preflight_metrics.hpp"
#include "calls/signaling/records_api.hpp"
#include "calls/signaling/relay_seam.hpp"
#include "calls/signaling/signaling_service.hpp"
#include "calls/signaling/token.hpp"
#include "calls/signaling/token_api.hpp"
#include "calls/store/record_writer.hpp"
#include "calls/store/sqlite_store.hpp"
#include "calls/store/webhook.hpp"
#include "config/cluster_section.hpp"
#include "http/api_keys.hpp"
#include "http/router.hpp"
#include "relay/core/auth.hpp"

namespace callrelay::app {

/// Preflight credentials: REST usernames scoped to the preflight id ("expiry:user:call=p_..."),
/// minted with the preflight's own short lifetime; ending them revokes them and ends their
/// allocations through the call relay, by id, as for a call. Thread-safe.
class RelayForPreflight final : public calls::PreflightRelay {
 public:
  /// `auth` and `relay` outlive this object; settings.ttl_s is unused (the API gives it).
  RelayForPreflight(core::Authenticator& auth, calls::CallRelay& relay,
                    CallCredentialSettings settings);
  nlohmann::json ice_servers(std::string_view user, std::string_view id, uint32_t ttl_s,
                             calls::TimeMs now) override;
  void end_call(std::string_view id) override;

 private:
  struct Minted {
    std::string username;
    core::TimeMs expires = 0;  ///< Unix ms
  };
  core::Authenticator& auth_;
  calls::CallRelay& relay_;
  CallCredentialSettings settings_;
  std::mutex mu_;  ///< guards minted_
  std::unordered_map<std::string, Minted> minted_;  ///< by preflight id, until ended
};

/// The demo's endpoints (demo.enabled) and what their answers need to know of the listener.
struct DemoSettings {
  bool enabled = false;
  bool tls = false;           ///< the HTTP listener serves HTTPS
  std::string fallback_host;  ///< "host:port" of the listener, for requests without Origin
};

class CallsService {
 public:
  /// Opens the record database (PostgreSQL when cluster.postgres_url is set, else the SQLite
  /// file), joins the other instances on cluster.redis_url when it is set, and loads or
  /// creates the token secret now (throws std::runtime_error naming the file or database and
  /// what to fix). `relay`, `ice`, `preflight` and `keys` outlive the
  /// service.
  CallsService(const calls::CallsConfig& cfg, const std::string& state_dir,
               calls::CallRelay& relay, calls::IceServerSource& ice,
               calls::PreflightRelay& preflight, http::ApiKeys& keys, const DemoSettings& demo,
               const config::ClusterConfig& cluster = {});
  ~CallsService();
  CallsService(const CallsService&) = delete;
  CallsService& operator=(const CallsService&) = delete;

  /// The WebSocket endpoint and the API routes, before the HTTP listener starts.
  void add_routes(http::Router& router);
  void start();
  /// Ends live calls (their records are written), then drains the record writer (a few
  /// seconds at most) and the webhook.
  void stop();
  /// About once a second (HTTP tick): storage counters into the metrics; preflights that
  /// never reported end.
  void tick(core::TimeMs now);
  std::string scrape_text() const {
    return metrics_.scrape_text() + preflight_metrics_.scrape_text();
  }
  /// Where the token secret came from, for the startup log ("" when configured).
  const std::string& generated_secret_path() const { return secret_path_; }
  /// The signaling service (the admin API's view of live calls, and ending one).
  calls::SignalingService& signaling() { return signaling_; }

 private:
  std::string secret_path_;
  calls::TokenSigner tokens_;
  std::unique_ptr<calls::RecordStore> store_;
  std::unique_ptr<calls::Webhook> webhook_;
  calls::RecordWriter writer_;
  calls::CallMetrics metrics_;
  calls::PreflightMetrics preflight_metrics_;
  /// The other instances (cluster.redis_url set); null alone. Before signaling_, which uses it.
  std::unique_ptr<calls::ClusterSeam> cluster_;
  const calls::RedisCluster* redis_cluster_ = nullptr;  ///< cluster_'s counters, for metrics
  calls::SignalingService signaling_;
  calls::SignalTokenApi token_api_;
  calls::RecordsApi records_api_;
  calls::PreflightApi preflight_api_;
  std::unique_ptr<calls::DemoApi> demo_api_;  ///< demo.enabled only
};

}  // namespace callrelay::app
