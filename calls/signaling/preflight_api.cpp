#include "calls/signaling/preflight_api.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <variant>

#include "base/log.hpp"
#include "calls/core/base64url.hpp"
#include "http/codec.hpp"

namespace callrelay::calls {
namespace {

using nlohmann::json;

constexpr const char* kMethods = "POST, OPTIONS";
constexpr size_t kIdRandomBytes = 16;     ///< 22 base64url characters after "p_"
constexpr size_t kMaxResultBytes = 4096;  ///< three results fit many times over
constexpr int kMaxDepth = 4;              ///< {"results": [{...}]} is three deep
constexpr double kMaxMs = 60'000;
constexpr size_t kMaxErrorBytes = 128;
constexpr size_t kBearerPrefixBytes = 7;  // "bearer "

std::string random_id() {
  std::array<unsigned char, kIdRandomBytes> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no randomness for preflight ids");
  return "p_" + base64url_encode(std::string_view(reinterpret_cast<const char*>(raw.data()),
                                                  raw.size()));
}

/// CORS (Fetch standard, section 3.2): any origin may call; the bearer token authenticates.
http::Response with_cors(http::Response r) {
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Response field_error(std::string_view field, const std::string& reason) {
  return with_cors(http::json_response(
      400, {{"error", std::string(field) + " " + reason}, {"field", std::string(field)}}));
}

/// The bearer token of "Authorization: Bearer <token>" (RFC 6750 section 2.1), or "".
std::string_view bearer(std::string_view authorization) {
  if (authorization.size() <= kBearerPrefixBytes) return {};
  std::string scheme(authorization.substr(0, kBearerPrefixBytes));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "bearer ") return {};
  std::string_view t = authorization.substr(kBearerPrefixBytes);
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

/// Whether arrays and objects nest at most `limit` deep (brackets outside strings).
bool nesting_within(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > limit) return false;
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return true;
}

/// One transport's result as reported.
struct TransportResult {
  PreflightTransport transport = PreflightTransport::kUdp;
  bool ok = false;
  double gather_ms = -1, rtt_ms = -1;  ///< -1: not reported
};

struct FieldError {
  std::string field, reason;
};

std::optional<PreflightTransport> transport_from(const json& v) {
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  if (s == "udp") return PreflightTransport::kUdp;
  if (s == "tcp") return PreflightTransport::kTcp;
  if (s == "tls") return PreflightTransport::kTls;
  return std::nullopt;
}

bool milliseconds(const json& v, double& out) {
  if (!v.is_number()) return false;
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < 0 || d > kMaxMs) return false;
  out = d;
  return true;
}

/// One entry of "results": {"transport", "ok", "gather_ms"?, "rtt_ms"? (ok only), "error"?}.
std::optional<FieldError> read_result(const json& item, const std::string& at,
                                      TransportResult& out) {
  if (!item.is_object()) return FieldError{at, "must be an object"};
  for (const auto& [key, value] : item.items()) {
    if (key != "transport" && key != "ok" && key != "gather_ms" && key != "rtt_ms" &&
        key != "error")
      return FieldError{at + "." + key.substr(0, 32), "is not a known field"};
  }
  const auto t = item.find("transport");
  if (t == item.end()) return FieldError{at + ".transport", "is required"};
  const auto transport = transport_from(*t);
  if (!transport) return FieldError{at + ".transport", "must be \"udp\", \"tcp\" or \"tls\""};
  out.transport = *transport;
  const auto ok = item.find("ok");
  if (ok == item.end()) return FieldError{at + ".ok", "is required"};
  if (!ok->is_boolean()) return FieldError{at + ".ok", "must be true or false"};
  out.ok = ok->get<bool>();
  const std::string range = "must be a number of milliseconds from 0 to 60000";
  if (const auto g = item.find("gather_ms"); g != item.end() && !milliseconds(*g, out.gather_ms))
    return FieldError{at + ".gather_ms", range};
  if (const auto r = item.find("rtt_ms"); r != item.end()) {
    if (!out.ok) return FieldError{at + ".rtt_ms", "is only reported for a transport that worked"};
    if (!milliseconds(*r, out.rtt_ms)) return FieldError{at + ".rtt_ms", range};
  }
  if (const auto e = item.find("error"); e != item.end()) {
    if (!e->is_string() || e->get_ref<const std::string&>().size() > kMaxErrorBytes)
      return FieldError{at + ".error",
                        "must be a string of at most " + std::to_string(kMaxErrorBytes) + " bytes"};
  }
  return std::nullopt;
}

/// The report {"id", "results": [...]}: the id and the results, or the first bad field.
std::variant<std::pair<std::string, std::vector<TransportResult>>, FieldError> read_report(
    std::string_view body) {
  if (body.size() > kMaxResultBytes)
    return FieldError{"body", "must be at most " + std::to_string(kMaxResultBytes) + " bytes"};
  if (!nesting_within(body, kMaxDepth))
    return FieldError{"body", "nests arrays and objects too deep"};
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return FieldError{"body", "must be a JSON object (RFC 8259) in UTF-8"};
  for (const auto& [key, value] : j.items()) {
    if (key != "id" && key != "results") return FieldError{key.substr(0, 32), "is not a known field"};
  }
  const auto id = j.find("id");
  if (id == j.end()) return FieldError{"id", "is required"};
  if (!id->is_string() || id->get_ref<const std::string&>().size() != 2 + 22 ||
      !id->get_ref<const std::string&>().starts_with("p_"))
    return FieldError{"id", "must be a preflight id (\"p_\" and 22 characters)"};
  const auto results = j.find("results");
  if (results == j.end()) return FieldError{"results", "is required"};
  if (!results->is_array() || results->empty() || results->size() > kPreflightTransportCount)
    return FieldError{"results", "must be an array of 1 to 3 transport results"};
  std::vector<TransportResult> out;
  std::array<bool, kPreflightTransportCount> seen{};
  for (size_t i = 0; i < results->size(); ++i) {
    const std::string at = "results[" + std::to_string(i) + "]";
    TransportResult r;
    if (auto bad = read_result((*results)[i], at, r)) return *bad;
    bool& once = seen[static_cast<size_t>(r.transport)];
    if (once) return FieldError{at + ".transport", "is reported twice"};
    once = true;
    out.push_back(r);
  }
  return std::make_pair(id->get<std::string>(), std::move(out));
}

}  // namespace

PreflightApi::PreflightApi(const TokenSigner& tokens, PreflightRelay& relay,
                           PreflightMetrics* metrics, Options options, IdSource ids)
    : tokens_(tokens),
      relay_(relay),
      metrics_(metrics),
      options_(options),
      ids_(ids ? std::move(ids) : IdSource(random_id)) {}

PreflightApi::~PreflightApi() {
  std::vector<std::string> ids;
  {
    const std::lock_guard lock(mu_);
    for (const auto& entry : pending_) ids.push_back(entry.first);
    pending_.clear();
  }
  end_all(ids);
}

std::optional<http::Response> PreflightApi::handle(const http::Request& req, TimeMs now_ms) {
  const bool result = req.path == kResultPath;
  if (req.path != kPath && !result) return std::nullopt;
  if (req.method == "OPTIONS") {
    http::Response r = with_cors(http::Response{204, "", "", {}});
    r.headers.emplace_back("Access-Control-Allow-Methods", kMethods);
    r.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
    r.headers.emplace_back("Access-Control-Max-Age", "600");
    return r;
  }
  if (req.method != "POST") {
    http::Response r = http::json_error(
        405, "method " + req.method.substr(0, 16) + " not allowed here (use POST)");
    r.headers.emplace_back("Allow", kMethods);
    return with_cors(std::move(r));
  }
  const std::string_view token = bearer(req.authorization);
  const auto verified = token.empty()
                            ? std::variant<TokenClaims, TokenError>(
                                  TokenError{"missing token: send Authorization: Bearer <JWT>"})
                            : tokens_.verify(token, now_ms / 1000);
  if (const auto* bad = std::get_if<TokenError>(&verified)) {
    http::Response r = with_cors(http::json_error(401, bad->reason));
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  end_all(take_expired(now_ms));
  const TokenClaims& who = std::get<TokenClaims>(verified);
  return result ? finish(who, req, now_ms) : start(who, now_ms);
}

http::Response PreflightApi::start(const TokenClaims& who, TimeMs now_ms) {
  std::string id;
  {
    const std::lock_guard lock(mu_);
    const auto mine = static_cast<size_t>(std::count_if(
        pending_.begin(), pending_.end(), [&](const auto& e) { return e.second.user == who.user; }));
    if (mine >= options_.max_per_user) {
      http::Response r = http::json_error(
          429, "at most " + std::to_string(options_.max_per_user) +
                   " preflights per user may await their result; post one or wait a few minutes");
      r.headers.emplace_back("Retry-After", std::to_string(options_.result_window_ms / 1000));
      return with_cors(std::move(r));
    }
    if (pending_.size() >= options_.max_outstanding)
      return with_cors(http::json_error(503, "too many preflights at once; try again later"));
    id = ids_();
    pending_.emplace(id, Pending{who.user, now_ms});
  }
  json servers = relay_.ice_servers(who.user, id, options_.ttl_s, now_ms);
  if (!servers.is_array() || servers.empty()) {
    {
      const std::lock_guard lock(mu_);
      pending_.erase(id);
    }
    return with_cors(http::json_error(
        503, "the relay hands out no TURN credentials (no REST secret or no TURN URI: set "
             "api.public_host or api.uris)"));
  }
  return with_cors(http::json_response(
      200, {{"id", id}, {"ttl", options_.ttl_s}, {"iceServers", std::move(servers)}}));
}

http::Response PreflightApi::finish(const TokenClaims& who, const http::Request& req,
                                    TimeMs now_ms) {
  auto report = read_report(req.body);
  if (const auto* bad = std::get_if<FieldError>(&report)) return field_error(bad->field, bad->reason);
  auto& [id, results] = std::get<0>(report);
  {
    const std::lock_guard lock(mu_);
    const auto it = pending_.find(id);
    if (it == pending_.end() || it->second.user != who.user ||
        now_ms - it->second.issued > options_.result_window_ms) {
      return with_cors(http::json_response(
          404, {{"error", "id: no preflight of this user awaits a result under this id (ids are "
                          "taken once, within a few minutes)"},
                {"field", "id"}}));
    }
    pending_.erase(it);
  }
  if (metrics_ != nullptr) {
    for (const TransportResult& r : results)
      metrics_->on_result(r.transport, r.ok, r.gather_ms, r.rtt_ms);
  }
  relay_.end_call(id);
  log::debug("preflight.done",
             {{"preflight_id", id}, {"user", who.user}, {"results", results.size()}},
             "preflight ", id, " of user '", who.user, "': ", results.size(), " result(s)");
  return with_cors(http::Response{204, "", "", {}});
}

size_t PreflightApi::outstanding() const {
  const std::lock_guard lock(mu_);
  return pending_.size();
}

void PreflightApi::expire(TimeMs now_ms) { end_all(take_expired(now_ms)); }

std::vector<std::string> PreflightApi::take_expired(TimeMs now_ms) {
  std::vector<std::string> ids;
  const std::lock_guard lock(mu_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now_ms - it->second.issued > options_.result_window_ms) {
      ids.push_back(it->first);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return ids;
}

void PreflightApi::end_all(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) relay_.end_call(id);
}

}  // namespace callrelay::calls
