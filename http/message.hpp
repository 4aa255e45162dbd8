// The HTTP request and response as the route handlers see them: plain values, no sockets, so
// every route is testable without a server.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callrelay::http {

/// What the handlers need from one request (filled in by the server's request parser).
struct Request {
  std::string method;                 ///< "GET", "POST", "OPTIONS", ...
  std::string path;                   ///< the target before '?'
  std::string query;                  ///< raw query string after '?', still percent-encoded
  std::string authorization;          ///< Authorization header ("" when absent)
  std::string origin;                 ///< Origin header ("" when absent)
  std::string content_type;           ///< Content-Type header ("" when absent)
  std::string upgrade;                ///< Upgrade header, lower-cased ("websocket" for a WebSocket)
  bool connection_upgrade = false;    ///< the Connection header has the "upgrade" token
  std::string sec_websocket_key;      ///< Sec-WebSocket-Key (RFC 6455 section 4.1)
  std::string sec_websocket_version;  ///< Sec-WebSocket-Version ("13")
  std::string body;
  std::string client_ip;  ///< remote address (rate limiting)
  size_t size = 0;        ///< request line + headers + body, bytes
};

/// Any content type (application/javascript, text/html, ... for static files; "" for none)
/// and any extra header (Cache-Control, ETag, Location, ...).
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers
};

/// {"error": message} with `status`.
Response json_error(int status, std::string_view message);

/// Health state shared by the app (writer) and /healthz, /readyz (readers). Any thread.
class Readiness {
 public:
  /// Every configured listener is bound (set once after startup).
  void set_listeners_bound(bool v) { bound_.store(v, std::memory_order_release); }
  /// Draining: stopping soon (set on SIGTERM, before shutdown); not ready for new clients.
  void set_draining(bool v) { draining_.store(v, std::memory_order_release); }
  bool listeners_bound() const { return bound_.load(std::memory_order_acquire); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  bool ready() const { return listeners_bound() && !draining(); }

 private:
  std::atomic<bool> bound_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace callrelay::http
