// STUN message parsing and typed attribute access (RFC 8489, RFC 8656).
#include "relay/stun/message.hpp"

#include <cstring>

#include "relay/stun/integrity.hpp"
#include "relay/stun/wire.hpp"

namespace callrelay::stun {
namespace {

using wire::read_u16;
using wire::read_u32;

/// RFC 8489 section 14.7: the CRC-32 is xored with this ("STUN" in ASCII).
constexpr uint32_t kFingerprintXor = 0x5354554E;

/// RFC 8489 section 14.3 asks for fewer than 509 bytes; RFC 5389 allowed 512, which some
/// clients still use, so we accept that.
constexpr size_t kMaxUsernameBytes = 512;
/// RFC 8489 sections 14.8-14.10 and 14.14: fewer than 128 characters, up to 763 bytes.
constexpr size_t kMaxTextBytes = 763;

/// Where the attribute walk stands: which of the trailing attributes it has seen.
struct TrailerState {
  bool integrity = false;
  bool integrity_sha256 = false;
  bool fingerprint = false;
};

/// RFC 8489 section 14.5, 14.6 and 14.7: only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may
/// follow MESSAGE-INTEGRITY, only FINGERPRINT may follow MESSAGE-INTEGRITY-SHA256, and nothing
/// follows FINGERPRINT. Receivers are told to ignore such attributes; we refuse the message,
/// so that every attribute a caller finds is one the integrity covers.
std::optional<ParseError> check_order(TrailerState& s, uint16_t type) {
  if (s.fingerprint) return ParseError::kAfterFingerprint;
  if (type == attr::kFingerprint) {
    s.fingerprint = true;
    return std::nullopt;
  }
  if (s.integrity_sha256) return ParseError::kAfterIntegrity;
  if (type == attr::kMessageIntegritySha256) {
    s.integrity_sha256 = true;
    return std::nullopt;
  }
  if (s.integrity) return ParseError::kAfterIntegrity;
  if (type == attr::kMessageIntegrity) s.integrity = true;
  return std::nullopt;
}

/// RFC 8489 section 14.7: FINGERPRINT is CRC-32 of the message up to (excluding) itself,
/// xored with 0x5354554E. The header length already covers it because it is last.
bool fingerprint_ok(std::span<const uint8_t> msg, const Attribute& fp) {
  if (fp.length != 4) return false;
  const size_t covered = fp.offset - 4u;
  const uint32_t want = crc32(msg.first(covered)) ^ kFingerprintXor;
  return read_u32(msg.data() + fp.offset) == want;
}

struct MethodClass {
  Method method;
  Class cls;
};

/// Splits the 14-bit message type into method and class (RFC 8489 section 5, figure 3).
MethodClass split_type(uint16_t type) {
  const auto m =
      static_cast<uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  const auto c = static_cast<uint8_t>(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
  return {static_cast<Method>(m), static_cast<Class>(c)};
}

}  // namespace

const char* to_string(ParseError e) {
  switch (e) {
    case ParseError::kTooShort:
      return "too short";
    case ParseError::kNotStun:
      return "not STUN";
    case ParseError::kBadLength:
      return "bad length";
    case ParseError::kAttributeOverrun:
      return "attribute overruns message";
    case ParseError::kTooManyAttributes:
      return "too many attributes";
    case ParseError::kAfterIntegrity:
      return "attribute after MESSAGE-INTEGRITY";
    case ParseError::kAfterFingerprint:
      return "attribute after FINGERPRINT";
    case ParseError::kBadFingerprint:
      return "bad FINGERPRINT";
    case ParseError::kBadChannelNumber:
      return "bad channel number";
  }
  return "unknown parse error";
}

std::optional<MessageView> MessageView::parse(std::span<const uint8_t> bytes, ParseError* error) {
  const auto fail = [error](ParseError e) -> std::optional<MessageView> {
    if (error != nullptr) *error = e;
    return std::nullopt;
  };
  // RFC 8489 section 5: 20-byte header, top two bits zero, the magic cookie, a length that
  // counts the attributes (a multiple of 4, as every attribute is padded).
  if (bytes.size() < kHeaderSize) return fail(ParseError::kTooShort);
  const uint8_t* p = bytes.data();
  if ((p[0] & 0xC0) != 0 || read_u32(p + 4) != kMagicCookie) return fail(ParseError::kNotStun);
  const size_t length = read_u16(p + 2);
  if (length % 4 != 0) return fail(ParseError::kBadLength);
  if (length > bytes.size() - kHeaderSize) return fail(ParseError::kTooShort);
  if (length < bytes.size() - kHeaderSize) return fail(ParseError::kBadLength);

  MessageView m;
  m.bytes_ = bytes;
  const auto [method, cls] = split_type(read_u16(p));
  m.method_ = method;
  m.cls_ = cls;
  std::memcpy(m.tid_.data(), p + 8, m.tid_.size());

  TrailerState trailer;
  size_t pos = kHeaderSize;
  while (pos < bytes.size()) {
    // RFC 8489 section 14: type, length, value padded to 4 bytes. Check before reading.
    if (bytes.size() - pos < 4) return fail(ParseError::kAttributeOverrun);
    const uint16_t type = read_u16(p + pos);
    const uint16_t len = read_u16(p + pos + 2);
    if (wire::padded(len) > bytes.size() - pos - 4) return fail(ParseError::kAttributeOverrun);
    // Attribute::offset is 16 bits: a value starting past 64 KiB cannot be described.
    if (pos + 4 > 0xFFFF) return fail(ParseError::kBadLength);
    if (m.count_ == kMaxAttributes) return fail(ParseError::kTooManyAttributes);
    if (const auto order = check_order(trailer, type)) return fail(*order);
    m.attrs_[m.count_++] = Attribute{type, static_cast<uint16_t>(pos + 4), len};
    pos += 4 + wire::padded(len);
  }
  if (trailer.fingerprint && !fingerprint_ok(bytes, m.attrs_[m.count_ - 1])) {
    return fail(ParseError::kBadFingerprint);
  }
  return m;
}

std::optional<Attribute> MessageView::find(uint16_t type) const {
  for (size_t i = 0; i < count_; ++i) {
    if (attrs_[i].type == type) return attrs_[i];
  }
  return std::nullopt;
}

std::optional<Endpoint> MessageView::xor_address(uint16_t type) const {
  const auto a = find(type);
  if (!a) return std::nullopt;
  return wire::read_address(value(*a), &tid_);
}

std::optional<Endpoint> MessageView::plain_address(uint16_t type) const {
  const auto a = find(type);
  if (!a) return std::nullopt;
  return wire::read_address(value(*a), nullptr);
}

std::optional<std::string_view> MessageView::string(uint16_t type) const {
  const auto a = find(type);
  if (!a) return std::nullopt;
  const size_t limit = type == attr::kUsername ? kMaxUsernameBytes : kMaxTextBytes;
  if (a->length > limit) return std::nullopt;
  const auto v = value(*a);
  return std::string_view(reinterpret_cast<const char*>(v.data()), v.size());
}

std::optional<uint32_t> MessageView::u32(uint16_t type) const {
  const auto a = find(type);
  if (!a || a->length != 4) return std::nullopt;
  return read_u32(bytes_.data() + a->offset);
}

// RFC 8656 section 18.8: protocol number, then 24 RFFU bits (ignored on receipt).
std::optional<uint8_t> MessageView::requested_transport() const {
  const auto a = find(attr::kRequestedTransport);
  if (!a || a->length != 4) return std::nullopt;
  return bytes_[a->offset];
}

// RFC 8656 section 18.1: channel number, then 16 RFFU bits. The range is the caller's rule
// (a number outside 0x4000-0x4FFF earns a 400, not a parse failure).
std::optional<uint16_t> MessageView::channel_number() const {
  const auto a = find(attr::kChannelNumber);
  if (!a || a->length != 4) return std::nullopt;
  return read_u16(bytes_.data() + a->offset);
}

// RFC 8656 sections 18.6 (REQUESTED-ADDRESS-FAMILY) and 18.11 (ADDITIONAL-ADDRESS-FAMILY):
// family byte 0x01 or 0x02,
// then 24 reserved bits.
std::optional<uint8_t> MessageView::family_attr(uint16_t type, bool* bad) const {
  if (bad != nullptr) *bad = false;
  const auto a = find(type);
  if (!a) return std::nullopt;
  const uint8_t family = a->length == 4 ? bytes_[a->offset] : 0;
  if (family != static_cast<uint8_t>(Family::kIPv4) &&
      family != static_cast<uint8_t>(Family::kIPv6)) {
    if (bad != nullptr) *bad = true;
    return std::nullopt;
  }
  return family;
}

// RFC 8656 section 18.7: one byte whose top bit is R. Some clients send the byte padded to
// a 4-byte length, so any length 1-4 is accepted.
std::optional<bool> MessageView::even_port_reserve() const {
  const auto a = find(attr::kEvenPort);
  if (!a || a->length < 1 || a->length > 4) return std::nullopt;
  return (bytes_[a->offset] & 0x80) != 0;
}

// RFC 8656 section 18.10: an 8-byte opaque token.
std::optional<uint64_t> MessageView::reservation_token() const {
  const auto a = find(attr::kReservationToken);
  if (!a || a->length != 8) return std::nullopt;
  const uint8_t* v = bytes_.data() + a->offset;
  return (uint64_t{read_u32(v)} << 32) | read_u32(v + 4);
}

// RFC 8489 section 14.8: 21 reserved bits, class (3-6) in 3 bits, number (0-99) in 8 bits,
// then a UTF-8 reason phrase.
std::optional<MessageView::ErrorCode> MessageView::error_code() const {
  const auto a = find(attr::kErrorCode);
  if (!a || a->length < 4 || a->length - 4u > kMaxTextBytes) return std::nullopt;
  const uint8_t* v = bytes_.data() + a->offset;
  const unsigned cls = v[2] & 0x07;
  const unsigned number = v[3];
  if (cls < 3 || cls > 6 || number > 99) return std::nullopt;
  const auto reason = std::string_view(reinterpret_cast<const char*>(v + 4), a->length - 4u);
  return ErrorCode{static_cast<uint16_t>(cls * 100 + number), reason};
}

std::optional<std::span<const uint8_t>> MessageView::data() const {
  const auto a = find(attr::kData);
  if (!a) return std::nullopt;
  return value(*a);
}

}  // namespace callrelay::stun
