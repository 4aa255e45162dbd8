// Address attribute values (RFC 8489 sections 14.1 and 14.2).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0 0 0 0 0 0 0|    Family     |         (X-)Port              |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |            (X-)Address (32 bits or 128 bits)                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#include <cstring>

#include "relay/stun/wire.hpp"

namespace callrelay::stun::wire {
namespace {

/// The XOR pad of RFC 8489 section 14.2: the magic cookie, then (for IPv6) the transaction id.
std::array<uint8_t, 16> xor_pad(const TransactionId& tid) {
  std::array<uint8_t, 16> pad{};
  write_u32(pad.data(), kMagicCookie);
  std::memcpy(pad.data() + 4, tid.data(), tid.size());
  return pad;
}

}  // namespace

void write_address(uint8_t* out, const Endpoint& ep, const TransactionId* tid) {
  out[0] = 0;
  out[1] = static_cast<uint8_t>(ep.family);
  uint16_t port = ep.port;
  if (tid != nullptr) port = static_cast<uint16_t>(port ^ (kMagicCookie >> 16));
  write_u16(out + 2, port);
  const size_t n = ep.addr_len();
  std::memcpy(out + 4, ep.addr.data(), n);
  if (tid != nullptr) {
    const auto pad = xor_pad(*tid);
    for (size_t i = 0; i < n; ++i) out[4 + i] ^= pad[i];
  }
}

std::optional<Endpoint> read_address(std::span<const uint8_t> value, const TransactionId* tid) {
  if (value.size() < 4) return std::nullopt;
  Endpoint ep;
  if (value[1] == static_cast<uint8_t>(Family::kIPv4) && value.size() == 8) {
    ep.family = Family::kIPv4;
  } else if (value[1] == static_cast<uint8_t>(Family::kIPv6) && value.size() == 20) {
    ep.family = Family::kIPv6;
  } else {
    return std::nullopt;
  }
  ep.port = read_u16(value.data() + 2);
  if (tid != nullptr) ep.port = static_cast<uint16_t>(ep.port ^ (kMagicCookie >> 16));
  const size_t n = ep.addr_len();
  std::memcpy(ep.addr.data(), value.data() + 4, n);
  if (tid != nullptr) {
    const auto pad = xor_pad(*tid);
    for (size_t i = 0; i < n; ++i) ep.addr[i] ^= pad[i];
  }
  return ep;
}

}  // namespace callrelay::stun::wire
