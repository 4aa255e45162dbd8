#include "calls/signaling/demo_api.hpp"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "base/log.hpp"
#include "calls/core/messages.hpp"
#include "http/codec.hpp"

namespace callrelay::calls {
namespace {

using nlohmann::json;

constexpr size_t kMaxBodyBytes = 1024;
constexpr size_t kMaxOriginBytes = 300;  ///< scheme, a DNS name (RFC 1035: 253) and a port

/// Characters of an origin's host and port: a DNS name, an IPv4 address or a bracketed IPv6
/// literal, then ":port".
bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
}

http::Response no_store(http::Response r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

http::Response method_not_allowed(const http::Request& req, const char* allowed) {
  http::Response r = http::json_error(
      405, "method " + req.method.substr(0, 16) + " not allowed here (use " + allowed + ")");
  r.headers.emplace_back("Allow", allowed);
  return r;
}

}  // namespace

DemoApi::DemoApi(const TokenSigner& signer, OnlineUsers online, Options options)
    : signer_(signer),
      online_(std::move(online)),
      options_(std::move(options)),
      token_limiter_(options_.token_limit),
      online_limiter_(options_.online_limit) {}

std::optional<http::Response> DemoApi::handle(const http::Request& req, TimeMs now_ms) {
  if (req.path == kTokenPath) {
    if (req.method != "POST") return method_not_allowed(req, "POST");
    if (auto limited = throttle(token_limiter_, req.client_ip, now_ms)) return limited;
    return token(req, now_ms);
  }
  if (req.path == kOnlinePath) {
    if (req.method != "GET") return method_not_allowed(req, "GET");
    if (auto limited = throttle(online_limiter_, req.client_ip, now_ms)) return limited;
    return online();
  }
  return std::nullopt;
}

std::string DemoApi::signal_url(std::string_view origin) const {
  std::string_view scheme, host;
  if (origin.starts_with("https://")) {
    scheme = "wss://";
    host = origin.substr(8);
  } else if (origin.starts_with("http://")) {
    scheme = "ws://";
    host = origin.substr(7);
  }
  if (scheme.empty() || host.empty() || origin.size() > kMaxOriginBytes ||
      !std::all_of(host.begin(), host.end(), host_char)) {
    return std::string(options_.tls ? "wss://" : "ws://") + options_.fallback_host + kSignalPath;
  }
  return std::string(scheme) + std::string(host) + kSignalPath;
}

http::Response DemoApi::token(const http::Request& req, TimeMs now_ms) {
  const auto fail = [](const std::string& field, const std::string& reason) {
    return no_store(http::json_response(400, {{"error", field + " " + reason}, {"field", field}}));
  };
  if (req.body.size() > kMaxBodyBytes)
    return fail("body", "must be at most " + std::to_string(kMaxBodyBytes) + " bytes");
  const json j = json::parse(req.body.begin(), req.body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("body", "must be a JSON object like {\"user\": \"alice\"}");
  for (const auto& [key, value] : j.items()) {
    if (key != "user") return fail(key.substr(0, 32), "is not a known field");
  }
  const auto user = j.find("user");
  if (user == j.end()) return fail("user", "is required");
  if (!user->is_string() ||
      !valid_user_id(user->get_ref<const std::string&>(), options_.max_user_id_bytes))
    return fail("user", "must be 1 to " + std::to_string(options_.max_user_id_bytes) +
                            " bytes of UTF-8 without control characters or ':'");
  const std::string& name = user->get_ref<const std::string&>();
  const uint32_t ttl = std::min(options_.token_ttl_s, signer_.max_ttl_s());
  const int64_t now_s = now_ms / 1000;
  std::string jwt;
  try {
    jwt = signer_.mint(name, "", ttl, now_s);
  } catch (const std::invalid_argument& e) {
    return fail("user", e.what());
  } catch (const std::exception& e) {
    log::error("demo.token_failed", {{"error", e.what()}}, "demo: minting a token failed: ",
               e.what());
    return no_store(http::json_error(500, "the token could not be signed"));
  }
  log::info("demo.token", {{"user", name}, {"client_ip", req.client_ip}},
            "demo: token for user '", name, "' handed to ", req.client_ip);
  return no_store(http::json_response(200, {{"token", jwt},
                                            {"url", signal_url(req.origin)},
                                            {"user", name},
                                            {"expires", now_s + ttl}}));
}

http::Response DemoApi::online() const {
  std::vector<std::string> users = online_ ? online_() : std::vector<std::string>{};
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  return no_store(http::json_response(200, {{"users", users}}));
}

std::optional<http::Response> DemoApi::throttle(http::FailureLimiter& limiter,
                                                const std::string& ip, TimeMs now_ms) {
  const std::lock_guard lock(limit_mu_);
  if (!limiter.allowed(ip, now_ms)) {
    http::Response r = http::json_error(429, "too many requests from this address; wait a moment");
    r.headers.emplace_back("Retry-After", std::to_string(limiter.retry_after_s(ip, now_ms)));
    return r;
  }
  limiter.record_failure(ip, now_ms);  // the limiter's unit: one request spends one token
  return std::nullopt;
}

}  // namespace callrelay::calls
