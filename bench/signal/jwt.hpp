// Signaling tokens minted by the bench itself, as an app backend would (the README, section Calls,
// "Authentication"): a JWT (RFC 7519) signed with HS256 (RFC 7518 section 3.2) over the
// base64url header and claims (RFC 7515 section 7.1, compact serialization).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace callrelay::bench {

/// A compact JWS: {"alg":"HS256","typ":"JWT"}.{"sub":user,"iat":now,"exp":expires}.signature.
/// `user` is written as a JSON string (escaped). Throws std::runtime_error if HMAC fails.
std::string mint_hs256_token(std::string_view secret, std::string_view user, int64_t issued_at,
                             int64_t expires);

}  // namespace callrelay::bench
