// Strict input: one table saying, for every attribute a client may send, its length rule, its
// value rule and the methods that can carry it. A request with an attribute that breaks its rule
// gets 400 (RFC 8489 section 6.3.1.1: a malformed request) before any handler reads it; a Send
// indication is dropped (indications are never answered, RFC 8489 section 6.3.2).
//
// Values with an error code of their own are left to the handlers: REQUESTED-TRANSPORT other
// than UDP/TCP is 442 (RFC 8656 section 7.2 step 5), an unsupported REQUESTED-ADDRESS-FAMILY is
// 440 (step 8), an unknown PASSWORD-ALGORITHM follows RFC 8489 section 9.2.4.
#include <cstdint>
#include <span>

#include "relay/core/server_impl.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::core {

namespace {

namespace at = stun::attr;
using Bytes = std::span<const uint8_t>;

/// One bit per method: which methods an attribute can appear in.
enum MethodBit : uint16_t {
  kBinding = 1u << 0,
  kAllocate = 1u << 1,
  kRefresh = 1u << 2,
  kSend = 1u << 3,
  kCreatePermission = 1u << 4,
  kChannelBind = 1u << 5,
  kConnect = 1u << 6,
  kConnectionBind = 1u << 7,
};
/// Methods a client authenticates with the long-term credential (RFC 8656 section 5;
/// Binding too when the server asks for it).
constexpr uint16_t kAuthenticated =
    kBinding | kAllocate | kRefresh | kCreatePermission | kChannelBind | kConnect | kConnectionBind;
constexpr uint16_t kAllMethods = kAuthenticated | kSend;

uint16_t method_bit(stun::Method m) {
  switch (m) {
    case stun::Method::kBinding:
      return kBinding;
    case stun::Method::kAllocate:
      return kAllocate;
    case stun::Method::kRefresh:
      return kRefresh;
    case stun::Method::kSend:
      return kSend;
    case stun::Method::kCreatePermission:
      return kCreatePermission;
    case stun::Method::kChannelBind:
      return kChannelBind;
    case stun::Method::kConnect:
      return kConnect;
    case stun::Method::kConnectionBind:
      return kConnectionBind;
    default:
      return 0;
  }
}

uint16_t read_u16(Bytes v, size_t at_offset) {
  return static_cast<uint16_t>((v[at_offset] << 8) | v[at_offset + 1]);
}

// --- value rules (the length rule has been checked before these run) ---

/// RFC 8489 section 14.2: the family byte says how long the address is (IPv4 8, IPv6 20).
bool xor_address_ok(Bytes v, const CoreConfig&) {
  return (v[1] == 0x01 && v.size() == 8) || (v[1] == 0x02 && v.size() == 20);
}

/// RFC 8656 section 12: 0x4000-0x4FFF (0x7FFF for RFC 5766 clients when configured).
bool channel_number_ok(Bytes v, const CoreConfig& cfg) {
  const uint16_t n = read_u16(v, 0);
  const uint16_t max = cfg.accept_rfc5766_channels ? stun::kMaxChannelRfc5766 : stun::kMaxChannel;
  return n >= stun::kMinChannel && n <= max;
}

/// RFC 8656 section 18.12: an IPv4 relayed address may never be the additional one.
bool additional_family_ok(Bytes v, const CoreConfig&) { return v[0] == 0x02; }

/// RFC 8489 section 14.6: 16 to 32 bytes in steps of 4.
bool sha256_integrity_ok(Bytes v, const CoreConfig&) { return v.size() % 4 == 0; }

/// RFC 8489 section 14.12: algorithm (2), parameters length (2), parameters padded to 4.
bool password_algorithm_ok(Bytes v, const CoreConfig&) {
  const size_t params = read_u16(v, 2);
  return v.size() == 4 + ((params + 3) & ~size_t{3});
}

/// RFC 8489 section 14.11: one or more entries laid out as PASSWORD-ALGORITHM's value.
bool password_algorithms_ok(Bytes v, const CoreConfig&) {
  size_t pos = 0;
  while (pos < v.size()) {
    if (v.size() - pos < 4) return false;
    const size_t entry = 4 + ((size_t{read_u16(v, pos + 2)} + 3) & ~size_t{3});
    if (entry > v.size() - pos) return false;
    pos += entry;
  }
  return pos > 0;
}

struct AttributeRule {
  uint16_t type;
  const char* reason;  ///< the 400's reason phrase
  uint16_t min_length;
  uint16_t max_length;
  uint16_t methods;  ///< MethodBit mask
  bool (*value_ok)(Bytes, const CoreConfig&) = nullptr;
};

// Length limits cite their RFC rule. Text attributes: RFC 8489 section 14 bounds in bytes
// (USERNAME < 513 as RFC 5389 put it, so RFC 5389 clients' usernames stay valid; REALM, NONCE
// and SOFTWARE < 128 characters, at most 763 bytes).
constexpr AttributeRule kRules[] = {
    {at::kUsername, "Malformed USERNAME", 1, 512, kAuthenticated},                   // 14.3
    {at::kUserhash, "Malformed USERHASH", 32, 32, kAuthenticated},                   // 14.4
    {at::kMessageIntegrity, "Malformed MESSAGE-INTEGRITY", 20, 20, kAuthenticated},  // 14.5
    {at::kMessageIntegritySha256, "Malformed MESSAGE-INTEGRITY-SHA256", 16, 32,      // 14.6
     kAuthenticated, sha256_integrity_ok},
    {at::kRealm, "Malformed REALM", 1, 763, kAuthenticated},  // 14.9
    {at::kNonce, "Malformed NONCE", 1, 763, kAuthenticated},  // 14.10
    {at::kPasswordAlgorithms, "Malformed PASSWORD-ALGORITHMS", 4, 763, kAuthenticated,
     password_algorithms_ok},  // 14.11
    {at::kPasswordAlgorithm, "Malformed PASSWORD-ALGORITHM", 4, 763, kAuthenticated,
     password_algorithm_ok},                                     // 14.12
    {at::kSoftware, "Malformed SOFTWARE", 0, 763, kAllMethods},  // 14.14
    // RFC 8656 section 18.
    {at::kChannelNumber, "Malformed CHANNEL-NUMBER", 4, 4, kChannelBind, channel_number_ok},
    {at::kLifetime, "Malformed LIFETIME", 4, 4, kAllocate | kRefresh},
    {at::kXorPeerAddress, "Malformed XOR-PEER-ADDRESS", 8, 20,
     kSend | kCreatePermission | kChannelBind | kConnect, xor_address_ok},
    {at::kRequestedAddressFamily, "Malformed REQUESTED-ADDRESS-FAMILY", 4, 4, kAllocate | kRefresh},
    // Some clients pad EVEN-PORT's one byte to four (accepted, as the codec does).
    {at::kEvenPort, "Malformed EVEN-PORT", 1, 4, kAllocate},
    {at::kRequestedTransport, "Malformed REQUESTED-TRANSPORT", 4, 4, kAllocate},
    {at::kDontFragment, "Malformed DONT-FRAGMENT", 0, 0, kAllocate | kSend},
    {at::kReservationToken, "Malformed RESERVATION-TOKEN", 8, 8, kAllocate},
    {at::kAdditionalAddressFamily, "ADDITIONAL-ADDRESS-FAMILY must be IPv6", 4, 4, kAllocate,
     additional_family_ok},
    // RFC 6062 section 6.2.1.
    {at::kConnectionId, "Malformed CONNECTION-ID", 4, 4, kConnectionBind},
    // RFC 8445 section 16.1: ICE attributes on Binding requests.
    {at::kPriority, "Malformed PRIORITY", 4, 4, kBinding},
    {at::kUseCandidate, "Malformed USE-CANDIDATE", 0, 0, kBinding},
    {at::kIceControlled, "Malformed ICE-CONTROLLED", 8, 8, kBinding},
    {at::kIceControlling, "Malformed ICE-CONTROLLING", 8, 8, kBinding},
    // RFC 8489 section 14.7: FINGERPRINT is checked by the codec; listed for completeness.
    {at::kFingerprint, "Malformed FINGERPRINT", 4, 4, kAllMethods},
};

/// The attributes the long-term credential check reads: when one is malformed, the request
/// cannot be authenticated and its 400 goes unsigned.
bool is_credential_attribute(uint16_t type) {
  switch (type) {
    case at::kUsername:
    case at::kUserhash:
    case at::kMessageIntegrity:
    case at::kMessageIntegritySha256:
    case at::kRealm:
    case at::kNonce:
    case at::kPasswordAlgorithms:
    case at::kPasswordAlgorithm:
    case at::kFingerprint:
      return true;
    default:
      return false;
  }
}

const AttributeRule* rule_for(uint16_t type) {
  for (const auto& r : kRules) {
    if (r.type == type) return &r;
  }
  return nullptr;
}

}  // namespace

std::optional<MalformedAttribute> malformed_attribute(const stun::MessageView& msg,
                                                      const CoreConfig& cfg) {
  const uint16_t method = method_bit(msg.method());
  if (method == 0) return std::nullopt;  // other methods are refused by the dispatcher
  for (const stun::Attribute& a : msg.attributes()) {
    const AttributeRule* r = rule_for(a.type);
    if (r == nullptr || (r->methods & method) == 0) continue;  // not this method's attribute
    const bool length_ok = a.length >= r->min_length && a.length <= r->max_length;
    if (!length_ok || (r->value_ok != nullptr && !r->value_ok(msg.value(a), cfg))) {
      return MalformedAttribute{a.type, r->reason};
    }
  }
  return std::nullopt;
}

std::optional<Output> TurnServer::Impl::check_attribute_formats(Request& req) {
  const auto bad = malformed_attribute(req.msg, cfg);
  if (!bad) return std::nullopt;
  drop(DropReason::kMalformed);
  // RFC 8489 section 9.2.4: the answer to a request that authenticates is signed, so the client
  // can trust the 400. A request whose credentials themselves are malformed, or that carries
  // none, gets it unsigned; one whose credentials fail gets the authentication's answer.
  const bool signed_request = req.msg.find(at::kMessageIntegrity).has_value() ||
                              req.msg.find(at::kMessageIntegritySha256).has_value();
  if (signed_request && !is_credential_attribute(bad->type)) {
    Credential cred;
    if (auto refused = authenticate(req, cred)) return refused;
  }
  return respond_error(req, 400, bad->reason);
}

Output TurnServer::Impl::checked_send(const FiveTuple& from, const stun::MessageView& msg,
                                      TimeMs now, int64_t now_us) {
  if (malformed_attribute(msg, cfg)) {
    drop(DropReason::kMalformed);
    return {};
  }
  // The server's own listeners are never a peer (peer_policy.hpp); a permission for the
  // host's address (e.g. another allocation's relayed address) must not reach them.
  const auto peer = msg.xor_address(stun::attr::kXorPeerAddress);
  if (peer && policy.is_own_endpoint(*peer)) {
    if (observer != nullptr) observer->on_peer_denied(PeerDenyReason::kOwnAddress);
    drop(DropReason::kPeerDenied);
    return {};
  }
  return handle_send(from, msg, now, now_us);
}

}  // namespace callrelay::core
