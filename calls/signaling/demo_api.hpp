// The demo's own endpoints (README, section Calls, "The demo"), routed only when demo.enabled:
// POST /demo/api/token hands a signaling token to anyone who names a user, and GET
// /demo/api/online lists who is connected, so that the page at /demo/ can sign in and call
// without an app backend. Never for production: anyone who reaches the listener can act as any
// user. Same-origin only (no CORS headers). Thread-safe: the HTTP listener's threads call
// handle() at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "calls/core/types.hpp"
#include "calls/signaling/token.hpp"
#include "http/message.hpp"
#include "http/rate_limiter.hpp"

namespace callrelay::calls {

class DemoApi {
 public:
  static constexpr const char* kTokenPath = "/demo/api/token";
  static constexpr const char* kOnlinePath = "/demo/api/online";
  static constexpr const char* kSignalPath = "/api/v1/signal";

  /// The users with a connected device, sorted or not (the API sorts them).
  using OnlineUsers = std::function<std::vector<std::string>()>;

  struct Options {
    bool tls = false;           ///< the listener serves HTTPS (wss:// in the fallback URL)
    std::string fallback_host;  ///< "host:port" for the URL when a request has no usable Origin
    size_t max_user_id_bytes = 256;  ///< calls.max_user_id_bytes
    uint32_t token_ttl_s = 3600;     ///< capped by the signer's max_ttl_s
    /// Requests per client address: tokens (a burst of sign-ins, then one every 5 s) and the
    /// online list (the page polls it every few seconds, from several tabs).
    http::FailureLimiter::Options token_limit{10, 0.2, 4096};
    http::FailureLimiter::Options online_limit{60, 3, 4096};
  };

  /// `signer` must outlive this object; `online` is called on HTTP threads (thread-safe).
  DemoApi(const TokenSigner& signer, OnlineUsers online, Options options);

  /// kTokenPath: POST {"user": "alice"} -> {"token", "url", "user", "expires"}; a bad user
  /// is a 400 naming the field. kOnlinePath: GET -> {"users": [...]}. 429 (Retry-After) past
  /// the address's budget, 405 for other methods; any other path: nullopt.
  std::optional<http::Response> handle(const http::Request& req, TimeMs now_ms);

  /// The signaling WebSocket URL a browser on `origin` (RFC 6454 serialization,
  /// "https://host:port") uses: the same host, ws or wss as the page's scheme. The configured
  /// fallback when `origin` is empty or malformed.
  std::string signal_url(std::string_view origin) const;

 private:
  http::Response token(const http::Request& req, TimeMs now_ms);
  http::Response online() const;
  /// Takes one request from `ip`'s budget in `limiter`; the 429 when none is left.
  std::optional<http::Response> throttle(http::FailureLimiter& limiter, const std::string& ip,
                                         TimeMs now_ms);

  const TokenSigner& signer_;
  OnlineUsers online_;
  Options options_;
  std::mutex limit_mu_;  ///< guards both limiters
  http::FailureLimiter token_limiter_;
  http::FailureLimiter online_limiter_;
};

}  // namespace callrelay::calls
