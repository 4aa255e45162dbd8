#include "bench/signal/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bench/signal/ws_codec.hpp"

namespace callrelay::bench {
namespace {

std::string encode(std::string_view text) {
  return ws::base64url(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace

std::string mint_hs256_token(std::string_view secret, std::string_view user, int64_t issued_at,
                             int64_t expires) {
  const nlohmann::json claims = {{"sub", user}, {"iat", issued_at}, {"exp", expires}};
  const std::string signing_input =
      encode(R"({"alg":"HS256","typ":"JWT"})") + "." + encode(claims.dump());
  std::array<uint8_t, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
           mac.data(), &size) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed: cannot sign signaling tokens");
  }
  return signing_input + "." + ws::base64url(std::span<const uint8_t>(mac.data(), size));
}

}  // namespace callrelay::bench
