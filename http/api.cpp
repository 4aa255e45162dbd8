#include "http/api.hpp"

#include <algorithm>
#include <charconv>

#include "base/log.hpp"

namespace callrelay::http {
namespace {

constexpr size_t kMaxTtlDigits = 10;

std::optional<uint32_t> parse_ttl(std::string_view text) {
  if (text.empty() || text.size() > kMaxTtlDigits) return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v == 0 || v > UINT32_MAX)
    return std::nullopt;
  return static_cast<uint32_t>(v);
}

/// Why a user id cannot go into a REST username, or nullopt when it can.
std::optional<std::string> user_id_problem(const std::string& user, char separator) {
  if (user.empty()) return "parameter 'username' must not be empty";
  if (user.size() > kMaxUserIdBytes)
    return "parameter 'username' is longer than " + std::to_string(kMaxUserIdBytes) + " bytes";
  if (user.find(separator) != std::string::npos)
    return std::string("parameter 'username' must not contain the separator '") + separator +
           "' (it is the app's user id; the server adds the expiry)";
  for (const char c : user) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      return "parameter 'username' must not contain control characters";
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> derive_turn_uris(const std::string& public_host,
                                          const std::vector<stun::Endpoint>& udp,
                                          const std::vector<stun::Endpoint>& tcp,
                                          const std::vector<stun::Endpoint>& tls) {
  std::vector<std::string> out;
  const auto add = [&](const std::vector<stun::Endpoint>& listeners, const char* scheme,
                       const char* transport) {
    for (const stun::Endpoint& ep : listeners) {
      std::string host = public_host;
      if (host.empty()) {
        const std::string ip = ep.ip_string();
        if (ip == "0.0.0.0" || ip == "::") continue;
        host = ep.is_v4() ? ip : "[" + ip + "]";
      }
      std::string uri = std::string(scheme) + ":" + host + ":" + std::to_string(ep.port) +
                        "?transport=" + transport;
      if (std::find(out.begin(), out.end(), uri) == out.end()) out.push_back(std::move(uri));
    }
  };
  add(udp, "turn", "udp");
  add(tcp, "turn", "tcp");
  add(tls, "turns", "tcp");
  return out;
}

CredentialApi::CredentialApi(const ApiConfig& cfg, std::vector<std::string> uris, char separator,
                             core::Authenticator& auth, ApiKeys& keys)
    : default_ttl_s_(cfg.default_ttl_s),
      uris_(std::move(uris)),
      separator_(separator),
      auth_(auth),
      keys_(keys) {}

Response CredentialApi::preflight(const Request& req) const {
  return keys_.preflight(req, "GET, POST, OPTIONS");
}

std::optional<Response> CredentialApi::authorize(const Request& req, core::TimeMs now,
                                                 Authorized& out) {
  if (auto bad = read_params(req, out.params)) return with_cors(std::move(*bad), req, nullptr);
  auto checked = keys_.authorize(req, out.params, now);
  if (auto* denied = std::get_if<Response>(&checked)) return std::move(*denied);
  out.key = std::get<const ApiKey*>(checked);
  return std::nullopt;
}

Response CredentialApi::credentials(const Request& req, core::TimeMs now) {
  Authorized a;
  if (auto denied = authorize(req, now, a)) return std::move(*denied);
  const auto fail = [&](int status, const std::string& msg) {
    return with_cors(json_error(status, msg), req, a.key);
  };
  const auto service = find_param(a.params, "service");
  if (!service) return fail(400, "missing parameter 'service' (must be 'turn')");
  if (*service != "turn")
    return fail(400, "parameter 'service' must be 'turn', not '" + *service + "'");
  const auto user = find_param(a.params, "username");
  if (!user) return fail(400, "missing parameter 'username' (the app's user id)");
  if (auto problem = user_id_problem(*user, separator_)) return fail(400, *problem);
  uint32_t ttl = std::min(default_ttl_s_, a.key->max_ttl_s);
  if (const auto ttl_text = find_param(a.params, "ttl")) {
    const auto parsed = parse_ttl(*ttl_text);
    if (!parsed) return fail(400, "parameter 'ttl' must be a positive integer of seconds");
    if (*parsed > a.key->max_ttl_s)
      return fail(400, "parameter 'ttl' (" + std::to_string(*parsed) +
                           ") is above this API key's maximum of " +
                           std::to_string(a.key->max_ttl_s) + " seconds");
    ttl = *parsed;
  }
  // An optional client region (cluster mode picks instances of it first); the same shape as
  // cluster.region, so nothing else reaches the instance picker.
  std::string region;
  if (const auto r = find_param(a.params, "region")) {
    const bool ok = r->size() <= 64 && std::all_of(r->begin(), r->end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    });
    if (!ok)
      return fail(400, "parameter 'region' must be up to 64 letters, digits, '.', '_' or '-'");
    region = *r;
  }
  // The secret in force now: a reload that rotated the secrets mints with the new first one.
  const auto auth_cfg = auth_.config();
  if (auth_cfg->rest_secrets.empty())
    return fail(503, "no REST secret is configured (auth.secrets)");
  const std::string& secret = auth_cfg->rest_secrets.front();

  const int64_t expiry = now / 1000 + ttl;
  const std::string username = std::to_string(expiry) + separator_ + *user;
  const std::string password = core::Authenticator::rest_password(secret, username);
  const nlohmann::ordered_json uris = uri_source_ ? uri_source_(region) : uris_;
  Response r = json_response(200, {{"username", username},
                                   {"password", password},
                                   {"ttl", ttl},
                                   {"uris", uris},
                                   {"iceServers", nlohmann::ordered_json::array({{
                                                      {"urls", uris},
                                                      {"username", username},
                                                      {"credential", password},
                                                  }})}});
  r.headers.emplace_back("Cache-Control", "no-store");
  log::debug("credential.minted", {{"key_name", a.key->name}, {"user", *user}, {"ttl_s", ttl}},
             "http: API key '", a.key->name, "' minted a credential for user '", *user, "', ttl ",
             ttl, " s");
  return with_cors(std::move(r), req, a.key);
}

Response CredentialApi::revoke(const Request& req, core::TimeMs now) {
  Authorized a;
  if (auto denied = authorize(req, now, a)) return std::move(*denied);
  const auto fail = [&](int status, const std::string& msg) {
    return with_cors(json_error(status, msg), req, a.key);
  };
  const auto username = find_param(a.params, "username");
  if (!username || username->empty())
    return fail(400, "missing parameter 'username' (the full REST username '<expiry>" +
                         std::string(1, separator_) + "<user>' to revoke)");
  // Revocations are kept until the credential expires, so the username must carry its expiry.
  const std::string_view stamp = std::string_view(*username).substr(0, username->find(separator_));
  int64_t expiry = 0;
  const auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), expiry);
  if (stamp.empty() || stamp.size() > 12 || ec != std::errc{} ||
      end != stamp.data() + stamp.size() || expiry < 0)
    return fail(400, "parameter 'username' must be a REST username '<expiry>" +
                         std::string(1, separator_) + "<user>'");
  const core::TimeMs until = expiry * 1000;
  // A full list (auth.max_revocations) refuses rather than forgetting an older revocation.
  if (until > now && !auth_.revoke(*username, until, now))
    return fail(503, "the revocation list is full (auth.max_revocations); '" + *username +
                         "' is not revoked: retry once older revocations expire, or raise the limit");
  // Refused from now on, and its live allocations end too (on every worker, at once).
  if (on_revoked_) on_revoked_(*username);
  log::info("credential.revoked", {{"key_name", a.key->name}, {"username", *username}},
            "http: API key '", a.key->name, "' revoked '", *username, "'");
  Response r =
      json_response(200, {{"username", *username}, {"revoked", until > now}, {"until", expiry}});
  return with_cors(std::move(r), req, a.key);
}

}  // namespace callrelay::http
