// POST /api/v1/signal/token: an app backend that holds an API key asks callrelay for a
// signaling token (a JWT for GET /api/v1/signal?token=...) instead of signing one itself
// (the README, section Calls, "Authentication: signaling tokens"). Thread-safe: the HTTP listener's
// threads call it at once (TokenSigner is immutable, ApiKeys thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>

#include "calls/signaling/token.hpp"
#include "http/api_keys.hpp"
#include "http/message.hpp"

namespace callrelay::calls {

class SignalTokenApi {
 public:
  static constexpr const char* kPath = "/api/v1/signal/token";
  /// Lifetime of a token whose request names no ttl.
  static constexpr uint32_t kDefaultTtlS = 300;

  /// `signer` and `keys` must outlive this object. `max_user_id_bytes`: calls.max_user_id_bytes.
  SignalTokenApi(const TokenSigner& signer, http::ApiKeys& keys, size_t max_user_id_bytes = 256);

  /// POST (parameters in the query, a form or a JSON body): API key required (401);
  /// `user` (required), `tenant` (optional), `ttl` (optional seconds, 1..signer.max_ttl_s(),
  /// default 300); a bad one is a 400 naming the field. Answers
  /// {"token", "expires" (Unix s), "user", "tenant" (null without one)}. OPTIONS is the CORS
  /// preflight; other methods get 405.
  http::Response handle(const http::Request& req, int64_t now_ms);

 private:
  const TokenSigner& signer_;
  http::ApiKeys& keys_;
  size_t max_user_id_bytes_;
};

}  // namespace callrelay::calls
