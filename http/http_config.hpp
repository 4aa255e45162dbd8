// The `http:` and `api:` configuration sections as plain values (no dependencies), filled in by
// config/ and handed to the HTTP server and the credential API.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay/stun/endpoint.hpp"

namespace callrelay::http {

/// PEM files for HTTPS (certificate chain first, then intermediates).
struct TlsFiles {
  std::string cert;  ///< http.tls.cert
  std::string key;   ///< http.tls.key
};

/// The `http:` section: one listener for /metrics, /healthz, /readyz, /api/v1 and the
/// signaling WebSocket.
struct HttpConfig {
  bool enabled = true;                                               ///< http.enabled
  stun::Endpoint listen = *stun::Endpoint::parse("127.0.0.1:9641");  ///< http.listen
  std::optional<TlsFiles> tls;                                       ///< http.tls (HTTPS when set)
  size_t max_request_bytes = 65536;  ///< http.max_request_bytes: larger requests get 413
  /// http.threads: the listener's thread pool, so that a slow scrape or client never stalls
  /// signaling (each connection runs on a strand; handlers must be thread-safe).
  unsigned threads = 2;

  /// http.max_connections: HTTP connections open at once, keep-alive ones included. When it
  /// is reached, the connection that has waited longest for a request head is closed for the
  /// newcomer; a newcomer is refused only when every connection is being served. WebSockets
  /// are not counted here (their endpoint's limits apply).
  size_t max_connections = 1024;
  /// http.max_connections_per_address: connections one source address may hold; more are
  /// closed at accept, so one host can never fill the listener.
  size_t max_connections_per_address = 32;
  /// http.header_timeout_s: a request head (and TLS handshake) must arrive within this of the
  /// connection (or of its first byte on a kept-alive connection); a body within this of its
  /// head.
  std::chrono::milliseconds header_timeout{10000};
  /// http.idle_timeout_s: a kept-alive connection with no new request for this long is closed.
  std::chrono::milliseconds idle_timeout{60000};
  /// http.status_page: serve the live status page at /status (its data comes from the admin
  /// endpoints, so it shows nothing without an admin key). false: /status answers 404.
  bool status_page = true;

  // Not configurable (fixed for production; tests change them).
  /// An answer must be written within this (a client that does not read is dropped).
  std::chrono::milliseconds write_timeout{10000};
  /// WebSocket keepalive: a ping this often, and a socket silent (no pong, no message) for
  /// ws_idle_timeout is closed.
  std::chrono::milliseconds ws_ping_interval{15000};
  std::chrono::milliseconds ws_idle_timeout{45000};
};

inline constexpr unsigned kMinHttpThreads = 1;
inline constexpr unsigned kMaxHttpThreads = 64;

/// One API key of the `api:` section.
struct ApiKey {
  std::string name;                          ///< shown in logs instead of the key
  std::string key;                           ///< the secret (inline or read from key_file)
  uint32_t max_ttl_s = 86400;                ///< credentials minted with it live at most this
  std::vector<std::string> allowed_origins;  ///< CORS: browser origins allowed to call
  /// May call the operator endpoints under /api/v1/admin/ (drain, ending a user's
  /// allocations, reload). Off by default: an application's key mints credentials only.
  bool admin = false;
};

/// The `api:` section: the credential endpoint.
struct ApiConfig {
  std::vector<ApiKey> keys;       ///< no keys: the /api/v1 endpoints answer 401 to everyone
  std::vector<std::string> uris;  ///< TURN URIs returned; empty: derived from the listeners
  std::string public_host;        ///< host name in derived URIs
  uint32_t default_ttl_s = 3600;  ///< credential lifetime when the request gives no ttl
};

}  // namespace callrelay::http
