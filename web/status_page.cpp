#include "web/status_page.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "web/assets.hpp"

namespace callrelay::web {
namespace {

constexpr const char* kAllowedMethods = "GET, HEAD";

/// "/status" and "/status/" name the page itself; "/status/<file>" its files. Anything else
/// (a prefix match like "/statusx") is not the page's.
std::optional<std::string> file_path(std::string_view path) {
  const std::string_view prefix = kStatusPrefix;
  if (path == prefix || path == std::string(prefix) + "/")
    return std::string(prefix) + "/index.html";
  if (path.size() > prefix.size() + 1 && path.starts_with(prefix) && path[prefix.size()] == '/')
    return std::string(path);
  return std::nullopt;
}

}  // namespace

std::optional<http::Response> serve_status_page(const http::Request& req) {
  const auto path = file_path(req.path);
  if (!path) return std::nullopt;
  // The embedded files' lookup, types and ETags are serve_asset's. Other methods are asked as
  // HEAD, so that a missing file stays nullopt; the CORS preflight is not offered.
  const bool read = req.method == "GET" || req.method == "HEAD";
  http::Request file_req = req;
  file_req.path = *path;
  if (!read) file_req.method = "HEAD";
  auto r = serve_asset(file_req);
  if (!r) return std::nullopt;
  if (!read) {
    http::Response refused =
        http::json_error(405, "method " + req.method.substr(0, 16) + " not allowed here (use " +
                                  kAllowedMethods + ")");
    refused.headers.emplace_back("Allow", kAllowedMethods);
    return refused;
  }
  // Same origin only: the page and its API calls share the listener's origin.
  std::erase_if(r->headers, [](const auto& h) { return h.first == "Access-Control-Allow-Origin"; });
  r->headers.emplace_back("Content-Security-Policy", kStatusPageCsp);
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("X-Frame-Options", "DENY");
  return r;
}

}  // namespace callrelay::web
