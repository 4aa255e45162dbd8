// Signaling tokens: JWTs signed with HS256 (RFC 7519, RFC 7518 section 3.2) by libjwt. An app
// backend mints them with the shared secret (or asks POST /api/v1/signal/token); the signaling
// endpoint verifies them on the WebSocket upgrade. Only HS256 is accepted: "none" and every
// other algorithm are refused, whatever the header says.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "calls/core/types.hpp"

namespace callrelay::calls {

struct TokenClaims {
  std::string user;    ///< sub
  std::string tenant;  ///< tenant ("" when absent)
  int64_t expires = 0; ///< exp, Unix seconds
};

struct TokenError {
  std::string reason;  ///< "token expired", "bad signature", "unsupported algorithm 'none'", ...
};

class TokenSigner {
 public:
  /// `secret`: the HS256 key (at least 32 bytes). `max_ttl_s`: tokens whose exp lies further
  /// ahead than this (from `now`) are refused, as are minting requests for longer.
  TokenSigner(std::string secret, uint32_t max_ttl_s);

  /// A token for `user` (and `tenant` when not empty) valid `ttl_s` seconds from `now_s`.
  /// Throws std::invalid_argument for a bad user id, tenant or ttl.
  std::string mint(std::string_view user, std::string_view tenant, uint32_t ttl_s,
                   int64_t now_s) const;
  /// Verifies signature, algorithm, exp (> now_s, <= now_s + max_ttl_s), sub and tenant shapes.
  std::variant<TokenClaims, TokenError> verify(std::string_view token, int64_t now_s) const;

  uint32_t max_ttl_s() const { return max_ttl_s_; }

 private:
  std::string secret_;
  uint32_t max_ttl_s_;
};

/// Whether `tenant` is a valid tenant (1..64 of [A-Za-z0-9._-]).
bool valid_tenant(std::string_view tenant);

}  // namespace callrelay::calls
