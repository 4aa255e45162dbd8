// MESSAGE-INTEGRITY, FINGERPRINT's CRC and the long-term key, on OpenSSL and zlib.
#include "relay/stun/integrity.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <memory>

#include "relay/stun/wire.hpp"

namespace callrelay::stun {
namespace {

constexpr size_t kSha1Size = 20;
/// Stand-in buffer for an empty key: OpenSSL reads a null key as "keep the previous key".
constexpr uint8_t kEmptyKey[1] = {0};

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

/// An HMAC-SHA1 context per thread, created on first use and re-keyed for every message, so
/// that checking a request costs no fetch and no allocation after the first.
EVP_MAC_CTX* thread_hmac_sha1() {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx = [] {
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> c;
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac == nullptr) return c;
    c.reset(EVP_MAC_CTX_new(mac));
    EVP_MAC_free(mac);  // the context holds its own reference
    char digest[] = "SHA1";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (c && EVP_MAC_CTX_set_params(c.get(), params) != 1) c.reset();
    return c;
  }();
  return ctx.get();
}

/// Computes HMAC-SHA1 of the concatenation of `parts` with `key`; false if OpenSSL failed.
bool hmac_sha1_parts(std::span<const uint8_t> key,
                     std::initializer_list<std::span<const uint8_t>> parts,
                     std::array<uint8_t, kSha1Size>& out) {
  EVP_MAC_CTX* ctx = thread_hmac_sha1();
  if (ctx == nullptr) return false;
  const uint8_t* k = key.empty() ? kEmptyKey : key.data();
  if (EVP_MAC_init(ctx, k, key.size(), nullptr) != 1) return false;
  for (const auto& part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx, part.data(), part.size()) != 1) return false;
  }
  size_t len = 0;
  return EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
}

}  // namespace

// RFC 8489 section 9.2.2: key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).
// The caller passes realm and password already prepared (TURN REST passwords are base64).
Sha1Key long_term_key(std::string_view username, std::string_view realm,
                      std::string_view password) {
  Sha1Key key{};
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) return key;
  const std::string_view parts[] = {username, ":", realm, ":", password};
  for (const auto part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return Sha1Key{};
  }
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), key.data(), &len) != 1 || len != key.size()) return Sha1Key{};
  return key;
}

// RFC 8489 section 14.5: the HMAC input is the message up to MESSAGE-INTEGRITY, with the
// header's length field set as if MESSAGE-INTEGRITY were the last attribute (so a FINGERPRINT
// after it is not counted).
Integrity check_integrity(const MessageView& msg, std::span<const uint8_t> key) {
  const auto mi = msg.integrity();
  if (!mi) return Integrity::kNotSet;
  if (mi->length != kSha1Size) return Integrity::kBad;
  const auto bytes = msg.bytes();
  const size_t covered = mi->offset - 4u;  // header and attributes before MESSAGE-INTEGRITY
  std::array<uint8_t, kHeaderSize> header{};
  std::memcpy(header.data(), bytes.data(), header.size());
  wire::write_u16(header.data() + 2, static_cast<uint16_t>(covered + 4 + kSha1Size - kHeaderSize));
  std::array<uint8_t, kSha1Size> want{};
  if (!hmac_sha1_parts(key, {header, bytes.subspan(kHeaderSize, covered - kHeaderSize)}, want)) {
    return Integrity::kBad;
  }
  const bool equal = CRYPTO_memcmp(want.data(), bytes.data() + mi->offset, want.size()) == 0;
  return equal ? Integrity::kOk : Integrity::kBad;
}

uint32_t crc32(std::span<const uint8_t> data) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (!data.empty()) {
    // zlib takes a uInt length; feed it in chunks so any span size is handled.
    const size_t n = std::min<size_t>(data.size(), 1u << 30);
    crc = ::crc32(crc, data.data(), static_cast<uInt>(n));
    data = data.subspan(n);
  }
  return static_cast<uint32_t>(crc);
}

std::array<uint8_t, 20> hmac_sha1(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  std::array<uint8_t, kSha1Size> out{};
  if (!hmac_sha1_parts(key, {data}, out)) out.fill(0);
  return out;
}

std::string base64(std::span<const uint8_t> data) {
  // EVP_EncodeBlock takes an int length and writes 4 bytes per 3 input bytes plus a NUL.
  if (data.size() > (1u << 30)) return {};
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                static_cast<int>(data.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace callrelay::stun
