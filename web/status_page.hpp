// The live status page (/status): an embedded, dependency-free page that asks the operator for
// an admin API key and polls the admin endpoints with it. The page holds no data itself; every
// number it shows comes from /api/v1/admin/*, behind the admin key.
#pragma once

#include <optional>

#include "http/message.hpp"

namespace callrelay::web {

/// The URL prefix the status page is served under ("/status", "/status/", "/status/...").
inline constexpr const char* kStatusPrefix = "/status";

/// The Content-Security-Policy sent with every file of the page: same-origin scripts, styles
/// and requests only, nothing inline, never framed (the page handles an admin key).
inline constexpr const char* kStatusPageCsp =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The response for a status page path: "/status" and "/status/" are its index.html, and
/// "/status/<file>" its embedded files. GET and HEAD get the file with the CSP above,
/// Cache-Control: no-cache, no CORS header (the page is for this origin only) and
/// Referrer-Policy: no-referrer; other methods 405. Any other path: nullopt (not ours; the
/// router answers 404).
std::optional<http::Response> serve_status_page(const http::Request& req);

}  // namespace callrelay::web
