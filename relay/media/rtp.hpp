// What the monitor reads of a relayed datagram: which protocol it is (RFC 7983), the fixed RTP
// header (RFC 3550 section 5.1) and whether it is a STUN Binding (RFC 8489 section 5). Never
// trusts a length: whatever does not fit the datagram is refused.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "relay/media/monitor.hpp"

namespace callrelay::media {

/// The protocol of a datagram by its first byte (RFC 7983 section 7), RTP and RTCP told apart
/// by the second byte (RFC 5761 section 4: RTCP packet types 192..223 with rtcp-mux).
enum class Demux : uint8_t { kStun, kDtls, kRtp, kRtcp, kOther };

/// Classifies `datagram`; an empty datagram is kOther.
Demux demultiplex(std::span<const uint8_t> datagram);

/// The fields of an RTP packet the monitor uses.
struct RtpHeader {
  uint32_t ssrc = 0;
  uint32_t timestamp = 0;
  uint16_t seq = 0;
  uint8_t payload_type = 0;  ///< 0..127
  bool marker = false;
  size_t payload_size = 0;  ///< after the CSRCs, the extension and the padding; 0: padding only
};

/// Parses an RTP header: version 2, CSRC list, header extension (RFC 3550 section 5.3.1) and
/// padding located; nullopt when a declared length exceeds the datagram or the padding count
/// is 0 (it counts itself, section 5.1).
std::optional<RtpHeader> parse_rtp(std::span<const uint8_t> datagram);

/// A STUN Binding request or response (success or error), by transaction id.
struct BindingMessage {
  enum class Class : uint8_t { kRequest, kResponse };
  Class cls = Class::kRequest;
  std::array<uint8_t, 12> transaction{};  ///< 96 bits (RFC 8489 section 5)
};

/// Recognises a Binding request, success or error response: top two bits 0, the magic cookie,
/// a length that is a multiple of 4 and fits the datagram. Attributes are not parsed.
std::optional<BindingMessage> parse_binding(std::span<const uint8_t> datagram);

/// The statically assigned payload types of RFC 3551 (tables 4 and 5): role kAudio or kVideo
/// with the clock rate; role kUnknown for every other number (dynamic or unassigned).
PayloadType static_payload_type(uint8_t payload_type);

}  // namespace callrelay::media
