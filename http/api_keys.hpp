// API keys of the `api:` section, shared by every /api/v1 endpoint (TURN credentials, signaling
// tokens, call records): which key a request presents, the per-address limit on failed
// attempts, and CORS for the browser origins a key allows. Thread-safe: the HTTP listener runs
// handlers on several threads at once, and a configuration reload replaces the keys meanwhile.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "http/codec.hpp"
#include "http/http_config.hpp"
#include "http/message.hpp"
#include "http/rate_limiter.hpp"
#include "relay/core/types.hpp"

namespace callrelay::http {

class ApiKeys {
 public:
  /// `keys`: the configured keys (none: every request is refused with 401). `limits`: the
  /// per-address budget of failed attempts, one budget across all endpoints.
  explicit ApiKeys(std::vector<ApiKey> keys,
                   FailureLimiter::Options limits = FailureLimiter::Options{});
  ApiKeys(const ApiKeys&) = delete;
  ApiKeys& operator=(const ApiKeys&) = delete;

  /// Replaces the keys (configuration reload): requests checked after it returns match the new
  /// ones only. The failure budgets stay. A key pointer handed out before stays valid for the
  /// life of this object, as every distinct key definition is kept (a key set changes rarely;
  /// setting the same keys again adds nothing).
  void reconfigure(const std::vector<ApiKey>& keys);

  /// Checks the key a request presents: "Authorization: Bearer <key>", else the key= or api=
  /// parameter in `params`. The matching key, or the response to send: 429 (with Retry-After)
  /// while the address is over its failure budget, else 401 (with WWW-Authenticate) for a
  /// missing or wrong key, which also spends the budget. Responses carry CORS headers for an
  /// origin some key allows, so that a browser app can read the error.
  std::variant<const ApiKey*, Response> authorize(const Request& req, const Params& params,
                                                  core::TimeMs now);

  /// The key whose value is `presented`, or nullptr. Compares SHA-256 digests with
  /// CRYPTO_memcmp over every key: the time does not depend on how much of a key was guessed
  /// nor on which key matched.
  const ApiKey* match(std::string_view presented) const;

  /// `r` with CORS headers when the request's Origin is allowed: by `key` when one matched,
  /// else by any key (an error before the key was known).
  Response with_cors(Response r, const Request& req, const ApiKey* key) const;

  /// An OPTIONS preflight: 204 with the CORS headers for an origin some key allows (methods
  /// `methods`, headers Authorization and Content-Type), else 403.
  Response preflight(const Request& req, std::string_view methods) const;

  bool origin_allowed_by_any(const std::string& origin) const;
  /// The keys now in force (a copy).
  std::vector<ApiKey> keys() const;

 private:
  /// Seconds until the address may try again when it is over its failure budget, else
  /// nullopt; with `spend_one`, an attempt within the budget is recorded as a failure.
  std::optional<uint32_t> over_budget(const Request& req, core::TimeMs now, bool spend_one);
  Response too_many_failures(const Request& req, uint32_t retry_after_s) const;

  /// The stored definition equal to `key` (added when new). Under keys_mutex_ (exclusive).
  const ApiKey* intern(const ApiKey& key);

  mutable std::shared_mutex keys_mutex_;  ///< guards the three members below
  std::deque<ApiKey> defined_;  ///< every key definition ever in force (stable addresses)
  std::vector<const ApiKey*> keys_;               ///< the keys in force, into defined_
  std::vector<std::array<uint8_t, 32>> digests_;  ///< SHA-256 of each key, same order
  std::mutex limiter_mutex_;
  FailureLimiter limiter_;  ///< guarded by limiter_mutex_
};

}  // namespace callrelay::http
