// The ICE-style STUN Binding messages for the media quality tests, independent of the
// project's codec: the connectivity checks two ICE agents exchange through a relay (RFC 8445
// section 7.2), so that the relay can time them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/integration/tools/turn_client.hpp"

namespace callrelay::integ {

/// A 96-bit STUN transaction id (RFC 8489 section 5).
using TransactionId = std::array<uint8_t, 12>;

/// What a received datagram is, as far as these tests care.
struct StunInfo {
  enum class Kind : uint8_t { kBindingRequest, kBindingSuccess, kOther };
  Kind kind = Kind::kOther;
  TransactionId id{};
};

/// Parses a STUN header (RFC 8489 section 5: two zero bits, the magic cookie, a length that
/// matches the datagram and is a multiple of 4); nothing if it is not STUN.
std::optional<StunInfo> parse_stun(std::span<const uint8_t> datagram);

/// An ICE connectivity check (RFC 8445 section 7.2.2): Binding request with USERNAME
/// "remote:local", PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED, MESSAGE-INTEGRITY with the
/// short-term `password` (RFC 8489 section 9.1) and FINGERPRINT.
std::vector<uint8_t> ice_binding_request(const TransactionId& id, const std::string& username,
                                         const std::string& password, bool controlling);

/// The success response to a check: XOR-MAPPED-ADDRESS `mapped`, MESSAGE-INTEGRITY, FINGERPRINT.
std::vector<uint8_t> ice_binding_success(const TransactionId& id, const Ipv4Endpoint& mapped,
                                         const std::string& password);

}  // namespace callrelay::integ
