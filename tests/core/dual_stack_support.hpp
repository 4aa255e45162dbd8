// Helpers shared by the dual-stack core tests (dual_stack_test.cpp, dual_stack_relay_test.cpp).
#pragma once

#include <algorithm>
#include <utility>

#include "core_test_support.hpp"

namespace callrelay::core {
// relay/core's decoder of one XOR-*-ADDRESS attribute (server_impl.hpp): a response may carry
// two XOR-RELAYED-ADDRESS, and MessageView::xor_address returns the first only.
std::optional<Endpoint> decode_xor_address(const stun::MessageView& msg, const stun::Attribute& a);
}  // namespace callrelay::core

namespace callrelay::core::testing {

using stun::Method;
namespace at = stun::attr;

inline const Endpoint kPeer4 = ep("93.184.216.34:7000");
inline const Endpoint kPeer6 = ep("[2606:4700::1111]:7000");

inline AttrFn family_attr(uint16_t type, uint8_t family) {
  return [=](stun::MessageBuilder& b) { b.add_bytes(type, std::vector<uint8_t>{family, 0, 0, 0}); };
}
inline AttrFn additional_v6() { return family_attr(at::kAdditionalAddressFamily, 0x02); }

/// An authenticated Allocate with `extra` attributes after REQUESTED-TRANSPORT UDP.
inline Response allocate_raw(Harness& h, Client& c, const AttrFn& extra, TimeMs now = kT0,
                             std::optional<stun::TransactionId> tid = std::nullopt) {
  if (c.nonce.empty()) h.challenge(c, now);
  return h.request(
      c, Method::kAllocate,
      [&](stun::MessageBuilder& b) {
        b.add_requested_transport(17);
        if (extra) extra(b);
      },
      now, true, tid);
}

inline std::vector<Endpoint> relayed_addresses(const Response& r) {
  std::vector<Endpoint> out;
  const auto v = r.view();
  for (const auto& a : v.attributes()) {
    if (a.type != at::kXorRelayedAddress) continue;
    const auto e = decode_xor_address(v, a);
    if (e) out.push_back(*e);
  }
  return out;
}

struct AddressErrorValue {
  uint8_t family = 0;
  uint16_t code = 0;
};
inline std::optional<AddressErrorValue> address_error(const Response& r) {
  const auto v = r.view();
  const auto a = v.find(at::kAddressErrorCode);
  if (!a) return std::nullopt;
  const auto val = v.value(*a);
  EXPECT_GT(val.size(), 4u) << "ADDRESS-ERROR-CODE has a reason phrase";
  if (val.size() < 4) return std::nullopt;
  return AddressErrorValue{val[0], static_cast<uint16_t>((val[2] & 0x07) * 100 + val[3])};
}

inline std::vector<uint8_t> send_indication(Client& c, const Endpoint& peer,
                                            const std::vector<uint8_t>& payload) {
  return c.build(
      Method::kSend,
      [&](stun::MessageBuilder& b) {
        b.add_xor_address(at::kXorPeerAddress, peer);
        b.add_bytes(at::kData, payload);
      },
      false, c.next_tid(), stun::Class::kIndication);
}

inline std::vector<uint8_t> channel_data(uint16_t channel, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(4 + payload.size());
  stun::write_channel_data_header(std::span<uint8_t, 4>(out.data(), 4), channel,
                                  static_cast<uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + 4);
  return out;
}

/// A dual allocation for `c`; returns the IPv4 and IPv6 relay ids (the fake hands out ids in
/// order, IPv4 first).
inline std::pair<RelayId, RelayId> dual(Harness& h, Client& c, TimeMs now = kT0) {
  const RelayId first = h.ports.next_id;
  const auto r = allocate_raw(h, c, additional_v6(), now);
  EXPECT_EQ(r.code(), 0);
  EXPECT_EQ(relayed_addresses(r).size(), 2u);
  return {first, first + 1};
}

}  // namespace callrelay::core::testing
