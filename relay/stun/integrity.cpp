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
constexpr size_t kSha256Size = 32;
/// RFC 8489 section 14.6: MESSAGE-INTEGRITY-SHA256 may be truncated to no fewer than 16 bytes.
constexpr size_t kMinSha256Size = 16;
/// Stand-in buffer for an empty key: OpenSSL reads a null key as "keep the previous key".
constexpr uint8_t kEmptyKey[1] = {0};

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

/// Creates an HMAC context for `digest` ("SHA1", "SHA256"); null when OpenSSL cannot.
std::unique_ptr<EVP_MAC_CTX, MacCtxFree> new_hmac(const char* digest) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> c;
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return c;
  c.reset(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context holds its own reference
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end()};
  if (c && EVP_MAC_CTX_set_params(c.get(), params) != 1) c.reset();
  return c;
}

/// An HMAC context per thread and digest, created on first use and re-keyed for every message,
/// so that checking a request costs no fetch and no allocation after the first.
EVP_MAC_CTX* thread_hmac(bool use_sha256) {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxFree> sha1 = new_hmac("SHA1");
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxFree> sha256 = new_hmac("SHA256");
  return use_sha256 ? sha256.get() : sha1.get();
}

/// A context keyed once and re-initialised with the same key (a null key to EVP_MAC_init): a new
/// key costs OpenSSL two digest blocks and the set-up and wiping of three digest contexts, more
/// than the HMAC of a short message itself. The keys repeat: the nonce key on every
/// authenticated request, and a user's long-term key for the check of a request and then for
/// its signed answer.
struct KeyedHmac {
  std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx;
  std::array<uint8_t, 64> key{};
  size_t size = 0;
  bool keyed = false;
};
constexpr size_t kKeyedHmacs = 4;  // per digest and thread, replaced in turn
constexpr size_t kMaxKeyedKey = 64;

/// A context for `key` that EVP_MAC_init has keyed (for SHA-1 or SHA-256); null if OpenSSL
/// failed or the key is longer than the slots hold (the caller keys the shared context then).
EVP_MAC_CTX* keyed_hmac(bool use_sha256, std::span<const uint8_t> key) {
  if (key.size() > kMaxKeyedKey) return nullptr;
  thread_local std::array<std::array<KeyedHmac, kKeyedHmacs>, 2> slots;
  thread_local std::array<size_t, 2> next{};
  auto& mine = slots[use_sha256 ? 1 : 0];
  for (auto& s : mine) {
    // Constant time, as the keys are secrets.
    if (s.keyed && s.size == key.size() &&
        (key.empty() || CRYPTO_memcmp(s.key.data(), key.data(), key.size()) == 0)) {
      return EVP_MAC_init(s.ctx.get(), nullptr, 0, nullptr) == 1 ? s.ctx.get() : nullptr;
    }
  }
  KeyedHmac& s = mine[next[use_sha256 ? 1 : 0]++ % kKeyedHmacs];
  s.keyed = false;
  if (!s.ctx) s.ctx = new_hmac(use_sha256 ? "SHA256" : "SHA1");
  if (!s.ctx) return nullptr;
  const uint8_t* k = key.empty() ? kEmptyKey : key.data();
  if (EVP_MAC_init(s.ctx.get(), k, key.size(), nullptr) != 1) return nullptr;
  std::copy(key.begin(), key.end(), s.key.begin());
  s.size = key.size();
  s.keyed = true;
  return s.ctx.get();
}

/// Computes the HMAC (SHA-1: 20 bytes, SHA-256: 32 bytes, out.size()) of the concatenation of
/// `parts` with `key`; false if OpenSSL failed.
bool hmac_parts(bool use_sha256, std::span<const uint8_t> key,
                std::initializer_list<std::span<const uint8_t>> parts, std::span<uint8_t> out) {
  EVP_MAC_CTX* ctx = keyed_hmac(use_sha256, key);
  if (ctx == nullptr) {
    ctx = thread_hmac(use_sha256);
    if (ctx == nullptr) return false;
    const uint8_t* k = key.empty() ? kEmptyKey : key.data();
    if (EVP_MAC_init(ctx, k, key.size(), nullptr) != 1) return false;
  }
  for (const auto& part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx, part.data(), part.size()) != 1) return false;
  }
  size_t len = 0;
  return EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
}

struct MdFree {
  void operator()(EVP_MD* m) const { EVP_MD_free(m); }
};

/// The digest `name` ("MD5", "SHA256") fetched once per thread: EVP_md5() and EVP_sha256() are
/// legacy handles that OpenSSL 3 fetches again (a locked lookup by name) on every init.
const EVP_MD* thread_md(bool use_sha256) {
  thread_local std::unique_ptr<EVP_MD, MdFree> md5(EVP_MD_fetch(nullptr, "MD5", nullptr));
  thread_local std::unique_ptr<EVP_MD, MdFree> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  const EVP_MD* md = use_sha256 ? sha256.get() : md5.get();
  if (md != nullptr) return md;
  return use_sha256 ? EVP_sha256() : EVP_md5();  // the fetch failed: let OpenSSL try its way
}

/// Digest (MD5: N = 16, SHA-256: N = 32) of the concatenation of `parts`, with a context kept
/// per thread; all zero if OpenSSL failed.
template <size_t N>
std::array<uint8_t, N> digest_of(std::initializer_list<std::string_view> parts) {
  constexpr bool kSha256 = N == 32;
  static_assert(N == 16 || N == 32);
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::array<uint8_t, N> out{};
  if (!ctx || EVP_DigestInit_ex(ctx.get(), thread_md(kSha256), nullptr) != 1) return out;
  for (const auto part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return {};
  }
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != out.size()) return {};
  return out;
}

/// RFC 8489 sections 14.5 and 14.6: the HMAC covers the message up to the integrity attribute
/// `mi`, with the header's length field set as if `mi` were the last attribute (so what follows
/// it, MESSAGE-INTEGRITY-SHA256 or FINGERPRINT, is not counted). `want` gets the full HMAC.
bool integrity_mac(const MessageView& msg, const Attribute& mi, std::span<const uint8_t> key,
                   bool use_sha256, std::span<uint8_t> want) {
  const auto bytes = msg.bytes();
  const size_t covered = mi.offset - 4u;  // header and attributes before the integrity attribute
  std::array<uint8_t, kHeaderSize> header{};
  std::memcpy(header.data(), bytes.data(), header.size());
  wire::write_u16(header.data() + 2, static_cast<uint16_t>(covered + 4 + mi.length - kHeaderSize));
  return hmac_parts(use_sha256, key, {header, bytes.subspan(kHeaderSize, covered - kHeaderSize)},
                    want);
}

}  // namespace

// RFC 8489 section 9.2.2: key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).
// The caller passes realm and password already prepared (TURN REST passwords are base64).
Sha1Key long_term_key(std::string_view username, std::string_view realm,
                      std::string_view password) {
  return digest_of<16>({username, ":", realm, ":", password});
}

// RFC 8489 section 9.2.2: with PASSWORD-ALGORITHM SHA-256, the same input hashed with SHA-256.
Sha256Key long_term_key_sha256(std::string_view username, std::string_view realm,
                               std::string_view password) {
  return digest_of<32>({username, ":", realm, ":", password});
}

// RFC 8489 section 14.4: userhash = SHA-256(OpaqueString(username) ":" OpaqueString(realm)).
Sha256Key userhash(std::string_view username, std::string_view realm) {
  return digest_of<32>({username, ":", realm});
}

// RFC 8489 section 14.5: MESSAGE-INTEGRITY is exactly 20 bytes of HMAC-SHA1.
Integrity check_integrity(const MessageView& msg, std::span<const uint8_t> key) {
  const auto mi = msg.integrity();
  if (!mi) return Integrity::kNotSet;
  if (mi->length != kSha1Size) return Integrity::kBad;
  std::array<uint8_t, kSha1Size> want{};
  if (!integrity_mac(msg, *mi, key, false, want)) return Integrity::kBad;
  const bool equal = CRYPTO_memcmp(want.data(), msg.bytes().data() + mi->offset, want.size()) == 0;
  return equal ? Integrity::kOk : Integrity::kBad;
}

// RFC 8489 section 14.6: HMAC-SHA256, "at least 16 [bytes] ... a multiple of 4", at most 32;
// a truncated value is compared with the leading bytes of the HMAC.
Integrity check_integrity_sha256(const MessageView& msg, std::span<const uint8_t> key) {
  const auto mi = msg.find(attr::kMessageIntegritySha256);
  if (!mi) return Integrity::kNotSet;
  if (mi->length < kMinSha256Size || mi->length > kSha256Size || mi->length % 4 != 0) {
    return Integrity::kBad;
  }
  std::array<uint8_t, kSha256Size> want{};
  if (!integrity_mac(msg, *mi, key, true, want)) return Integrity::kBad;
  const bool equal = CRYPTO_memcmp(want.data(), msg.bytes().data() + mi->offset, mi->length) == 0;
  return equal ? Integrity::kOk : Integrity::kBad;
}

const char* to_string(PasswordAlgorithm a) {
  switch (a) {
    case PasswordAlgorithm::kMd5:
      return "md5";
    case PasswordAlgorithm::kSha256:
      return "sha256";
  }
  return "unknown";
}

// RFC 8489 section 14.12: algorithm (16 bits), parameters length (16 bits), parameters. MD5 and
// SHA-256 have no parameters (section 18.5), so anything but a 4-byte value is not valid.
PasswordAlgorithmAttr read_password_algorithm(const MessageView& msg) {
  PasswordAlgorithmAttr out;
  const auto a = msg.find(attr::kPasswordAlgorithm);
  if (!a) return out;
  out.present = true;
  const auto v = msg.value(*a);
  if (v.size() < kPasswordAlgorithmEntrySize) return out;
  out.algorithm = wire::read_u16(v.data());
  const uint16_t params = wire::read_u16(v.data() + 2);
  const bool known = out.algorithm == static_cast<uint16_t>(PasswordAlgorithm::kMd5) ||
                     out.algorithm == static_cast<uint16_t>(PasswordAlgorithm::kSha256);
  out.valid = known && params == 0 && v.size() == kPasswordAlgorithmEntrySize;
  return out;
}

// RFC 8489 section 14.11: one entry per algorithm, each algorithm, parameters length, parameters.
size_t encode_password_algorithms(std::span<const PasswordAlgorithm> algorithms,
                                  std::span<uint8_t> out) {
  if (out.size() / kPasswordAlgorithmEntrySize < algorithms.size()) return 0;
  size_t at = 0;
  for (const PasswordAlgorithm a : algorithms) {
    wire::write_u16(out.data() + at, static_cast<uint16_t>(a));
    wire::write_u16(out.data() + at + 2, 0);
    at += kPasswordAlgorithmEntrySize;
  }
  return at;
}

SigningKey SigningKey::make(std::span<const uint8_t> key, bool use_sha256) {
  SigningKey k;
  const size_t n = std::min(key.size(), k.bytes.size());
  std::copy_n(key.begin(), n, k.bytes.begin());
  k.size = static_cast<uint8_t>(n);
  k.sha256 = use_sha256;
  return k;
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
  if (!hmac_parts(false, key, {data}, out)) out.fill(0);
  return out;
}

std::array<uint8_t, 32> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  std::array<uint8_t, kSha256Size> out{};
  if (!hmac_parts(true, key, {data}, out)) out.fill(0);
  return out;
}

std::array<uint8_t, 32> sha256(std::span<const uint8_t> data) {
  return digest_of<32>({std::string_view(reinterpret_cast<const char*>(data.data()),
                                                       data.size())});
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
