// Routes of the HTTP listener: /metrics, /healthz, /readyz and the /api/v1/turn endpoints.
// Pure request -> response; runs on the HTTP server's thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "http/api.hpp"
#include "http/message.hpp"
#include "relay/core/types.hpp"

namespace callrelay::http {

/// The Prometheus text exposition content type (format 0.0.4).
inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class Router {
 public:
  /// `metrics` returns the exposition text (empty function: /metrics answers 404).
  /// `api` and `readiness` must outlive the router.
  Router(size_t max_request_bytes, CredentialApi& api, const Readiness& readiness,
         std::function<std::string(core::TimeMs)> metrics);

  Response handle(const Request& req, core::TimeMs now);

 private:
  size_t max_request_bytes_;
  CredentialApi& api_;
  const Readiness& readiness_;
  std::function<std::string(core::TimeMs)> metrics_;
};

}  // namespace callrelay::http
