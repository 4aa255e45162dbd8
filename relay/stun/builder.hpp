// Building STUN messages into a caller-provided buffer: no allocation, bounded writes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "relay/stun/endpoint.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::stun {

/// Writes one STUN message into `out`. Every add_* is bounds-checked; once an add does not
/// fit, ok() turns false and finish() returns 0, so callers check once at the end.
class MessageBuilder {
 public:
  MessageBuilder(std::span<uint8_t> out, Method m, Class c, const TransactionId& tid);

  void add_bytes(uint16_t type, std::span<const uint8_t> value);
  void add_string(uint16_t type, std::string_view value);
  void add_u32(uint16_t type, uint32_t value);
  void add_xor_address(uint16_t type, const Endpoint& ep);
  void add_plain_address(uint16_t type, const Endpoint& ep);
  /// ALTERNATE-SERVER (RFC 8489 section 14.15): the server a 300 (Try Alternate) answer sends
  /// the client to. It uses the plain MAPPED-ADDRESS encoding, not the XOR one.
  void add_alternate_server(const Endpoint& server);
  void add_error(uint16_t code, std::string_view reason);
  void add_unknown_attributes(std::span<const uint16_t> types);
  void add_requested_transport(uint8_t protocol);
  void add_channel_number(uint16_t channel);
  void add_u64(uint16_t type, uint64_t value);
  /// Appends MESSAGE-INTEGRITY (HMAC-SHA1 over the message so far with the length field
  /// covering it, RFC 8489 section 14.5). `key` is the long-term or short-term key.
  void add_integrity(std::span<const uint8_t> key);
  /// Appends MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, full 32 bytes, RFC 8489 section 14.6).
  void add_integrity_sha256(std::span<const uint8_t> key);
  /// Signs with the attribute `key` names (MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256).
  void sign(const SigningKey& key);
  /// PASSWORD-ALGORITHMS listing `algorithms` in order of preference (RFC 8489 section 14.11).
  void add_password_algorithms(std::span<const PasswordAlgorithm> algorithms);
  /// PASSWORD-ALGORITHM naming `algorithm` with no parameters (RFC 8489 section 14.12).
  void add_password_algorithm(PasswordAlgorithm algorithm);
  /// Appends FINGERPRINT (CRC-32 xor 0x5354554e, RFC 8489 section 14.7). Must be last.
  void add_fingerprint();

  bool ok() const { return ok_; }
  /// Size of the finished message, or 0 when something did not fit.
  size_t finish() const { return ok_ ? size_ : 0; }

 private:
  uint8_t* reserve(uint16_t type, uint16_t len);
  void set_length(size_t body_len);
  std::span<uint8_t> out_;
  size_t size_ = 0;
  bool ok_ = true;
};

/// Writes a Data indication header (20-byte header, XOR-PEER-ADDRESS, DATA attribute header)
/// so that it ends exactly where `payload_len` payload bytes already sit: the caller keeps
/// the payload where it was received and only the header (and padding) is written.
/// `header` must have room for data_indication_header_size(peer); returns bytes written,
/// and the padding (0-3 zero bytes) after the payload is the caller's to append.
size_t data_indication_header_size(const Endpoint& peer);
size_t write_data_indication_header(std::span<uint8_t> header, const TransactionId& tid,
                                    const Endpoint& peer, size_t payload_len);

}  // namespace callrelay::stun
