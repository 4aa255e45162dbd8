// TokenSigner: mint/verify round trips, and every refusal with its reason. Most tokens are built
// here by hand (base64url and HMAC-SHA256 from OpenSSL, RFC 7515 section 7.1), so the tests show
// that a token from any backend's JWT library verifies, and that what the header says about the
// algorithm is never trusted.
#include "calls/signaling/token.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace callrelay::calls {
namespace {

using nlohmann::json;

const std::string kSecret = "a-shared-signaling-secret-of-32+bytes";
constexpr int64_t kNow = 1'999'999'000;
constexpr uint32_t kMaxTtl = 3600;

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

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

/// header.payload.signature with the raw JSON texts given, signed by HMAC-SHA256 (or `md`).
std::string craft(std::string_view header, std::string_view payload, std::string_view key = kSecret,
                  const EVP_MD* md = EVP_sha256()) {
  const std::string input = base64url(header) + "." + base64url(payload);
  return input + "." + base64url(hmac(md, key, input));
}

std::string claims(const json& j) { return j.dump(); }

constexpr const char* kHs256 = R"({"alg":"HS256","typ":"JWT"})";

TokenSigner signer() { return TokenSigner(kSecret, kMaxTtl); }

TokenClaims accepted(const std::string& token, int64_t now = kNow) {
  auto r = signer().verify(token, now);
  if (const auto* e = std::get_if<TokenError>(&r)) {
    ADD_FAILURE() << token << " refused: " << e->reason;
    return {};
  }
  return std::get<TokenClaims>(r);
}

/// The token is refused with a reason that contains `says`.
void refused(const std::string& token, const std::string& says, int64_t now = kNow) {
  auto r = signer().verify(token, now);
  ASSERT_TRUE(std::holds_alternative<TokenError>(r)) << token << " verified";
  EXPECT_NE(std::get<TokenError>(r).reason.find(says), std::string::npos)
      << token << ": " << std::get<TokenError>(r).reason << " (expected: " << says << ")";
}

json alice(int64_t exp = kNow + 600) { return {{"sub", "alice"}, {"exp", exp}}; }

TEST(Token, SecretOfAtLeast32Bytes) {
  EXPECT_THROW(TokenSigner(std::string(31, 's'), kMaxTtl), std::invalid_argument);
  EXPECT_THROW(TokenSigner("", kMaxTtl), std::invalid_argument);
  EXPECT_NO_THROW(TokenSigner(std::string(32, 's'), kMaxTtl));
  EXPECT_THROW(TokenSigner(std::string(32, 's'), 0), std::invalid_argument);
}

TEST(Token, MintVerifyRoundTrip) {
  const TokenSigner s = signer();
  const std::string token = s.mint("alice", "acme", 300, kNow);
  auto c = accepted(token);
  EXPECT_EQ(c.user, "alice");
  EXPECT_EQ(c.tenant, "acme");
  EXPECT_EQ(c.expires, kNow + 300);

  c = accepted(s.mint("Zoë", "", kMaxTtl, kNow));
  EXPECT_EQ(c.user, "Zoë");
  EXPECT_EQ(c.tenant, "");
  EXPECT_EQ(c.expires, kNow + kMaxTtl);

  refused(token, "token expired", kNow + 300);  // valid until exp, not at it
  accepted(token, kNow + 299);
  const auto other = TokenSigner(std::string(32, 'o'), kMaxTtl).verify(token, kNow);
  ASSERT_TRUE(std::holds_alternative<TokenError>(other));
  EXPECT_EQ(std::get<TokenError>(other).reason, "bad signature");
}

TEST(Token, MintRefusesBadInput) {
  const TokenSigner s = signer();
  EXPECT_THROW(s.mint("", "", 60, kNow), std::invalid_argument);
  EXPECT_THROW(s.mint("a:b", "", 60, kNow), std::invalid_argument);
  EXPECT_THROW(s.mint(std::string(257, 'u'), "", 60, kNow), std::invalid_argument);
  EXPECT_THROW(s.mint("alice", "ac me", 60, kNow), std::invalid_argument);
  EXPECT_THROW(s.mint("alice", std::string(65, 't'), 60, kNow), std::invalid_argument);
  EXPECT_THROW(s.mint("alice", "", 0, kNow), std::invalid_argument);
  EXPECT_THROW(s.mint("alice", "", kMaxTtl + 1, kNow), std::invalid_argument);
  EXPECT_NO_THROW(s.mint(std::string(256, 'u'), std::string(64, 't'), 1, kNow));
}

TEST(Token, HandCraftedTokensVerify) {
  // Signed outside this code base (Python's hmac and base64) with kSecret.
  const std::string fixed =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiJhbGljZSIsInRlbmFudCI6ImFjbWUiLCJpYXQiOjE5OTk5OTkwMDAsImV4cCI6MjAwMDAwMDAwMH0."
      "Faxqe9uvnL9UeBQoRBcbIz0V5iEpQRqSNM2P2bxOIjM";
  EXPECT_EQ(craft(kHs256, R"({"sub":"alice","tenant":"acme","iat":1999999000,"exp":2000000000})"),
            fixed);
  auto c = accepted(fixed);
  EXPECT_EQ(c.user, "alice");
  EXPECT_EQ(c.tenant, "acme");
  EXPECT_EQ(c.expires, 2'000'000'000);

  c = accepted(craft(R"({"alg":"HS256"})", claims(alice())));  // typ is optional
  EXPECT_EQ(c.user, "alice");
  accepted(craft(R"({"typ":"JWT","kid":"k1","alg":"HS256"})", claims(alice())));
  json extra = alice();
  extra["aud"] = "app";  // claims this verifier does not use are ignored
  extra["iat"] = kNow;
  extra["nested"] = {{"a", {1, 2, 3}}};
  accepted(craft(kHs256, claims(extra)));
}

TEST(Token, AlgorithmNoneIsRefused) {
  const std::string payload = base64url(claims(alice()));
  refused("eyJhbGciOiJub25lIn0." + payload + ".", "unsupported algorithm 'none'");
  refused(base64url(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".",
          "unsupported algorithm 'none'");
  refused(craft(R"({"alg":"none"})", claims(alice())), "unsupported algorithm 'none'");
  refused(craft(R"({"alg":"NONE"})", claims(alice())), "unsupported algorithm 'NONE'");
  refused(craft(R"({"alg":"hs256"})", claims(alice())), "unsupported algorithm 'hs256'");
}

TEST(Token, OtherAlgorithmsAreRefused) {
  for (const char* alg : {"HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"}) {
    // Signed with the right key, by HMAC-SHA256: only the header's alg is wrong.
    refused(craft(json{{"alg", alg}, {"typ", "JWT"}}.dump(), claims(alice())),
            std::string("unsupported algorithm '") + alg + "'");
  }
  refused(craft(R"({"alg":"HS512","typ":"JWT"})", claims(alice()), kSecret, EVP_sha512()),
          "unsupported algorithm 'HS512'");
  refused(craft(R"({"alg":"HS384"})", claims(alice()), kSecret, EVP_sha384()),
          "unsupported algorithm 'HS384'");
  refused(craft(json{{"alg", std::string(100, 'X') + "\x01"}}.dump(), claims(alice())),
          "unsupported algorithm 'XXXXXXXX");
  refused(craft(R"({"typ":"JWT"})", claims(alice())), "no algorithm");
  refused(craft(R"({"alg":256})", claims(alice())), "no algorithm");
  refused(craft(R"({"alg":"HS256","crit":["exp"]})", claims(alice())), "crit");
  refused(craft(R"({"alg":"HS256","typ":"at+jwt"})", claims(alice())), "token type");
}

TEST(Token, BadSignature) {
  const std::string good = craft(kHs256, claims(alice()));
  accepted(good);
  refused(craft(kHs256, claims(alice()), std::string(32, 'w')), "bad signature");
  refused(craft(kHs256, claims(alice()), kSecret + "x"), "bad signature");
  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  refused(flipped, "bad signature");
  // The payload of another token under this one's signature.
  const std::string other = base64url(claims(json{{"sub", "mallory"}, {"exp", kNow + 600}}));
  const size_t a = good.find('.'), b = good.rfind('.');
  refused(good.substr(0, a + 1) + other + good.substr(b), "bad signature");
  refused(good.substr(0, b + 1) + "AAAA", "bad signature");
  refused(good.substr(0, b + 1) + good.substr(b + 1) + "AAAA", "bad signature");
}

TEST(Token, Malformed) {
  const std::string good = craft(kHs256, claims(alice()));
  const std::string h = base64url(kHs256), p = base64url(claims(alice()));
  for (const std::string& t : {std::string(""), std::string("garbage"), std::string("a.b"),
                               std::string(".."), std::string("..."), good + ".x", "." + p + ".sig",
                               h + "..sig", std::string("Bearer ") + good}) {
    refused(t, "malformed token");
  }
  refused("!!!." + p + ".sig", "malformed token: the header");
  refused(base64url("{\"alg\":\"HS256\"") + "." + p + ".sig", "malformed token: the header");
  refused(base64url("[\"HS256\"]") + "." + p + ".sig", "malformed token: the header");
  refused(h + "A." + p + ".sig", "malformed token: the header");  // 4n+1 characters
  refused(h + "=." + p + ".sig", "malformed token: the header");  // padding
  refused(h + "." + p + ".", "missing signature");
  refused(h + ".not json." + good.substr(good.rfind('.') + 1), "malformed token: the payload");
  refused(craft(kHs256, "[1,2]"), "malformed token: the payload");
  refused(craft(kHs256, "\"alice\""), "malformed token: the payload");
  refused(h + "." + p + ".si+g", "the signature is not base64url");
  std::string nul = good;
  nul[nul.size() / 2] = '\0';
  refused(nul, "malformed token");
}

TEST(Token, Expiry) {
  json c = alice();
  c.erase("exp");
  refused(craft(kHs256, claims(c)), "missing claim 'exp'");
  for (const json& exp : {json("2000000000"), json(2.0e9 + 0.5), json(nullptr), json(true)}) {
    c["exp"] = exp;
    refused(craft(kHs256, claims(c)), "claim 'exp' must be an integer");
  }
  refused(craft(kHs256, claims(alice(kNow))), "token expired");
  refused(craft(kHs256, claims(alice(kNow - 1))), "token expired");
  refused(craft(kHs256, claims(alice(0))), "token expired");
  refused(craft(kHs256, claims(alice(-5))), "token expired");
  EXPECT_EQ(accepted(craft(kHs256, claims(alice(kNow + 1)))).expires, kNow + 1);
  EXPECT_EQ(accepted(craft(kHs256, claims(alice(kNow + kMaxTtl)))).expires, kNow + kMaxTtl);
  refused(craft(kHs256, claims(alice(kNow + kMaxTtl + 1))), "too far ahead");
  refused(craft(kHs256, claims(alice(INT64_MAX))), "too far ahead");
}

TEST(Token, Subject) {
  json c = alice();
  c.erase("sub");
  refused(craft(kHs256, claims(c)), "missing claim 'sub'");
  for (const json& sub : {json(42), json(nullptr), json::array({"alice"}), json(false)}) {
    c["sub"] = sub;
    refused(craft(kHs256, claims(c)), "claim 'sub' must be a string");
  }
  for (const json& sub : {json(""), json("alice:admin"), json("al\nice"), json("al\x01ice"),
                          json(std::string(257, 'a'))}) {
    c["sub"] = sub;
    refused(craft(kHs256, claims(c)), "invalid claim 'sub'");
  }
  c["sub"] = std::string(256, 'a');
  EXPECT_EQ(accepted(craft(kHs256, claims(c))).user.size(), 256u);
}

TEST(Token, Tenant) {
  json c = alice();
  for (const json& tenant :
       {json(""), json("ac me"), json("acme/eu"), json("acmé"), json(std::string(65, 't'))}) {
    c["tenant"] = tenant;
    refused(craft(kHs256, claims(c)), "invalid claim 'tenant'");
  }
  for (const json& tenant : {json(7), json(nullptr), json::object()}) {
    c["tenant"] = tenant;
    refused(craft(kHs256, claims(c)), "claim 'tenant' must be a string");
  }
  c["tenant"] = "Acme-EU_1.prod";
  EXPECT_EQ(accepted(craft(kHs256, claims(c))).tenant, "Acme-EU_1.prod");
  EXPECT_TRUE(valid_tenant(std::string(64, 't')));
  EXPECT_FALSE(valid_tenant(""));
}

TEST(Token, AtMost4096Bytes) {
  json c = alice();
  c["pad"] = std::string(2900, 'p');
  const std::string fits = craft(kHs256, claims(c));
  ASSERT_LE(fits.size(), 4096u);
  accepted(fits);
  c["pad"] = std::string(3100, 'p');
  const std::string big = craft(kHs256, claims(c));  // well signed, but too long
  ASSERT_GT(big.size(), 4096u);
  refused(big, "token too long");
}

}  // namespace
}  // namespace callrelay::calls
