#include "app/reload_api.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>

#include "base/log.hpp"

namespace callrelay::app {

http::Router::Handler reload_route(Reloader& reloader, AdminCheck check) {
  return [&reloader, check = std::move(check)](const http::Request& req,
                                               core::TimeMs now) -> std::optional<http::Response> {
    if (req.path != kReloadPath) return std::nullopt;
    if (req.method != "POST") {
      http::Response r = http::json_error(405, "use POST to reload the configuration");
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    http::Params params;
    auto checked = check(req, params, now);
    if (auto* denied = std::get_if<http::Response>(&checked)) return std::move(*denied);
    const http::ApiKey* key = std::get<const http::ApiKey*>(checked);
    log::info("reload.requested", {{"key_name", key->name}},
              "http: API key '", key->name, "' asked for a configuration reload");
    const ReloadResult result = reloader.reload("API");
    http::Response r =
        result.ok ? http::json_response(200, {{"outcome", "ok"},
                                              {"changed", result.changed},
                                              {"restart_required", result.need_restart}})
                  : http::json_response(422, {{"outcome", "error"}, {"error", result.error}});
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  };
}

}  // namespace callrelay::app
