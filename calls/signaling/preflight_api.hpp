// POST /api/v1/preflight and POST /api/v1/preflight/result: before a call, the browser SDK
// checks that it reaches the relay over each transport (udp, tcp, tls) with short-lived TURN
// credentials scoped to a preflight id, then reports what worked (README, section Calls,
// "Preflight"). Authenticated with the signaling JWT (Authorization: Bearer), like the WebSocket.
// Thread-safe: the HTTP listener's threads call handle() at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "calls/core/types.hpp"
#include "calls/signaling/preflight_metrics.hpp"
#include "calls/signaling/token.hpp"
#include "http/message.hpp"

namespace callrelay::calls {

/// The relay as a preflight sees it: REST credentials scoped to the preflight's id (the same
/// "expiry:user:call=ID" usernames as a call's), and ending them. Implemented by app/ over the
/// relay; faked in tests.
class PreflightRelay {
 public:
  virtual ~PreflightRelay() = default;
  /// An RTCIceServer list with every TURN URI and credentials for `user` scoped to `id`,
  /// valid `ttl_s` seconds from `now`. Empty when none can be handed out (no REST secret or no
  /// TURN URI). Any thread.
  virtual nlohmann::json ice_servers(std::string_view user, std::string_view id, uint32_t ttl_s,
                                     TimeMs now) = 0;
  /// Ends the allocations made with `id`'s credentials and refuses them from now on. Any
  /// thread; returns at once.
  virtual void end_call(std::string_view id) = 0;
};

class PreflightApi {
 public:
  static constexpr const char* kPath = "/api/v1/preflight";
  static constexpr const char* kResultPath = "/api/v1/preflight/result";

  struct Options {
    uint32_t ttl_s = 60;                ///< lifetime of a preflight's credentials
    int64_t result_window_ms = 180'000; ///< a result is taken this long after the id was issued
    size_t max_per_user = 4;            ///< preflights of one user awaiting a result (more: 429)
    size_t max_outstanding = 4096;      ///< all users (more: 503)
  };
  /// Makes preflight ids ("p_" + 22 base64url characters); random in production.
  using IdSource = std::function<std::string()>;

  /// `tokens`, `relay` and `metrics` (may be null) must outlive this object. `ids` empty: random.
  PreflightApi(const TokenSigner& tokens, PreflightRelay& relay, PreflightMetrics* metrics,
               Options options, IdSource ids = {});
  PreflightApi(const TokenSigner& tokens, PreflightRelay& relay, PreflightMetrics* metrics)
      : PreflightApi(tokens, relay, metrics, Options{}) {}
  /// Ends the credentials of preflights still awaiting a result.
  ~PreflightApi();
  PreflightApi(const PreflightApi&) = delete;
  PreflightApi& operator=(const PreflightApi&) = delete;

  /// Either path (anything else: nullopt). POST with a valid signaling token (401 otherwise):
  /// kPath answers 200 {"id", "ttl", "iceServers"}; kResultPath takes
  /// {"id", "results": [{"transport", "ok", "gather_ms", "rtt_ms", "error"}]}, counts it, ends
  /// the preflight's credentials and answers 204; a bad field is a 400 naming it, an id this
  /// server did not issue to this user (or too long ago) a 404. OPTIONS is the CORS preflight
  /// (any origin: the token, not a cookie, authenticates); other methods get 405.
  std::optional<http::Response> handle(const http::Request& req, TimeMs now_ms);

  /// Preflights awaiting a result (tests and status).
  size_t outstanding() const;
  /// Ends the credentials of preflights whose result window passed (also done on each request).
  void expire(TimeMs now_ms);

 private:
  struct Pending {
    std::string user;
    TimeMs issued = 0;
  };
  http::Response start(const TokenClaims& who, TimeMs now_ms);
  http::Response finish(const TokenClaims& who, const http::Request& req, TimeMs now_ms);
  /// Removes expired entries (under mu_) and returns their ids, to be ended outside the lock.
  std::vector<std::string> take_expired(TimeMs now_ms);
  void end_all(const std::vector<std::string>& ids);

  const TokenSigner& tokens_;
  PreflightRelay& relay_;
  PreflightMetrics* metrics_;
  Options options_;
  IdSource ids_;
  mutable std::mutex mu_;  ///< guards pending_
  std::unordered_map<std::string, Pending> pending_;
};

}  // namespace callrelay::calls
