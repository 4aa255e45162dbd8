#include "http/router.hpp"

#include "http/ws_frame.hpp"

namespace callrelay::http {
namespace {

constexpr size_t kMaxPathEcho = 100;

Response text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

Response method_not_allowed(const std::string& method, const char* allow) {
  Response r =
      json_error(405, "method " + method.substr(0, 16) + " not allowed here (use " + allow + ")");
  r.headers.emplace_back("Allow", allow);
  return r;
}

bool is_get(const Request& req) { return req.method == "GET"; }

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

Router::Router(size_t max_request_bytes, CredentialApi& api, const Readiness& readiness,
               std::function<std::string(core::TimeMs)> metrics)
    : max_request_bytes_(max_request_bytes),
      api_(api),
      readiness_(readiness),
      metrics_(std::move(metrics)) {}

void Router::add_route(std::string path_prefix, Handler handler) {
  routes_.emplace_back(std::move(path_prefix), std::move(handler));
}

void Router::set_websocket(std::string path, WsEndpoint* endpoint) {
  ws_path_ = std::move(path);
  ws_endpoint_ = endpoint;
}

std::optional<Response> Router::too_large(const Request& req) const {
  if (req.size <= max_request_bytes_) return std::nullopt;
  return json_error(413, "request of " + std::to_string(req.size) +
                             " bytes is larger than http.max_request_bytes (" +
                             std::to_string(max_request_bytes_) + ")");
}

std::optional<std::variant<WsAccept, Response>> Router::route_upgrade(const Request& req,
                                                                      core::TimeMs /*now*/) {
  if (ws_endpoint_ == nullptr || req.path != ws_path_ || !is_get(req) ||
      req.upgrade != "websocket" || !req.connection_upgrade)
    return std::nullopt;
  if (auto big = too_large(req)) return *big;
  if (req.sec_websocket_version != "13") {
    Response r = json_error(426, "unsupported WebSocket version: this server speaks 13");
    r.headers.emplace_back("Sec-WebSocket-Version", "13");
    return r;
  }
  if (!valid_ws_key(req.sec_websocket_key))
    return json_error(400, "missing or malformed Sec-WebSocket-Key");
  auto decision = ws_endpoint_->on_upgrade(req);
  if (auto* refused = std::get_if<Response>(&decision)) return std::move(*refused);
  return WsAccept{ws_endpoint_, std::get<WsEndpoint::Accepted>(decision).session,
                  ws_accept_key(req.sec_websocket_key)};
}

Response Router::handle(const Request& req, core::TimeMs now) {
  if (auto big = too_large(req)) return *big;
  const std::string& path = req.path;
  if (path == "/metrics" && metrics_) {
    if (!is_get(req)) return method_not_allowed(req.method, "GET");
    Response r = text(200, metrics_(now));
    r.content_type = kMetricsContentType;
    return r;
  }
  if (path == "/healthz") {
    if (!is_get(req)) return method_not_allowed(req.method, "GET");
    return text(200, "ok\n");
  }
  if (path == "/readyz") {
    if (!is_get(req)) return method_not_allowed(req.method, "GET");
    if (readiness_.draining()) return json_error(503, "not ready: draining");
    if (!readiness_.listeners_bound()) return json_error(503, "not ready: listeners not bound yet");
    return text(200, "ready\n");
  }
  if (path == "/api/v1/turn/credentials") {
    if (req.method == "GET" || req.method == "POST") return api_.credentials(req, now);
    if (req.method == "OPTIONS") return api_.preflight(req);
    return method_not_allowed(req.method, "GET, POST, OPTIONS");
  }
  if (path == "/api/v1/turn/revoke") {
    if (req.method == "POST") return api_.revoke(req, now);
    if (req.method == "OPTIONS") return api_.preflight(req);
    return method_not_allowed(req.method, "POST, OPTIONS");
  }
  if (ws_endpoint_ != nullptr && path == ws_path_) {
    // RFC 7231 section 6.5.15: the path exists, but only as a WebSocket.
    Response r = json_error(426, "this path is a WebSocket endpoint: connect with ws:// or wss://");
    r.headers.emplace_back("Upgrade", "websocket");
    return r;
  }
  for (const auto& [prefix, handler] : routes_) {
    if (!starts_with(path, prefix)) continue;
    if (auto r = handler(req, now)) return std::move(*r);
  }
  return json_error(404, "no such path '" + path.substr(0, kMaxPathEcho) +
                             "' (try /metrics, /healthz, /readyz, /api/v1/turn/credentials)");
}

}  // namespace callrelay::http
