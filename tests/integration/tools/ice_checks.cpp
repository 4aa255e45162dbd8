// ICE-style Binding messages for the media quality tests (see the header).
#include "tests/integration/tools/ice_checks.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kBindingRequest = 0x0001, kBindingSuccess = 0x0101;
constexpr uint16_t kAttrUsername = 0x0006, kAttrIntegrity = 0x0008;
constexpr uint16_t kAttrXorMapped = 0x0020, kAttrPriority = 0x0024;
constexpr uint16_t kAttrFingerprint = 0x8028, kAttrIceControlled = 0x8029;
constexpr uint16_t kAttrIceControlling = 0x802A;
constexpr uint32_t kCookie = 0x2112A442;
constexpr uint32_t kFingerprintXor = 0x5354554E;  // RFC 8489 section 14.7
constexpr size_t kHeader = 20;
constexpr size_t kIntegritySize = 24;     // attribute header + HMAC-SHA1
constexpr size_t kFingerprintSize = 8;    // attribute header + CRC-32

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}

Bytes new_message(uint16_t type, const TransactionId& id) {
  Bytes m(kHeader, 0);
  put16(m, 0, type);
  put16(m, 4, static_cast<uint16_t>(kCookie >> 16));
  put16(m, 6, static_cast<uint16_t>(kCookie));
  std::copy(id.begin(), id.end(), m.begin() + 8);
  return m;
}

/// RFC 8489 section 14.5: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, whose length
/// field already counts the attribute.
void add_integrity(Bytes& msg, const Bytes& key) {
  const size_t covered = msg.size();
  put16(msg, 2, static_cast<uint16_t>(covered - kHeader + kIntegritySize));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), msg.data(), covered, mac.data(), &len);
  add_attr(msg, kAttrIntegrity, Bytes(mac.begin(), mac.begin() + len));
}

/// CRC-32 of ISO 3309 / ITU-T V.42 (the polynomial RFC 8489 section 14.7 names), bitwise.
uint32_t crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/// RFC 8489 section 14.7: CRC-32 of the message up to FINGERPRINT, XORed with 0x5354554E.
void add_fingerprint(Bytes& msg) {
  const size_t covered = msg.size();
  put16(msg, 2, static_cast<uint16_t>(covered - kHeader + kFingerprintSize));
  add_attr(msg, kAttrFingerprint, be32(crc32(msg.data(), covered) ^ kFingerprintXor));
}

/// RFC 8489 section 14.2 XOR-MAPPED-ADDRESS layout.
std::optional<Bytes> xor_address(const Ipv4Endpoint& ep) {
  in_addr addr{};
  if (inet_pton(AF_INET, ep.ip.c_str(), &addr) != 1) return std::nullopt;
  const auto x_port = static_cast<uint16_t>(ep.port ^ (kCookie >> 16));
  Bytes v{0, 0x01, static_cast<uint8_t>(x_port >> 8), static_cast<uint8_t>(x_port)};
  const Bytes a = be32(ntohl(addr.s_addr) ^ kCookie);
  v.insert(v.end(), a.begin(), a.end());
  return v;
}

}  // namespace

std::optional<StunInfo> parse_stun(std::span<const uint8_t> d) {
  if (d.size() < kHeader || (d[0] & 0xC0) != 0) return std::nullopt;
  if (get16(d.data() + 4) != (kCookie >> 16) || get16(d.data() + 6) != (kCookie & 0xFFFF)) {
    return std::nullopt;
  }
  const size_t length = get16(d.data() + 2);
  if (length % 4 != 0 || kHeader + length != d.size()) return std::nullopt;
  StunInfo info;
  const uint16_t type = get16(d.data());
  info.kind = type == kBindingRequest   ? StunInfo::Kind::kBindingRequest
              : type == kBindingSuccess ? StunInfo::Kind::kBindingSuccess
                                        : StunInfo::Kind::kOther;
  std::copy(d.begin() + 8, d.begin() + kHeader, info.id.begin());
  return info;
}

std::vector<uint8_t> ice_binding_request(const TransactionId& id, const std::string& username,
                                         const std::string& password, bool controlling) {
  Bytes m = new_message(kBindingRequest, id);
  add_attr(m, kAttrUsername, text(username));
  add_attr(m, kAttrPriority, be32(0x00FFFFFF));  // a relayed candidate's (RFC 8445 5.1.2.1)
  Bytes tie_breaker = be32(0x01020304);
  const Bytes low = be32(controlling ? 0x05060708 : 0x0A0B0C0D);
  tie_breaker.insert(tie_breaker.end(), low.begin(), low.end());
  add_attr(m, controlling ? kAttrIceControlling : kAttrIceControlled, tie_breaker);
  add_integrity(m, text(password));
  add_fingerprint(m);
  return m;
}

std::vector<uint8_t> ice_binding_success(const TransactionId& id, const Ipv4Endpoint& mapped,
                                         const std::string& password) {
  Bytes m = new_message(kBindingSuccess, id);
  if (const auto addr = xor_address(mapped)) add_attr(m, kAttrXorMapped, *addr);
  add_integrity(m, text(password));
  add_fingerprint(m);
  return m;
}

}  // namespace callrelay::integ
