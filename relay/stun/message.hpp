// STUN message parsing (RFC 8489) with the attributes TURN needs (RFC 8656, RFC 5766).
// Pure: bytes in, a typed view or a typed error out. No I/O, no clock, no allocation.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0|     STUN Message Type     |         Message Length        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                         Magic Cookie                          |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                     Transaction ID (96 bits)                  |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "relay/stun/endpoint.hpp"

namespace callrelay::stun {

inline constexpr uint32_t kMagicCookie = 0x2112A442;
inline constexpr size_t kHeaderSize = 20;
/// Most attributes one message may carry; more is treated as malformed (bounded parse state).
inline constexpr size_t kMaxAttributes = 40;

using TransactionId = std::array<uint8_t, 12>;

enum class Method : uint16_t {
  kBinding = 0x001,
  kAllocate = 0x003,
  kRefresh = 0x004,
  kSend = 0x006,
  kData = 0x007,
  kCreatePermission = 0x008,
  kChannelBind = 0x009,
  kConnect = 0x00A,
  kConnectionBind = 0x00B,
  kConnectionAttempt = 0x00C,
};

enum class Class : uint8_t { kRequest = 0, kIndication = 1, kSuccess = 2, kError = 3 };

/// Attribute type codes (RFC 8489 section 18.3, RFC 8656 section 18, RFC 6062, RFC 8445).
namespace attr {
inline constexpr uint16_t kMappedAddress = 0x0001;
inline constexpr uint16_t kUsername = 0x0006;
inline constexpr uint16_t kMessageIntegrity = 0x0008;
inline constexpr uint16_t kErrorCode = 0x0009;
inline constexpr uint16_t kUnknownAttributes = 0x000A;
inline constexpr uint16_t kChannelNumber = 0x000C;
inline constexpr uint16_t kLifetime = 0x000D;
inline constexpr uint16_t kXorPeerAddress = 0x0012;
inline constexpr uint16_t kData = 0x0013;
inline constexpr uint16_t kRealm = 0x0014;
inline constexpr uint16_t kNonce = 0x0015;
inline constexpr uint16_t kXorRelayedAddress = 0x0016;
inline constexpr uint16_t kRequestedAddressFamily = 0x0017;
inline constexpr uint16_t kEvenPort = 0x0018;
inline constexpr uint16_t kRequestedTransport = 0x0019;
inline constexpr uint16_t kDontFragment = 0x001A;
inline constexpr uint16_t kMessageIntegritySha256 = 0x001C;
inline constexpr uint16_t kPasswordAlgorithm = 0x001D;
inline constexpr uint16_t kUserhash = 0x001E;
inline constexpr uint16_t kXorMappedAddress = 0x0020;
inline constexpr uint16_t kReservationToken = 0x0022;
inline constexpr uint16_t kPriority = 0x0024;
inline constexpr uint16_t kUseCandidate = 0x0025;
inline constexpr uint16_t kConnectionId = 0x002A;
inline constexpr uint16_t kAdditionalAddressFamily = 0x8000;
inline constexpr uint16_t kAddressErrorCode = 0x8001;
inline constexpr uint16_t kPasswordAlgorithms = 0x8002;
inline constexpr uint16_t kAlternateDomain = 0x8003;
inline constexpr uint16_t kIcmp = 0x8004;
inline constexpr uint16_t kSoftware = 0x8022;
inline constexpr uint16_t kAlternateServer = 0x8023;
inline constexpr uint16_t kFingerprint = 0x8028;
inline constexpr uint16_t kIceControlled = 0x8029;
inline constexpr uint16_t kIceControlling = 0x802A;
inline constexpr uint16_t kResponseOrigin = 0x802B;
inline constexpr uint16_t kOtherAddress = 0x802C;

/// Types 0x0000-0x7FFF are comprehension-required (RFC 8489 section 14).
constexpr bool is_comprehension_required(uint16_t type) { return type < 0x8000; }
}  // namespace attr

/// Why a buffer is not a valid STUN message or ChannelData frame.
enum class ParseError : uint8_t {
  kTooShort,            ///< fewer bytes than a header, or than the header's length says
  kNotStun,             ///< top two bits set, or wrong magic cookie
  kBadLength,           ///< message length not a multiple of 4, or disagrees with the buffer
  kAttributeOverrun,    ///< an attribute's length runs past the end of the message
  kTooManyAttributes,   ///< more than kMaxAttributes
  kAfterIntegrity,      ///< an attribute other than FINGERPRINT follows MESSAGE-INTEGRITY(-SHA256)
  kAfterFingerprint,    ///< anything follows FINGERPRINT
  kBadFingerprint,      ///< FINGERPRINT present but CRC wrong (or wrong length)
  kBadChannelNumber,    ///< ChannelData channel number outside 0x4000-0x4FFF
};
const char* to_string(ParseError e);

/// One attribute inside a parsed message: its type and value bytes (without padding).
struct Attribute {
  uint16_t type = 0;
  uint16_t offset = 0;  ///< offset of the value from the start of the message
  uint16_t length = 0;  ///< value length, without padding
};

/// A parsed, validated STUN message. Refers to the caller's buffer: keep that alive.
class MessageView {
 public:
  /// Parses and validates a complete message occupying exactly `bytes`
  /// (a datagram, or one frame cut from a stream). Checks FINGERPRINT if present.
  /// Never reads outside `bytes`.
  static std::optional<MessageView> parse(std::span<const uint8_t> bytes, ParseError* error = nullptr);

  Method method() const { return method_; }
  Class cls() const { return cls_; }
  const TransactionId& transaction_id() const { return tid_; }
  std::span<const uint8_t> bytes() const { return bytes_; }

  /// First attribute of `type`, or nullopt. Attributes after MESSAGE-INTEGRITY other than
  /// FINGERPRINT are rejected at parse time, so everything found here is covered by integrity.
  std::optional<Attribute> find(uint16_t type) const;
  std::span<const Attribute> attributes() const { return {attrs_.data(), count_}; }
  std::span<const uint8_t> value(const Attribute& a) const { return bytes_.subspan(a.offset, a.length); }

  // Typed accessors: nullopt when absent or malformed (wrong length, bad family).
  std::optional<Endpoint> xor_address(uint16_t type) const;  ///< XOR-MAPPED/PEER/RELAYED-ADDRESS
  std::optional<Endpoint> plain_address(uint16_t type) const;  ///< MAPPED-ADDRESS etc.
  std::optional<std::string_view> string(uint16_t type) const;  ///< USERNAME, REALM, NONCE, SOFTWARE
  std::optional<uint32_t> u32(uint16_t type) const;  ///< LIFETIME, CONNECTION-ID (4-byte value)
  std::optional<uint8_t> requested_transport() const;  ///< protocol number (17 UDP, 6 TCP)
  std::optional<uint16_t> channel_number() const;
  /// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: nullopt if absent; sets *bad when malformed.
  std::optional<uint8_t> family_attr(uint16_t type, bool* bad = nullptr) const;
  std::optional<bool> even_port_reserve() const;  ///< EVEN-PORT: R bit
  std::optional<uint64_t> reservation_token() const;
  struct ErrorCode { uint16_t code; std::string_view reason; };
  std::optional<ErrorCode> error_code() const;
  std::optional<std::span<const uint8_t>> data() const;  ///< DATA attribute value

  /// Offset of MESSAGE-INTEGRITY (SHA1) attribute header, if present.
  std::optional<Attribute> integrity() const { return find(attr::kMessageIntegrity); }

 private:
  std::span<const uint8_t> bytes_;
  Method method_{};
  Class cls_{};
  TransactionId tid_{};
  std::array<Attribute, kMaxAttributes> attrs_{};
  size_t count_ = 0;
};

/// Cheap first-byte test used to demultiplex a datagram: 0b00 -> STUN, 0b01 -> ChannelData.
inline bool looks_like_stun(std::span<const uint8_t> b) { return b.size() >= 1 && (b[0] & 0xC0) == 0; }
inline bool looks_like_channel_data(std::span<const uint8_t> b) {
  return b.size() >= 1 && (b[0] & 0xC0) == 0x40;
}

/// Encodes method and class into the 14-bit message type (RFC 8489 section 5).
constexpr uint16_t message_type(Method m, Class c) {
  const auto mv = static_cast<uint16_t>(m);
  const auto cv = static_cast<uint16_t>(c);
  return static_cast<uint16_t>((mv & 0x000F) | ((mv & 0x0070) << 1) | ((mv & 0x0F80) << 2) |
                               ((cv & 0x1) << 4) | ((cv & 0x2) << 7));
}

}  // namespace callrelay::stun
