#include "http/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>

#include "base/log.hpp"

namespace callrelay::http {
namespace {

constexpr uint32_t kPreflightMaxAgeS = 600;
constexpr size_t kBearerPrefixBytes = 7;  // "bearer "

std::array<uint8_t, 32> sha256(std::string_view text) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    const char a = text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] + 32) : text[i];
    if (a != prefix[i]) return false;
  }
  return true;
}

/// The key presented: "Authorization: Bearer <key>" (RFC 6750 section 2.1), else the key= or
/// api= parameter.
std::optional<std::string> presented_key(const Request& req, const Params& params) {
  if (iequals_prefix(req.authorization, "bearer ")) {
    std::string_view k = std::string_view(req.authorization).substr(kBearerPrefixBytes);
    while (!k.empty() && k.front() == ' ') k.remove_prefix(1);
    while (!k.empty() && k.back() == ' ') k.remove_suffix(1);
    if (!k.empty()) return std::string(k);
  }
  if (auto k = find_param(params, "key"); k && !k->empty()) return k;
  if (auto k = find_param(params, "api"); k && !k->empty()) return k;
  return std::nullopt;
}

void add_cors(Response& r, const std::string& origin, const std::vector<std::string>& allowed) {
  if (origin.empty() || std::find(allowed.begin(), allowed.end(), origin) == allowed.end()) return;
  r.headers.emplace_back("Access-Control-Allow-Origin", origin);
  r.headers.emplace_back("Vary", "Origin");
}

bool same_key(const ApiKey& a, const ApiKey& b) {
  return a.name == b.name && a.key == b.key && a.max_ttl_s == b.max_ttl_s &&
         a.allowed_origins == b.allowed_origins && a.admin == b.admin;
}

}  // namespace

ApiKeys::ApiKeys(std::vector<ApiKey> keys, FailureLimiter::Options limits) : limiter_(limits) {
  reconfigure(keys);
}

const ApiKey* ApiKeys::intern(const ApiKey& key) {
  for (const ApiKey& k : defined_) {
    if (same_key(k, key)) return &k;
  }
  defined_.push_back(key);
  return &defined_.back();
}

void ApiKeys::reconfigure(const std::vector<ApiKey>& keys) {
  std::vector<std::array<uint8_t, 32>> digests;
  for (const ApiKey& k : keys) digests.push_back(sha256(k.key));
  const std::unique_lock lock(keys_mutex_);
  keys_.clear();
  for (const ApiKey& k : keys) keys_.push_back(intern(k));
  digests_ = std::move(digests);
}

std::vector<ApiKey> ApiKeys::keys() const {
  const std::shared_lock lock(keys_mutex_);
  std::vector<ApiKey> out;
  for (const ApiKey* k : keys_) out.push_back(*k);
  return out;
}

const ApiKey* ApiKeys::match(std::string_view presented) const {
  const auto digest = sha256(presented);
  const std::shared_lock lock(keys_mutex_);
  const ApiKey* found = nullptr;
  for (size_t i = 0; i < digests_.size(); ++i) {
    if (CRYPTO_memcmp(digest.data(), digests_[i].data(), digest.size()) == 0) found = keys_[i];
  }
  return found;
}

bool ApiKeys::origin_allowed_by_any(const std::string& origin) const {
  const std::shared_lock lock(keys_mutex_);
  return std::any_of(keys_.begin(), keys_.end(), [&origin](const ApiKey* k) {
    return std::find(k->allowed_origins.begin(), k->allowed_origins.end(), origin) !=
           k->allowed_origins.end();
  });
}

Response ApiKeys::with_cors(Response r, const Request& req, const ApiKey* key) const {
  if (req.origin.empty()) return r;
  if (key != nullptr) {
    add_cors(r, req.origin, key->allowed_origins);
  } else if (origin_allowed_by_any(req.origin)) {
    add_cors(r, req.origin, {req.origin});
  }
  return r;
}

Response ApiKeys::preflight(const Request& req, std::string_view methods) const {
  if (req.origin.empty() || !origin_allowed_by_any(req.origin))
    return json_error(403, "origin not allowed: add it to api.keys[].allowed_origins");
  Response r;
  r.status = 204;
  r.content_type.clear();
  add_cors(r, req.origin, {req.origin});
  r.headers.emplace_back("Access-Control-Allow-Methods", std::string(methods));
  r.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
  r.headers.emplace_back("Access-Control-Max-Age", std::to_string(kPreflightMaxAgeS));
  return r;
}

Response ApiKeys::too_many_failures(const Request& req, uint32_t retry_after_s) const {
  Response r = json_error(429, "too many failed API key attempts from this address; retry later");
  r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return with_cors(std::move(r), req, nullptr);
}

std::optional<uint32_t> ApiKeys::over_budget(const Request& req, core::TimeMs now, bool spend_one) {
  const std::lock_guard lock(limiter_mutex_);
  if (!limiter_.allowed(req.client_ip, now)) return limiter_.retry_after_s(req.client_ip, now);
  if (spend_one) limiter_.record_failure(req.client_ip, now);
  return std::nullopt;
}

std::variant<const ApiKey*, Response> ApiKeys::authorize(const Request& req, const Params& params,
                                                         core::TimeMs now) {
  if (const auto retry_s = over_budget(req, now, false)) return too_many_failures(req, *retry_s);
  const auto presented = presented_key(req, params);
  const ApiKey* key = presented ? match(*presented) : nullptr;
  if (key != nullptr) return key;
  // Checked again with the failure recorded under one lock: another thread may have spent
  // the last token since the first check.
  if (const auto retry_s = over_budget(req, now, true)) return too_many_failures(req, *retry_s);
  log::info("auth.api_key_rejected",
            {{"client_ip", req.client_ip}, {"reason", presented ? "invalid_key" : "no_key"}},
            "http: rejected API request from ", req.client_ip,
            presented ? ": invalid API key" : ": no API key");
  Response r = json_error(401, presented ? "invalid API key"
                                         : "missing API key: send 'Authorization: Bearer <key>' "
                                           "or the key= query parameter");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return with_cors(std::move(r), req, nullptr);
}

}  // namespace callrelay::http
