// Signaling tokens: HS256 JWTs (RFC 7519; JWS compact serialization, RFC 7515 section 7.1).
// libjwt signs and checks the signature. Before it sees a token, the header is read here, so
// that "none" and every other algorithm are refused by name whatever libjwt would do with them
// (libjwt 1.10 accepts unsigned tokens when it is given no key), and so that a malformed token
// is told apart from a bad signature. The claims are checked after the signature.
#include "calls/signaling/token.hpp"

#include <jwt.h>

#include <array>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "calls/core/base64url.hpp"
#include "calls/core/messages.hpp"

namespace callrelay::calls {

namespace {

using nlohmann::json;

constexpr size_t kMaxTokenBytes = 4096;
constexpr size_t kMinSecretBytes = 32;  ///< RFC 7518 section 3.2: a key as long as the hash
constexpr size_t kMaxUserIdBytes = 256;
constexpr size_t kMaxTenantBytes = 64;
constexpr size_t kMaxEchoBytes = 32;  ///< of a header value quoted in a reason

struct JwtDeleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;
struct MallocDeleter {
  void operator()(char* p) const { std::free(p); }
};

TokenError error(std::string reason) { return TokenError{std::move(reason)}; }

/// A header value made safe to quote in a reason: printable ASCII, at most kMaxEchoBytes.
std::string echo(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, kMaxEchoBytes)) out.push_back(c >= 0x20 && c <= 0x7E ? c : '?');
  if (s.size() > kMaxEchoBytes) out += "...";
  return out;
}

/// One base64url part of the token holding a JSON object (RFC 7515 section 7.1), or nullopt.
std::optional<json> decode_object(std::string_view part) {
  const auto text = base64url_decode(part);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

/// The JOSE header must ask for HS256 and nothing this verifier does not understand.
std::optional<TokenError> check_header(std::string_view part) {
  const auto header = decode_object(part);
  if (!header) return error("malformed token: the header is not a base64url JSON object");
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) {
    return error("malformed token: the header has no algorithm (alg)");
  }
  const auto& name = alg->get_ref<const std::string&>();
  if (name != "HS256") return error("unsupported algorithm '" + echo(name) + "'");
  // RFC 7515 section 4.1.11: extensions marked critical must be understood; none are here.
  if (header->contains("crit")) return error("unsupported critical header parameters (crit)");
  const auto typ = header->find("typ");
  if (typ != header->end()) {
    const bool jwt = typ->is_string() && (typ->get_ref<const std::string&>() == "JWT" ||
                                          typ->get_ref<const std::string&>() == "jwt");
    if (!jwt) return error("unsupported token type (typ) " + echo(typ->dump()));
  }
  return std::nullopt;
}

/// The three parts of a compact JWS; nullopt unless there are exactly three.
std::optional<std::array<std::string_view, 3>> split(std::string_view token) {
  const size_t a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return std::array{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}

/// The claim `name` as libjwt decoded it (so that type checks and values come from the one
/// parse the signature covered), or nullopt when the token has no such claim.
std::optional<json> claim(jwt_t* jwt, const char* name) {
  const std::unique_ptr<char, MallocDeleter> text(jwt_get_grants_json(jwt, name));
  if (!text) return std::nullopt;
  json j = json::parse(text.get(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

/// The claims of a token whose signature holds (RFC 7519 section 4.1): exp within
/// (now, now + max_ttl], sub a user id, tenant (optional) a tenant.
std::variant<TokenClaims, TokenError> read_claims(jwt_t* jwt, int64_t now_s, uint32_t max_ttl_s) {
  const auto exp_claim = claim(jwt, "exp");
  if (!exp_claim) return error("missing claim 'exp'");
  if (!exp_claim->is_number_integer()) {
    return error("claim 'exp' must be an integer (Unix seconds)");
  }
  if (exp_claim->is_number_unsigned() && exp_claim->get<uint64_t>() > INT64_MAX) {
    return error("token expires too far ahead");
  }
  const auto exp = exp_claim->get<int64_t>();
  if (exp <= now_s) return error("token expired");
  // exp > now_s: the unsigned difference is exact.
  if (static_cast<uint64_t>(exp) - static_cast<uint64_t>(now_s) > max_ttl_s) {
    return error("token expires too far ahead (at most " + std::to_string(max_ttl_s) +
                 " s from now)");
  }
  const auto sub = claim(jwt, "sub");
  if (!sub) return error("missing claim 'sub'");
  if (!sub->is_string()) return error("claim 'sub' must be a string");
  if (!valid_user_id(sub->get_ref<const std::string&>(), kMaxUserIdBytes)) {
    return error("invalid claim 'sub': 1..256 bytes of UTF-8 without control characters or ':'");
  }
  TokenClaims claims{sub->get<std::string>(), "", exp};
  const auto tenant = claim(jwt, "tenant");
  if (!tenant) return claims;
  if (!tenant->is_string()) return error("claim 'tenant' must be a string");
  if (!valid_tenant(tenant->get_ref<const std::string&>())) {
    return error("invalid claim 'tenant': 1..64 characters of A-Z a-z 0-9 . _ -");
  }
  claims.tenant = tenant->get<std::string>();
  return claims;
}

}  // namespace

TokenSigner::TokenSigner(std::string secret, uint32_t max_ttl_s)
    : secret_(std::move(secret)), max_ttl_s_(max_ttl_s) {
  if (secret_.size() < kMinSecretBytes) {
    throw std::invalid_argument("calls.token_secret: the signaling secret must be at least " +
                                std::to_string(kMinSecretBytes) + " bytes");
  }
  if (secret_.size() > static_cast<size_t>(INT_MAX)) {
    throw std::invalid_argument("calls.token_secret: the signaling secret is too long");
  }
  if (max_ttl_s_ == 0) {
    throw std::invalid_argument("calls.max_token_ttl_s: must be at least 1 second");
  }
}

std::string TokenSigner::mint(std::string_view user, std::string_view tenant, uint32_t ttl_s,
                              int64_t now_s) const {
  if (!valid_user_id(user, kMaxUserIdBytes)) {
    throw std::invalid_argument("user: 1..256 bytes of UTF-8 without control characters or ':'");
  }
  if (!tenant.empty() && !valid_tenant(tenant)) {
    throw std::invalid_argument("tenant must be 1..64 characters of A-Z a-z 0-9 . _ -");
  }
  if (ttl_s == 0 || ttl_s > max_ttl_s_) {
    throw std::invalid_argument("ttl must be 1.." + std::to_string(max_ttl_s_) + " seconds");
  }
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0 || raw == nullptr) throw std::bad_alloc();
  const JwtPtr jwt(raw);
  const auto key = reinterpret_cast<const unsigned char*>(secret_.data());
  const bool built =
      jwt_add_grant(jwt.get(), "sub", std::string(user).c_str()) == 0 &&
      (tenant.empty() || jwt_add_grant(jwt.get(), "tenant", std::string(tenant).c_str()) == 0) &&
      jwt_add_grant_int(jwt.get(), "iat", static_cast<long>(now_s)) == 0 &&
      jwt_add_grant_int(jwt.get(), "exp", static_cast<long>(now_s + ttl_s)) == 0 &&
      jwt_set_alg(jwt.get(), JWT_ALG_HS256, key, static_cast<int>(secret_.size())) == 0;
  if (!built) throw std::runtime_error("libjwt could not build the token");
  const std::unique_ptr<char, MallocDeleter> token(jwt_encode_str(jwt.get()));
  if (!token) throw std::runtime_error("libjwt could not sign the token");
  return std::string(token.get());
}

std::variant<TokenClaims, TokenError> TokenSigner::verify(std::string_view token,
                                                          int64_t now_s) const {
  if (token.size() > kMaxTokenBytes) {
    return error("token too long (at most " + std::to_string(kMaxTokenBytes) + " bytes)");
  }
  const auto parts = split(token);
  if (!parts || (*parts)[0].empty() || (*parts)[1].empty()) {
    return error("malformed token: expected three base64url parts separated by '.'");
  }
  if (auto e = check_header((*parts)[0])) return *e;
  if ((*parts)[2].empty()) return error("missing signature");
  if (!decode_object((*parts)[1])) {
    return error("malformed token: the payload is not a base64url JSON object");
  }
  if (!base64url_decode((*parts)[2])) {
    return error("malformed token: the signature is not base64url");
  }

  // With the key given, libjwt checks the HMAC (RFC 7515 section 5.2); the algorithm is
  // checked once more on what it decoded.
  jwt_t* raw = nullptr;
  const std::string text(token);
  const int rc =
      jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                 static_cast<int>(secret_.size()));
  const JwtPtr jwt(raw);
  if (rc != 0 || !jwt) return error("bad signature");
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) return error("unsupported algorithm");

  return read_claims(jwt.get(), now_s, max_ttl_s_);
}

bool valid_tenant(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > kMaxTenantBytes) return false;
  for (const char c : tenant) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace callrelay::calls
