// Building STUN messages (RFC 8489 sections 5 and 14) into a caller-provided buffer.
#include "relay/stun/builder.hpp"

#include <array>
#include <cstring>

#include "relay/stun/integrity.hpp"
#include "relay/stun/wire.hpp"

namespace callrelay::stun {
namespace {

using wire::write_u16;
using wire::write_u32;

/// RFC 8489 section 14.7: the CRC-32 is xored with this ("STUN" in ASCII).
constexpr uint32_t kFingerprintXor = 0x5354554E;
/// The message length field is 16 bits and counts everything after the header.
constexpr size_t kMaxBody = 0xFFFF;
constexpr uint16_t kIntegritySize = 20;
constexpr uint16_t kIntegritySha256Size = 32;
/// RFC 8489 section 14.8: the reason phrase is fewer than 128 characters (763 bytes).
constexpr size_t kMaxReasonBytes = 763;

/// Writes the 20-byte header with a zero length (RFC 8489 section 5).
void write_header(uint8_t* out, uint16_t type, const TransactionId& tid) {
  write_u16(out, type);
  write_u16(out + 2, 0);
  write_u32(out + 4, kMagicCookie);
  std::memcpy(out + 8, tid.data(), tid.size());
}

}  // namespace

MessageBuilder::MessageBuilder(std::span<uint8_t> out, Method m, Class c, const TransactionId& tid)
    : out_(out) {
  if (out_.size() < kHeaderSize) {
    ok_ = false;
    return;
  }
  write_header(out_.data(), message_type(m, c), tid);
  size_ = kHeaderSize;
}

uint8_t* MessageBuilder::reserve(uint16_t type, uint16_t len) {
  if (!ok_) return nullptr;
  const size_t total = 4 + wire::padded(len);
  if (total > out_.size() - size_ || size_ + total - kHeaderSize > kMaxBody) {
    ok_ = false;
    return nullptr;
  }
  uint8_t* at = out_.data() + size_;
  write_u16(at, type);
  write_u16(at + 2, len);
  // Padding bytes are zero (RFC 8489 section 14 lets senders choose; zero leaks nothing).
  std::memset(at + 4 + len, 0, total - 4 - len);
  size_ += total;
  set_length(size_ - kHeaderSize);
  return at + 4;
}

void MessageBuilder::set_length(size_t body_len) {
  write_u16(out_.data() + 2, static_cast<uint16_t>(body_len));
}

void MessageBuilder::add_bytes(uint16_t type, std::span<const uint8_t> value) {
  if (value.size() > kMaxBody) {
    ok_ = false;
    return;
  }
  uint8_t* v = reserve(type, static_cast<uint16_t>(value.size()));
  if (v != nullptr && !value.empty()) std::memcpy(v, value.data(), value.size());
}

void MessageBuilder::add_string(uint16_t type, std::string_view value) {
  add_bytes(type, {reinterpret_cast<const uint8_t*>(value.data()), value.size()});
}

void MessageBuilder::add_u32(uint16_t type, uint32_t value) {
  if (uint8_t* v = reserve(type, 4)) write_u32(v, value);
}

void MessageBuilder::add_u64(uint16_t type, uint64_t value) {
  if (uint8_t* v = reserve(type, 8)) {
    write_u32(v, static_cast<uint32_t>(value >> 32));
    write_u32(v + 4, static_cast<uint32_t>(value));
  }
}

// RFC 8489 section 14.2: XOR-MAPPED-ADDRESS (and RFC 8656's XOR-PEER/RELAYED-ADDRESS).
void MessageBuilder::add_xor_address(uint16_t type, const Endpoint& ep) {
  if (!ok_) return;
  TransactionId tid;  // the header holds it; the XOR of an IPv6 address mixes it in
  std::memcpy(tid.data(), out_.data() + 8, tid.size());
  const auto len = static_cast<uint16_t>(wire::address_value_size(ep));
  if (uint8_t* v = reserve(type, len)) wire::write_address(v, ep, &tid);
}

// RFC 8489 section 14.1: MAPPED-ADDRESS and the other plain address attributes.
void MessageBuilder::add_plain_address(uint16_t type, const Endpoint& ep) {
  const auto len = static_cast<uint16_t>(wire::address_value_size(ep));
  if (uint8_t* v = reserve(type, len)) wire::write_address(v, ep, nullptr);
}

// RFC 8489 section 14.15: "encoded in the same way as MAPPED-ADDRESS" (no XOR).
void MessageBuilder::add_alternate_server(const Endpoint& server) {
  add_plain_address(attr::kAlternateServer, server);
}

// RFC 8489 section 14.8: 21 zero bits, the hundreds digit as class (3-6), the rest as number,
// then the reason phrase (the attribute padding follows it).
void MessageBuilder::add_error(uint16_t code, std::string_view reason) {
  if (code < 300 || code > 699 || reason.size() > kMaxReasonBytes) {
    ok_ = false;
    return;
  }
  const auto len = static_cast<uint16_t>(4 + reason.size());
  if (uint8_t* v = reserve(attr::kErrorCode, len)) {
    v[0] = 0;
    v[1] = 0;
    v[2] = static_cast<uint8_t>(code / 100);
    v[3] = static_cast<uint8_t>(code % 100);
    if (!reason.empty()) std::memcpy(v + 4, reason.data(), reason.size());
  }
}

// RFC 8489 section 14.13: a list of 16-bit attribute types (padded like any value).
void MessageBuilder::add_unknown_attributes(std::span<const uint16_t> types) {
  if (types.size() > kMaxBody / 2) {
    ok_ = false;
    return;
  }
  if (uint8_t* v = reserve(attr::kUnknownAttributes, static_cast<uint16_t>(types.size() * 2))) {
    for (size_t i = 0; i < types.size(); ++i) write_u16(v + 2 * i, types[i]);
  }
}

// RFC 8656 section 18.8: protocol number, then 24 RFFU bits set to zero.
void MessageBuilder::add_requested_transport(uint8_t protocol) {
  if (uint8_t* v = reserve(attr::kRequestedTransport, 4)) {
    v[0] = protocol;
    v[1] = v[2] = v[3] = 0;
  }
}

// RFC 8656 section 18.1: channel number, then 16 RFFU bits set to zero.
void MessageBuilder::add_channel_number(uint16_t channel) {
  if (uint8_t* v = reserve(attr::kChannelNumber, 4)) {
    write_u16(v, channel);
    write_u16(v + 2, 0);
  }
}

// RFC 8489 section 14.5: the HMAC covers the message up to MESSAGE-INTEGRITY with the length
// field already counting MESSAGE-INTEGRITY itself; reserve() has set that length.
void MessageBuilder::add_integrity(std::span<const uint8_t> key) {
  uint8_t* v = reserve(attr::kMessageIntegrity, kIntegritySize);
  if (v == nullptr) return;
  const size_t covered = size_ - 4 - kIntegritySize;
  const auto mac = hmac_sha1(key, out_.first(covered));
  std::memcpy(v, mac.data(), mac.size());
}

// RFC 8489 section 14.6: as MESSAGE-INTEGRITY, with HMAC-SHA256; a MESSAGE-INTEGRITY before it
// is covered like any other attribute.
void MessageBuilder::add_integrity_sha256(std::span<const uint8_t> key) {
  uint8_t* v = reserve(attr::kMessageIntegritySha256, kIntegritySha256Size);
  if (v == nullptr) return;
  const size_t covered = size_ - 4 - kIntegritySha256Size;
  const auto mac = hmac_sha256(key, out_.first(covered));
  std::memcpy(v, mac.data(), mac.size());
}

void MessageBuilder::sign(const SigningKey& key) {
  if (key.sha256) {
    add_integrity_sha256(key.key());
  } else {
    add_integrity(key.key());
  }
}

void MessageBuilder::add_password_algorithms(std::span<const PasswordAlgorithm> algorithms) {
  if (algorithms.size() > kMaxPasswordAlgorithms) {
    ok_ = false;
    return;
  }
  std::array<uint8_t, kMaxPasswordAlgorithms * kPasswordAlgorithmEntrySize> value{};
  const size_t n = encode_password_algorithms(algorithms, value);
  add_bytes(attr::kPasswordAlgorithms, std::span<const uint8_t>(value.data(), n));
}

void MessageBuilder::add_password_algorithm(PasswordAlgorithm algorithm) {
  if (uint8_t* v = reserve(attr::kPasswordAlgorithm, kPasswordAlgorithmEntrySize)) {
    write_u16(v, static_cast<uint16_t>(algorithm));
    write_u16(v + 2, 0);
  }
}

// RFC 8489 section 14.7: CRC-32 of the message up to FINGERPRINT, with the length field
// counting FINGERPRINT, xored with 0x5354554E.
void MessageBuilder::add_fingerprint() {
  uint8_t* v = reserve(attr::kFingerprint, 4);
  if (v == nullptr) return;
  const size_t covered = size_ - 8;
  write_u32(v, crc32(out_.first(covered)) ^ kFingerprintXor);
}

size_t data_indication_header_size(const Endpoint& peer) {
  // Header, XOR-PEER-ADDRESS (4 + value), DATA attribute header.
  return kHeaderSize + 4 + wire::address_value_size(peer) + 4;
}

// RFC 8656 section 11.3 (receiving a UDP datagram from a peer): a Data indication with
// XOR-PEER-ADDRESS and DATA. The DATA value is the payload the caller already holds right after the
// header we write.
size_t write_data_indication_header(std::span<uint8_t> header, const TransactionId& tid,
                                    const Endpoint& peer, size_t payload_len) {
  const size_t size = data_indication_header_size(peer);
  const size_t body = size - kHeaderSize + wire::padded(payload_len);
  if (header.size() < size || payload_len > kMaxBody || body > kMaxBody) return 0;
  uint8_t* p = header.data();
  write_header(p, message_type(Method::kData, Class::kIndication), tid);
  write_u16(p + 2, static_cast<uint16_t>(body));
  uint8_t* at = p + kHeaderSize;
  const auto addr_len = static_cast<uint16_t>(wire::address_value_size(peer));
  write_u16(at, attr::kXorPeerAddress);
  write_u16(at + 2, addr_len);
  wire::write_address(at + 4, peer, &tid);
  at += 4 + addr_len;
  write_u16(at, attr::kData);
  write_u16(at + 2, static_cast<uint16_t>(payload_len));
  return size;
}

}  // namespace callrelay::stun
