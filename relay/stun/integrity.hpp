// Message integrity, fingerprint and the long-term credential key (RFC 8489 sections 9.2, 14.4-14.7,
// 14.11, 14.12, 18.5).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "relay/stun/message.hpp"

namespace callrelay::stun {

using Sha1Key = std::array<uint8_t, 16>;    ///< MD5(username ":" realm ":" password)
using Sha256Key = std::array<uint8_t, 32>;  ///< SHA-256(username ":" realm ":" password)

/// PASSWORD-ALGORITHM values (RFC 8489 section 18.5): which hash makes the long-term key.
enum class PasswordAlgorithm : uint16_t { kMd5 = 0x0001, kSha256 = 0x0002 };
/// "md5" or "sha256" (the spelling of the auth.password_algorithms setting).
const char* to_string(PasswordAlgorithm a);
/// MD5 and SHA-256 take no parameters (RFC 8489 section 18.5), so each list entry and each
/// PASSWORD-ALGORITHM value is 4 bytes: algorithm, parameters length 0.
inline constexpr size_t kPasswordAlgorithmEntrySize = 4;
/// Most entries a PASSWORD-ALGORITHMS list this server sends can hold (one per algorithm).
inline constexpr size_t kMaxPasswordAlgorithms = 2;

/// What the PASSWORD-ALGORITHM attribute of a request says (RFC 8489 section 14.12).
struct PasswordAlgorithmAttr {
  bool present = false;
  bool valid = false;       ///< a known algorithm with empty parameters, in a 4-byte value
  uint16_t algorithm = 0;   ///< the raw value (valid: one of PasswordAlgorithm)
};
PasswordAlgorithmAttr read_password_algorithm(const MessageView& msg);

/// The PASSWORD-ALGORITHMS value (RFC 8489 section 14.11) listing `algorithms` in order,
/// written to `out` (room for kPasswordAlgorithmEntrySize each); returns bytes written.
size_t encode_password_algorithms(std::span<const PasswordAlgorithm> algorithms,
                                  std::span<uint8_t> out);

/// The key and the integrity attribute a message is signed with: MESSAGE-INTEGRITY
/// (HMAC-SHA1) or MESSAGE-INTEGRITY-SHA256, over a 16-byte MD5 or 32-byte SHA-256 key.
struct SigningKey {
  std::array<uint8_t, 32> bytes{};
  uint8_t size = 0;
  bool sha256 = false;  ///< sign with MESSAGE-INTEGRITY-SHA256 (else MESSAGE-INTEGRITY)

  static SigningKey make(std::span<const uint8_t> key, bool use_sha256);
  std::span<const uint8_t> key() const { return {bytes.data(), size}; }
  bool operator==(const SigningKey&) const = default;
};

/// Result of checking MESSAGE-INTEGRITY; an enum rather than a bool so callers cannot
/// confuse "absent" with "bad".
enum class Integrity : uint8_t { kNotSet, kOk, kBad };

/// Long-term credential key: MD5(username ":" realm ":" password).
Sha1Key long_term_key(std::string_view username, std::string_view realm, std::string_view password);

/// Long-term credential key with SHA-256 (RFC 8489 section 9.2.2, PASSWORD-ALGORITHM SHA-256).
Sha256Key long_term_key_sha256(std::string_view username, std::string_view realm,
                               std::string_view password);

/// USERHASH value (RFC 8489 section 14.4): SHA-256(username ":" realm).
Sha256Key userhash(std::string_view username, std::string_view realm);

/// Verifies the message's MESSAGE-INTEGRITY (HMAC-SHA1) with `key`.
Integrity check_integrity(const MessageView& msg, std::span<const uint8_t> key);

/// Verifies MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256) with `key`. RFC 8489 section 14.6 lets
/// senders truncate the value to 16..32 bytes in steps of 4; other lengths are kBad.
Integrity check_integrity_sha256(const MessageView& msg, std::span<const uint8_t> key);

/// CRC-32 (ISO-HDLC) of `data`, as FINGERPRINT needs before its xor.
uint32_t crc32(std::span<const uint8_t> data);

/// HMAC-SHA1 of `data` with `key`.
std::array<uint8_t, 20> hmac_sha1(std::span<const uint8_t> key, std::span<const uint8_t> data);

/// HMAC-SHA256 of `data` with `key`.
std::array<uint8_t, 32> hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data);

/// SHA-256 of `data`.
std::array<uint8_t, 32> sha256(std::span<const uint8_t> data);

/// Standard base64 (with padding) of `data`.
std::string base64(std::span<const uint8_t> data);

}  // namespace callrelay::stun
