#include "calls/signaling/token_api.hpp"

#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>

#include "base/log.hpp"
#include "calls/core/messages.hpp"
#include "http/codec.hpp"

namespace callrelay::calls {
namespace {

constexpr const char* kMethods = "POST, OPTIONS";

/// `text` as whole seconds in [1, max]; nullopt for anything else ("", "1.5", "-3", "9e9").
std::optional<uint32_t> parse_ttl(std::string_view text, uint32_t max) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v == 0 || v > max)
    return std::nullopt;
  return static_cast<uint32_t>(v);
}

}  // namespace

SignalTokenApi::SignalTokenApi(const TokenSigner& signer, http::ApiKeys& keys,
                               size_t max_user_id_bytes)
    : signer_(signer), keys_(keys), max_user_id_bytes_(max_user_id_bytes) {}

http::Response SignalTokenApi::handle(const http::Request& req, int64_t now_ms) {
  if (req.method == "OPTIONS") return keys_.preflight(req, kMethods);
  if (req.method != "POST") {
    http::Response r = http::json_error(
        405, "method " + req.method.substr(0, 16) + " not allowed here (use POST)");
    r.headers.emplace_back("Allow", kMethods);
    return keys_.with_cors(std::move(r), req, nullptr);
  }
  http::Params params;
  if (auto bad = http::read_params(req, params)) return keys_.with_cors(*bad, req, nullptr);
  auto checked = keys_.authorize(req, params, now_ms);
  if (auto* denied = std::get_if<http::Response>(&checked)) return std::move(*denied);
  const http::ApiKey* key = std::get<const http::ApiKey*>(checked);
  const auto fail = [&](int status, const std::string& message) {
    return keys_.with_cors(http::json_error(status, message), req, key);
  };

  const auto user = http::find_param(params, "user");
  if (!user) return fail(400, "missing parameter 'user' (the app's user id)");
  if (!valid_user_id(*user, max_user_id_bytes_))
    return fail(400, "parameter 'user' must be 1 to " + std::to_string(max_user_id_bytes_) +
                         " bytes of UTF-8 without control characters or ':'");
  const std::string tenant = http::find_param(params, "tenant").value_or("");
  if (http::find_param(params, "tenant") && !valid_tenant(tenant))
    return fail(400, "parameter 'tenant' must be 1 to 64 characters of [A-Za-z0-9._-]");
  uint32_t ttl = std::min(kDefaultTtlS, signer_.max_ttl_s());
  if (const auto text = http::find_param(params, "ttl")) {
    const auto parsed = parse_ttl(*text, signer_.max_ttl_s());
    if (!parsed)
      return fail(400, "parameter 'ttl' must be whole seconds from 1 to " +
                           std::to_string(signer_.max_ttl_s()) + " (calls.max_token_ttl_s)");
    ttl = *parsed;
  }

  const int64_t now_s = now_ms / 1000;
  std::string token;
  try {
    token = signer_.mint(*user, tenant, ttl, now_s);
  } catch (const std::invalid_argument& e) {
    return fail(400, e.what());
  } catch (const std::exception& e) {
    log::error("signal_token.failed", {{"error", e.what()}}, "signal token: minting failed: ",
               e.what());
    return fail(500, "the token could not be signed");
  }
  log::debug("signal_token.minted", {{"key_name", key->name}, {"user", *user}, {"ttl_s", ttl}},
             "http: API key '", key->name, "' minted a signaling token for user '", *user,
             "', ttl ", ttl, " s");
  http::Response r =
      http::json_response(200, {{"token", token},
                                {"expires", now_s + ttl},
                                {"user", *user},
                                {"tenant", tenant.empty() ? nlohmann::ordered_json(nullptr)
                                                          : nlohmann::ordered_json(tenant)}});
  r.headers.emplace_back("Cache-Control", "no-store");
  return keys_.with_cors(std::move(r), req, key);
}

}  // namespace callrelay::calls
