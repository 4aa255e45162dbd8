#include "http/admin_api.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

#include "base/log.hpp"
#include "http/api.hpp"

namespace callrelay::http {
namespace {

using Json = nlohmann::ordered_json;

/// Deadlines of a drain are whole seconds: at most this many digits.
constexpr size_t kMaxDeadlineDigits = 10;

Response method_not_allowed(const std::string& method, const char* allow) {
  Response r =
      json_error(405, "method " + method.substr(0, 16) + " not allowed here (use " + allow + ")");
  r.headers.emplace_back("Allow", allow);
  return r;
}

/// Live figures: never cached by a browser or a proxy.
Response live(Json body) {
  Response r = json_response(200, body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

template <typename T>
std::optional<T> parse_digits(std::string_view text, size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  for (const char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  T v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

/// Call ids are the service's "c_" + base64url; anything else cannot name a call.
bool plausible_call_id(const std::string& id) {
  if (id.empty() || id.size() > AdminApi::kMaxCallIdBytes) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Json to_json(const AdminAllocation& a) {
  Json quality = nullptr;
  if (a.quality)
    quality = {{"loss_ratio", a.quality->loss_ratio}, {"jitter_ms", a.quality->jitter_ms}};
  return {{"id", a.id},
          {"user", a.user},
          {"transport", a.transport},
          {"family", a.family},
          {"client", a.client},
          {"relayed", a.relayed},
          {"age_s", a.age_s},
          {"bytes", {{"client_to_peer", a.bytes[0]}, {"peer_to_client", a.bytes[1]}}},
          {"rate_bytes_per_s", {{"client_to_peer", a.rate[0]}, {"peer_to_client", a.rate[1]}}},
          {"quality", std::move(quality)},
          {"call_id", a.call_id.empty() ? Json(nullptr) : Json(a.call_id)}};
}

Json to_json(const AdminCall& c) {
  Json quality = nullptr;
  if (c.quality) {
    quality = {{"mos", c.quality->mos},
               {"loss_ratio", c.quality->loss_ratio},
               {"jitter_ms", c.quality->jitter_ms},
               {"rtt_ms", c.quality->rtt_ms ? Json(*c.quality->rtt_ms) : Json(nullptr)}};
  }
  return {{"id", c.id},
          {"state", c.state},
          {"caller", c.caller},
          {"callee", c.callee},
          {"age_s", c.age_s},
          {"allocations", c.allocations},
          {"quality", std::move(quality)}};
}

Json recent_errors() {
  Json list = Json::array();
  for (const log::RecentLine& l : log::recent_lines()) {
    list.push_back({{"time", rfc3339_ms(l.unix_ms)},
                    {"level", log::level_name(l.level)},
                    {"event", l.event},
                    {"message", l.message}});
  }
  return list;
}

}  // namespace

std::optional<std::pair<unsigned, uint64_t>> parse_allocation_id(std::string_view id) {
  const size_t dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto worker = parse_digits<unsigned>(id.substr(0, dash), 5);
  const auto core_id = parse_digits<uint64_t>(id.substr(dash + 1), 20);
  if (!worker || !core_id) return std::nullopt;
  return std::pair{*worker, *core_id};
}

std::string rfc3339_ms(int64_t unix_ms) {
  const int64_t ms = ((unix_ms % 1000) + 1000) % 1000;
  const std::time_t seconds = static_cast<std::time_t>((unix_ms - ms) / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const int n = std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                              utc.tm_min, utc.tm_sec, static_cast<int>(ms));
  return n > 0 ? std::string(text, static_cast<size_t>(n)) : std::string();
}

AdminApi::AdminApi(ApiKeys& keys, Actions actions) : keys_(keys), actions_(std::move(actions)) {}

std::variant<const ApiKey*, Response> AdminApi::authorize(const Request& req, Params& params,
                                                          core::TimeMs now) {
  if (auto bad = read_params(req, params)) return std::move(*bad);
  auto checked = keys_.authorize(req, params, now);
  if (std::holds_alternative<Response>(checked)) return checked;
  const ApiKey* key = std::get<const ApiKey*>(checked);
  if (!key->admin)
    return json_error(403, "API key '" + key->name +
                               "' may not call /api/v1/admin/ (set admin: true on an operator's "
                               "key in api.keys)");
  return key;
}

std::optional<Response> AdminApi::handle(const Request& req, core::TimeMs now) {
  using Handler = Response (AdminApi::*)(const Request&, core::TimeMs);
  struct Route {
    const char* path;
    const char* method;
    Handler handler;
  };
  static constexpr Route kRoutes[] = {
      {"/api/v1/admin/status", "GET", &AdminApi::status},
      {"/api/v1/admin/allocations", "GET", &AdminApi::allocations},
      {"/api/v1/admin/calls", "GET", &AdminApi::calls},
      {"/api/v1/admin/allocations/end", "POST", &AdminApi::end_allocations},
      {"/api/v1/admin/calls/end", "POST", &AdminApi::end_call},
      {"/api/v1/admin/drain", "POST", &AdminApi::drain},
      {"/api/v1/admin/config", "GET", &AdminApi::config},
  };
  for (const Route& r : kRoutes) {
    if (req.path != r.path) continue;
    if (req.method != r.method) return method_not_allowed(req.method, r.method);
    return (this->*r.handler)(req, now);
  }
  return std::nullopt;
}

Response AdminApi::status(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  const AdminStatus s = actions_.status();
  std::array<uint64_t, 3> calls{};  // ringing, connecting, active
  if (calls_.calls) {
    const auto list = calls_.calls();
    if (!list) return json_error(503, "the signaling service did not answer; try again");
    for (const AdminCall& c : *list) {
      if (c.state == "ringing") ++calls[0];
      if (c.state == "connecting") ++calls[1];
      if (c.state == "active") ++calls[2];
    }
  }
  const auto& t = s.allocations_by_transport;
  return live({{"version", s.version},
               {"uptime_s", s.uptime_s},
               {"workers", s.workers},
               {"draining", s.draining},
               {"drain_deadline_s", s.drain_deadline_s ? Json(*s.drain_deadline_s) : Json(nullptr)},
               {"allocations",
                {{"total", t[0] + t[1] + t[2]},
                 {"by_transport", {{"udp", t[0]}, {"tcp", t[1]}, {"tls", t[2]}}}}},
               {"calls", {{"ringing", calls[0]}, {"connecting", calls[1]}, {"active", calls[2]}}},
               {"signaling_connections", calls_.connections ? calls_.connections() : 0},
               {"relay_ports", {{"in_use", s.relay_ports_in_use}, {"total", s.relay_ports_total}}},
               {"recent_errors", recent_errors()}});
}

Response AdminApi::allocations(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  const auto user = find_param(params, "user");
  if (user && user->empty()) return json_error(400, "parameter 'user' must not be empty");
  if (user && user->size() > kMaxUserIdBytes)
    return json_error(
        400, "parameter 'user' is longer than " + std::to_string(kMaxUserIdBytes) + " bytes");
  Json list = Json::array();
  for (const AdminAllocation& a : actions_.allocations())
    if (!user || a.user == *user) list.push_back(to_json(a));
  return live({{"allocations", std::move(list)}});
}

Response AdminApi::calls(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  Json list = Json::array();
  if (calls_.calls) {
    const auto calls = calls_.calls();
    if (!calls) return json_error(503, "the signaling service did not answer; try again");
    for (const AdminCall& c : *calls) list.push_back(to_json(c));
  }
  return live({{"calls", std::move(list)}});
}

Response AdminApi::end_allocations(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  const ApiKey* key = std::get<const ApiKey*>(checked);
  const auto user = find_param(params, "user");
  const auto id = find_param(params, "allocation");
  if (user && id) return json_error(400, "give either 'user' or 'allocation', not both");
  if (id) {
    const auto parsed = parse_allocation_id(*id);
    if (!parsed)
      return json_error(400,
                        "parameter 'allocation' must be an allocation id '<worker>-<number>' "
                        "as GET /api/v1/admin/allocations lists them");
    if (!actions_.end_allocation(parsed->first, parsed->second))
      return json_error(404, "no live allocation '" + *id + "'");
    log::info("admin.end_allocation", {{"key_name", key->name}, {"allocation", *id}},
              "http: admin key '", key->name, "' ended allocation ", *id);
    return json_response(200, {{"allocation", *id}, {"ended", 1}});
  }
  if (!user || user->empty())
    return json_error(400,
                      "missing parameter 'user' (the app's user id, or a static username) "
                      "or 'allocation' (an allocation id)");
  if (user->size() > kMaxUserIdBytes)
    return json_error(
        400, "parameter 'user' is longer than " + std::to_string(kMaxUserIdBytes) + " bytes");
  const size_t ended = actions_.end_user(*user);
  log::info("admin.end_user", {{"key_name", key->name}, {"user", *user}, {"ended", ended}},
            "http: admin key '", key->name, "' ended the allocations of user '", *user, "' (",
            ended, ")");
  return json_response(200, {{"user", *user}, {"ended", ended}});
}

Response AdminApi::end_call(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  const ApiKey* key = std::get<const ApiKey*>(checked);
  const auto id = find_param(params, "call");
  if (!id || id->empty()) return json_error(400, "missing parameter 'call' (a call id)");
  if (!plausible_call_id(*id))
    return json_error(400,
                      "parameter 'call' must be a call id as GET /api/v1/admin/calls lists "
                      "them");
  if (!calls_.end_call) return json_error(404, "calls are not enabled (calls.enabled)");
  const auto ended = calls_.end_call(*id);
  if (!ended) return json_error(503, "the signaling service did not answer; try again");
  if (!*ended) return json_error(404, "no live call '" + *id + "'");
  log::info("admin.end_call", {{"key_name", key->name}, {"call", *id}}, "http: admin key '",
            key->name, "' ended call ", *id);
  return json_response(200, {{"call", *id}, {"ended", true}});
}

Response AdminApi::drain(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  const ApiKey* key = std::get<const ApiKey*>(checked);
  std::optional<uint32_t> deadline;
  if (const auto text = find_param(params, "deadline_s")) {
    // 0 is allowed here (end now).
    const auto parsed = parse_digits<uint64_t>(*text, kMaxDeadlineDigits);
    if (!parsed || *parsed > UINT32_MAX)
      return json_error(400, "parameter 'deadline_s' must be a whole number of seconds");
    deadline = static_cast<uint32_t>(*parsed);
  }
  const uint32_t left = actions_.drain(deadline);
  log::info("drain.started", {{"key_name", key->name}, {"deadline_s", left}}, "http: admin key '",
            key->name, "' started a drain (deadline in ", left, " s)");
  return json_response(202, {{"draining", true}, {"deadline_s", left}});
}

Response AdminApi::config(const Request& req, core::TimeMs now) {
  Params params;
  auto checked = authorize(req, params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  if (!config_) return json_error(404, "the configuration is not available here");
  Response r = json_response(200, Json(config_()));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace callrelay::http
