// The HTTP listener wired to the running relay: the credential API (minting with the first REST secret in force),
// the routes, and the HTTP server with its 1 s housekeeping tick (telemetry bitrate windows,
// revocation pruning).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/limits.hpp"
#include "config/config.hpp"
#include "http/admin_api.hpp"
#include "http/api.hpp"
#include "http/api_keys.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "telemetry/telemetry.hpp"

namespace callrelay::app {

/// The TURN URIs handed out with credentials (by the credential API and with call-scoped
/// credentials): api.uris when configured, else derived from the relay's bound listeners.
std::vector<std::string> turn_uris(const config::Config& cfg, const net::Server& relay);

class HttpService {
 public:
  /// Binds the HTTP listener now (throws std::runtime_error naming what to fix). TURN URIs
  /// not given in api.uris are derived from the relay's bound listeners. `auth`, `metrics`
  /// and `readiness` must outlive the service; so must `limits` (where the listener counts
  /// the connections it refuses or closes; null: nowhere).
  /// Revoking a username through the API ends its allocations on `relay`'s workers too.
  HttpService(const config::Config& cfg, core::Authenticator& auth, telemetry::Telemetry& metrics,
              const http::Readiness& readiness, net::Server& relay,
              base::LimitCounters* limits = nullptr);

  const stun::Endpoint& local_endpoint() const { return server_.local_endpoint(); }
  bool tls() const { return server_.tls(); }
  /// The API keys of the `api:` section, for other /api/v1 endpoints to share (one failure
  /// budget per address across endpoints).
  http::ApiKeys& api_keys() { return keys_; }
  /// Other modules' routes (the calls API, the browser SDK) are added here before start().
  http::Router& router() { return router_; }
  /// More exposition text appended to every /metrics answer, and more work for the 1 s tick
  /// (both run on HTTP threads). Before start() only.
  void add_scrape(std::function<std::string()> scrape) { scrapes_.push_back(std::move(scrape)); }
  void add_tick(std::function<void(core::TimeMs)> tick) { ticks_.push_back(std::move(tick)); }
  /// The operator endpoints under /api/v1/admin/ (admin keys): the status, live allocations
  /// (telemetry's view) and ending them on `relay`, and the drain, which runs `drain`; the
  /// calls and the configuration are added with admin().set_calls / set_config. Before start().
  http::AdminApi& admin() { return admin_; }
  void set_drain(std::function<uint32_t(std::optional<uint32_t> deadline_s)> drain) {
    drain_ = std::move(drain);
  }
  /// Seconds left until a running drain's deadline, for the admin status (nullopt: none).
  void set_drain_left(std::function<std::optional<int64_t>()> left) {
    drain_left_ = std::move(left);
  }
  /// The TURN URIs the credential endpoint hands out for a client's region, in place of the
  /// fixed ones (cluster mode: the least-loaded instances'). Before start().
  void set_turn_uri_source(std::function<std::vector<std::string>(const std::string&)> source) {
    api_.set_uri_source(std::move(source));
  }
  void start() { server_.start(); }
  void stop() { server_.stop(); }

 private:
  std::vector<std::function<std::string()>> scrapes_;
  std::vector<std::function<void(core::TimeMs)>> ticks_;
  http::ApiKeys keys_;
  http::CredentialApi api_;
  std::function<uint32_t(std::optional<uint32_t>)> drain_;
  std::function<std::optional<int64_t>()> drain_left_;
  http::AdminApi admin_;
  http::Router router_;
  http::HttpServer server_;
};

/// The service, or nullptr when http.enabled is false.
std::unique_ptr<HttpService> make_http_service(const config::Config& cfg, core::Authenticator& auth,
                                               telemetry::Telemetry& metrics,
                                               const http::Readiness& readiness,
                                               net::Server& relay,
                                               base::LimitCounters* limits = nullptr);

}  // namespace callrelay::app
