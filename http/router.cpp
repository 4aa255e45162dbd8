#include "http/router.hpp"

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

}  // namespace

Router::Router(size_t max_request_bytes, CredentialApi& api, const Readiness& readiness,
               std::function<std::string(core::TimeMs)> metrics)
    : max_request_bytes_(max_request_bytes),
      api_(api),
      readiness_(readiness),
      metrics_(std::move(metrics)) {}

Response Router::handle(const Request& req, core::TimeMs now) {
  if (req.size > max_request_bytes_) {
    return json_error(413, "request of " + std::to_string(req.size) +
                               " bytes is larger than http.max_request_bytes (" +
                               std::to_string(max_request_bytes_) + ")");
  }
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
  return json_error(404, "no such path '" + path.substr(0, kMaxPathEcho) +
                             "' (try /metrics, /healthz, /readyz, /api/v1/turn/credentials)");
}

}  // namespace callrelay::http
