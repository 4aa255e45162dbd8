// Bounded label sets for the relay's metrics: every enum the core reports maps to a small dense
// index (so per-worker counters are plain arrays) and to its label value. Anything outside the
// known values lands in one "other" slot, so no input can grow a label's cardinality.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::telemetry {

inline constexpr size_t kTransports = 3;    ///< udp, tcp, tls (core::Transport values)
inline constexpr size_t kFamilies = 3;      ///< ipv4, ipv6, dual (RFC 8656 dual allocation)
inline constexpr size_t kDirections = 2;    ///< client_to_peer, peer_to_client
inline constexpr size_t kEndReasons = 9;    ///< core::EndReason values
inline constexpr size_t kAuthFailures = 6;  ///< core::AuthFailure values
inline constexpr size_t kDenyReasons = 11;  ///< core::PeerDenyReason values
inline constexpr size_t kDropReasons = 7;   ///< core::DropReason values
inline constexpr size_t kMethods = 11;      ///< 10 STUN/TURN methods + "other"
inline constexpr size_t kCodes = 18;        ///< "success", 16 error codes, "other"
inline constexpr size_t kSecretSlots = 10;  ///< secret_index 0..7, "other", "static"

/// Index of a transport (0..2); out-of-range values clamp to udp's neighbour-free slot 0.
size_t transport_index(core::Transport t);
/// 0 for IPv4, 1 for IPv6.
size_t family_index(stun::Family f);
/// The allocation's relayed family: ipv4, ipv6, or dual when it also has an additional address.
size_t family_index(const core::AllocationInfo& a);
size_t method_index(stun::Method m);
/// The observer's code: 0 (success) or a STUN error code.
size_t code_index(uint16_t code);
/// REST secret index (-1: a static user).
size_t secret_index(int index);

/// Label values, indexed as above.
std::string_view transport_label(size_t i);
std::string_view family_label(size_t i);
std::string_view direction_label(size_t i);
std::string_view method_label(size_t i);
std::string_view code_label(size_t i);
std::string_view secret_label(size_t i);
std::string_view end_reason_label(size_t i);
std::string_view auth_failure_label(size_t i);
std::string_view deny_reason_label(size_t i);
std::string_view drop_reason_label(size_t i);

/// A label value safe for the text exposition: valid UTF-8 (invalid bytes become U+FFFD),
/// control characters replaced by '?', at most `max_bytes` bytes (cut on a character boundary).
std::string sanitize_label(std::string_view s, size_t max_bytes = 128);

}  // namespace callrelay::telemetry
