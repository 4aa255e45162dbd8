// libFuzzer target: TokenSigner::verify with a fixed secret. Input starting with '{' is a JOSE
// header and a claims set (JSON, separated by a newline) that this target signs with the secret
// (HMAC-SHA256, RFC 7515 section 7.1), so the fuzzer reaches the header and claim checks past
// the signature; any other input is verified as a token as it is. Nothing may crash or leak; an
// accepted token's claims must be valid and must survive a mint/verify round trip.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "calls/core/messages.hpp"
#include "calls/signaling/token.hpp"

namespace {

using namespace callrelay::calls;

const std::string kSecret = "fuzz-signaling-secret-0123456789abcdef";
constexpr int64_t kNow = 1'999'999'000;
constexpr uint32_t kMaxTtl = 3600;

void require(bool condition) {
  if (!condition) std::abort();
}

std::string base64url(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3Fu]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3Fu]);
  return out;
}

/// header '\n' claims, signed with the secret.
std::string sign(std::string_view input) {
  const size_t nl = input.find('\n');
  const std::string_view header = input.substr(0, nl);
  const std::string_view payload = nl == std::string_view::npos ? "" : input.substr(nl + 1);
  const std::string signing_input = base64url(header) + "." + base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
       &len);
  return signing_input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

void check_claims(const TokenSigner& signer, const TokenClaims& c) {
  require(valid_user_id(c.user, 256));
  require(c.tenant.empty() || valid_tenant(c.tenant));
  require(c.expires > kNow && c.expires - kNow <= kMaxTtl);
  const std::string again =
      signer.mint(c.user, c.tenant, static_cast<uint32_t>(c.expires - kNow), kNow);
  const auto r = signer.verify(again, kNow);
  require(std::holds_alternative<TokenClaims>(r));
  const auto& d = std::get<TokenClaims>(r);
  require(d.user == c.user && d.tenant == c.tenant && d.expires == c.expires);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const TokenSigner signer(kSecret, kMaxTtl);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string token = input.starts_with('{') ? sign(input) : std::string(input);
  const auto r = signer.verify(token, kNow);
  if (const auto* e = std::get_if<TokenError>(&r)) {
    require(!e->reason.empty());
    // The 401 body; dump() throws (and so aborts here) on anything but UTF-8.
    require(!nlohmann::json{{"error", e->reason}}.dump().empty());
    return 0;
  }
  check_claims(signer, std::get<TokenClaims>(r));
  return 0;
}
