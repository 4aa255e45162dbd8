// Routes of the HTTP listener: /metrics, /healthz, /readyz, the /api/v1/turn endpoints, routes
// other modules add (records, tokens, static files) and one WebSocket path. Pure request ->
// response; thread-safe once set up (the listener's threads call handle() at once), so every
// handler it calls must be thread-safe too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "http/api.hpp"
#include "http/message.hpp"
#include "http/websocket.hpp"
#include "relay/core/types.hpp"

namespace callrelay::http {

/// The Prometheus text exposition content type (format 0.0.4).
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

/// An upgrade the endpoint accepted: what the listener needs to switch protocols.
struct WsAccept {
  WsEndpoint* endpoint = nullptr;
  uint64_t session = 0;    ///< the endpoint's name for the connection
  std::string accept_key;  ///< Sec-WebSocket-Accept (RFC 6455 section 4.2.2)
};

class Router {
 public:
  /// A route of another module: the response, or nullopt to pass to the next route.
  using Handler = std::function<std::optional<Response>(const Request&, core::TimeMs)>;

  /// `metrics` returns the exposition text (empty function: /metrics answers 404).
  /// `api` and `readiness` must outlive the router.
  Router(size_t max_request_bytes, CredentialApi& api, const Readiness& readiness,
         std::function<std::string(core::TimeMs)> metrics);

  /// Routes under `path_prefix` to `handler`, tried in registration order after the built-in
  /// routes. Call before the server starts.
  void add_route(std::string path_prefix, Handler handler);
  /// WebSocket upgrades on exactly `path` go to `endpoint` (which must outlive the server).
  /// Call before the server starts.
  void set_websocket(std::string path, WsEndpoint* endpoint);

  /// The response to a plain request (an upgrade that route_upgrade() did not take included).
  Response handle(const Request& req, core::TimeMs now);

  /// A WebSocket upgrade request (GET with "Upgrade: websocket") on the WebSocket path:
  /// checks the handshake (RFC 6455 section 4.2.1: 426 without version 13, 400 for a bad key)
  /// and asks the endpoint, whose refusal (401, 503, ...) comes back as the Response.
  /// nullopt for any other request.
  std::optional<std::variant<WsAccept, Response>> route_upgrade(const Request& req,
                                                                core::TimeMs now);

 private:
  std::optional<Response> too_large(const Request& req) const;

  size_t max_request_bytes_;
  CredentialApi& api_;
  const Readiness& readiness_;
  std::function<std::string(core::TimeMs)> metrics_;
  std::vector<std::pair<std::string, Handler>> routes_;
  std::string ws_path_;
  WsEndpoint* ws_endpoint_ = nullptr;
};

}  // namespace callrelay::http
