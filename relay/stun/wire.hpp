// Big-endian field access and the address attribute encodings shared by the parser and the
// builder. Internal to relay/stun: other modules use MessageView and MessageBuilder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "relay/stun/endpoint.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::stun::wire {

/// Reads a network-order 16-bit value from `p` (two readable bytes).
inline uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

/// Reads a network-order 32-bit value from `p` (four readable bytes).
inline uint32_t read_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

/// Writes `v` in network order at `p` (two writable bytes).
inline void write_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

/// Writes `v` in network order at `p` (four writable bytes).
inline void write_u32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

/// Attribute values are padded to a multiple of 4 bytes (RFC 8489 section 14).
constexpr size_t padded(size_t len) { return (len + 3) & ~size_t{3}; }

/// Value length of a (XOR-)MAPPED-ADDRESS attribute for `ep`: 4 + 4 or 4 + 16 bytes.
inline size_t address_value_size(const Endpoint& ep) { return 4 + ep.addr_len(); }

/// Encodes an address attribute value (RFC 8489 sections 14.1 and 14.2) at `out`, which has
/// room for address_value_size(ep). With `tid` set, applies the XOR-MAPPED-ADDRESS
/// obfuscation: port with the cookie's top 16 bits, IPv4 with the cookie, IPv6 with the
/// cookie followed by the transaction id.
void write_address(uint8_t* out, const Endpoint& ep, const TransactionId* tid);

/// Decodes an address attribute value; nullopt for a wrong length or unknown family.
/// `tid` as for write_address.
std::optional<Endpoint> read_address(std::span<const uint8_t> value, const TransactionId* tid);

}  // namespace callrelay::stun::wire
