// libFuzzer target: MessageView::parse on arbitrary bytes. Whatever parses is rebuilt twice
// (attribute by attribute, and through the typed accessors) and must parse back the same.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>

#include "relay/stun/builder.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace {

using namespace callrelay::stun;

constexpr uint8_t kKey[] = {'f', 'u', 'z', 'z'};

void require(bool condition) {
  if (!condition) std::abort();
}

/// Copies every attribute into a new message, recomputing MESSAGE-INTEGRITY and FINGERPRINT.
void rebuild_raw(const MessageView& m) {
  static uint8_t buf[70000];
  MessageBuilder mb(buf, m.method(), m.cls(), m.transaction_id());
  for (const auto& a : m.attributes()) {
    if (a.type == attr::kMessageIntegrity) {
      mb.add_integrity(kKey);
    } else if (a.type == attr::kFingerprint) {
      mb.add_fingerprint();
    } else {
      mb.add_bytes(a.type, m.value(a));
    }
  }
  // A MESSAGE-INTEGRITY shorter than 20 bytes grows when rebuilt, and the result may no
  // longer fit the 64 KiB limits; same size or smaller has the same layout and must parse.
  if (!mb.ok() || mb.finish() > m.bytes().size()) return;
  const auto again = MessageView::parse({buf, mb.finish()});
  require(again.has_value());
  require(again->method() == m.method() && again->cls() == m.cls());
  require(again->transaction_id() == m.transaction_id());
  require(again->attributes().size() == m.attributes().size());
  for (size_t i = 0; i < m.attributes().size(); ++i) {
    const auto& a = m.attributes()[i];
    const auto& b = again->attributes()[i];
    require(a.type == b.type);
    if (a.type == attr::kMessageIntegrity || a.type == attr::kFingerprint) continue;
    const auto va = m.value(a);
    const auto vb = again->value(b);
    require(va.size() == vb.size() && std::equal(va.begin(), va.end(), vb.begin()));
  }
  if (m.integrity()) require(check_integrity(*again, kKey) == Integrity::kOk);
}

/// Re-encodes what the typed accessors decoded; decoding the result must give the same values.
void rebuild_typed(const MessageView& m) {
  static uint8_t buf[70000];
  MessageBuilder mb(buf, m.method(), m.cls(), m.transaction_id());
  const uint16_t xor_types[] = {attr::kXorMappedAddress, attr::kXorPeerAddress,
                                attr::kXorRelayedAddress};
  for (const auto t : xor_types) {
    if (const auto e = m.xor_address(t)) mb.add_xor_address(t, *e);
  }
  if (const auto e = m.plain_address(attr::kMappedAddress))
    mb.add_plain_address(attr::kMappedAddress, *e);
  if (const auto v = m.u32(attr::kLifetime)) mb.add_u32(attr::kLifetime, *v);
  if (const auto v = m.requested_transport()) mb.add_requested_transport(*v);
  if (const auto v = m.channel_number()) mb.add_channel_number(*v);
  if (const auto v = m.reservation_token()) mb.add_u64(attr::kReservationToken, *v);
  if (const auto v = m.error_code()) mb.add_error(v->code, v->reason);
  if (const auto v = m.string(attr::kUsername)) mb.add_string(attr::kUsername, *v);
  if (const auto v = m.string(attr::kRealm)) mb.add_string(attr::kRealm, *v);
  if (const auto v = m.data()) mb.add_bytes(attr::kData, *v);
  if (!mb.ok()) return;
  const auto again = MessageView::parse({buf, mb.finish()});
  require(again.has_value());
  for (const auto t : xor_types) require(again->xor_address(t) == m.xor_address(t));
  require(again->plain_address(attr::kMappedAddress) == m.plain_address(attr::kMappedAddress));
  require(again->u32(attr::kLifetime) == m.u32(attr::kLifetime));
  require(again->requested_transport() == m.requested_transport());
  require(again->channel_number() == m.channel_number());
  require(again->reservation_token() == m.reservation_token());
  const auto e1 = m.error_code();
  const auto e2 = again->error_code();
  require(e1.has_value() == e2.has_value());
  if (e1) require(e1->code == e2->code && e1->reason == e2->reason);
  require(again->string(attr::kUsername) == m.string(attr::kUsername));
  require(again->string(attr::kRealm) == m.string(attr::kRealm));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto m = MessageView::parse({data, size});
  if (!m) return 0;
  for (const auto& a : m->attributes()) require(size_t{a.offset} + a.length <= size);
  (void)check_integrity(*m, kKey);
  (void)m->even_port_reserve();
  bool bad = false;
  (void)m->family_attr(attr::kRequestedAddressFamily, &bad);
  (void)m->string(attr::kNonce);
  (void)m->string(attr::kSoftware);
  rebuild_raw(*m);
  rebuild_typed(*m);
  return 0;
}
