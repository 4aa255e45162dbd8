// POST /api/v1/admin/reload: the operator's way to reload the configuration over HTTP (the
// same reload as SIGHUP), for API keys marked admin.
#pragma once

#include <functional>
#include <variant>

#include "app/reload.hpp"
#include "http/codec.hpp"
#include "http/http_config.hpp"
#include "http/message.hpp"
#include "http/router.hpp"
#include "relay/core/types.hpp"

namespace callrelay::app {

inline constexpr const char* kReloadPath = "/api/v1/admin/reload";

/// Checks that a request carries an admin key: the key, or the response to send (401, 403,
/// 429). Fills `params` with the request's parameters.
using AdminCheck = std::function<std::variant<const http::ApiKey*, http::Response>(
    const http::Request&, http::Params&, core::TimeMs)>;

/// The route for kReloadPath. POST with an admin key reloads and answers 200
/// {"outcome": "ok", "changed": [...], "restart_required": [...]}, or 422 {"outcome": "error",
/// "error": "..."} when the file was rejected (nothing applied). Other methods get 405.
/// `reloader` must outlive the route.
http::Router::Handler reload_route(Reloader& reloader, AdminCheck check);

}  // namespace callrelay::app
