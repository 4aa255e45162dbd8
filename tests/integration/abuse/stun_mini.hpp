// The few STUN/TURN messages the abuse tests need, written without the project's codec so the
// tests stay an independent check of the server: Binding, Allocate (unauthenticated, signed
// with a long-term key, or with a bogus nonce), a request with an unknown comprehension-required
// attribute, and reading an answer's class, code, REALM, NONCE and XOR-RELAYED-ADDRESS.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace callrelay::integ::mini {

using Bytes = std::vector<uint8_t>;
inline constexpr uint32_t kCookie = 0x2112A442;
inline constexpr uint16_t kBinding = 0x0001, kAllocate = 0x0003;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

/// A request header with a random transaction id; attributes are appended with attr().
inline Bytes header(uint16_t method) {
  Bytes b;
  put16(b, method);  // class bits 00: request
  put16(b, 0);
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(kCookie >> (8 * i)));
  std::array<uint8_t, 12> tid{};
  RAND_bytes(tid.data(), static_cast<int>(tid.size()));
  b.insert(b.end(), tid.begin(), tid.end());
  return b;
}

/// Appends an attribute (padded to 4 bytes, RFC 8489 section 14) and fixes the length field.
inline void attr(Bytes& b, uint16_t type, const uint8_t* v, size_t n) {
  put16(b, type);
  put16(b, static_cast<uint16_t>(n));
  b.insert(b.end(), v, v + n);
  while (b.size() % 4 != 0) b.push_back(0);
  const auto len = static_cast<uint16_t>(b.size() - 20);
  b[2] = static_cast<uint8_t>(len >> 8);
  b[3] = static_cast<uint8_t>(len);
}
inline void attr(Bytes& b, uint16_t type, const std::string& s) {
  attr(b, type, reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline void requested_udp(Bytes& b) {
  const uint8_t v[4] = {17, 0, 0, 0};  // RFC 8656 section 18.7
  attr(b, 0x0019, v, 4);
}

/// RFC 8489 section 9.2.2: the MD5 long-term key.
inline std::array<uint8_t, 16> long_term_key(const std::string& user, const std::string& realm,
                                             const std::string& password) {
  const std::string in = user + ":" + realm + ":" + password;
  std::array<uint8_t, 16> k{};
  unsigned int n = 0;
  EVP_Digest(in.data(), in.size(), k.data(), &n, EVP_md5(), nullptr);
  return k;
}

/// Appends MESSAGE-INTEGRITY (RFC 8489 section 14.5): HMAC-SHA1 over the message with its
/// length already counting the attribute.
inline void sign(Bytes& b, const std::array<uint8_t, 16>& key) {
  const auto len = static_cast<uint16_t>(b.size() - 20 + 24);
  b[2] = static_cast<uint8_t>(len >> 8);
  b[3] = static_cast<uint8_t>(len);
  std::array<uint8_t, 20> mac{};
  unsigned int n = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), b.data(), b.size(), mac.data(), &n);
  attr(b, 0x0008, mac.data(), mac.size());
}

/// What an answer says.
struct Answer {
  uint16_t type = 0;
  uint16_t code = 0;  ///< 0 for success
  std::string realm, nonce;
  std::optional<std::string> relayed;  ///< XOR-RELAYED-ADDRESS as "a.b.c.d:port" (IPv4)
};

/// Reads an answer; nullopt when it is not STUN. Never trusts a length beyond the buffer.
inline std::optional<Answer> parse(const uint8_t* p, size_t n) {
  if (n < 20 || (p[0] & 0xC0) != 0) return std::nullopt;
  Answer a;
  a.type = get16(p);
  const size_t end = std::min<size_t>(n, 20 + get16(p + 2));
  for (size_t at = 20; at + 4 <= end;) {
    const uint16_t t = get16(p + at), len = get16(p + at + 2);
    const uint8_t* v = p + at + 4;
    if (at + 4 + len > end) break;
    if (t == 0x0009 && len >= 4) a.code = static_cast<uint16_t>((v[2] & 7) * 100 + v[3]);
    if (t == 0x0014) a.realm.assign(reinterpret_cast<const char*>(v), len);
    if (t == 0x0015) a.nonce.assign(reinterpret_cast<const char*>(v), len);
    if (t == 0x0016 && len == 8 && v[1] == 0x01) {
      const auto port = static_cast<uint16_t>(get16(v + 2) ^ (kCookie >> 16));
      std::string ip;
      for (int i = 0; i < 4; ++i) {
        ip += std::to_string(v[4 + i] ^ static_cast<uint8_t>(kCookie >> (24 - 8 * i)));
        if (i < 3) ip += ".";
      }
      a.relayed = ip + ":" + std::to_string(port);
    }
    at += 4 + ((len + 3u) & ~3u);
  }
  return a;
}

}  // namespace callrelay::integ::mini
