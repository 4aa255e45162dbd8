// Message integrity, fingerprint and the long-term credential key (RFC 8489 sections 9.2, 14.5, 14.7).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "relay/stun/message.hpp"

namespace callrelay::stun {

using Sha1Key = std::array<uint8_t, 16>;  ///< MD5(username ":" realm ":" password)

/// Result of checking MESSAGE-INTEGRITY; an enum rather than a bool so callers cannot
/// confuse "absent" with "bad".
enum class Integrity : uint8_t { kNotSet, kOk, kBad };

/// Long-term credential key: MD5(username ":" realm ":" password).
Sha1Key long_term_key(std::string_view username, std::string_view realm, std::string_view password);

/// Verifies the message's MESSAGE-INTEGRITY (HMAC-SHA1) with `key`.
Integrity check_integrity(const MessageView& msg, std::span<const uint8_t> key);

/// CRC-32 (ISO-HDLC) of `data`, as FINGERPRINT needs before its xor.
uint32_t crc32(std::span<const uint8_t> data);

/// HMAC-SHA1 of `data` with `key`.
std::array<uint8_t, 20> hmac_sha1(std::span<const uint8_t> key, std::span<const uint8_t> data);

/// Standard base64 (with padding) of `data`.
std::string base64(std::span<const uint8_t> data);

}  // namespace callrelay::stun
