// ChannelData framing (RFC 8656 section 12.4).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |         Channel Number        |            Length             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  /                       Application Data                        /
//  +-------------------------------+-------------------------------+
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "relay/stun/message.hpp"

namespace callrelay::stun {

inline constexpr size_t kChannelDataHeaderSize = 4;
inline constexpr uint16_t kMinChannel = 0x4000;
inline constexpr uint16_t kMaxChannel = 0x4FFF;  ///< RFC 8656 narrowed 0x4000-0x7FFF to this.
/// RFC 5766 clients (coturn's turnutils_uclient among them) still pick from 0x4000-0x7FFF, so
/// the codec frames every number with the 0b01 prefix; which numbers a server binds is policy.
inline constexpr uint16_t kMaxChannelRfc5766 = 0x7FFF;

struct ChannelDataView {
  uint16_t channel = 0;
  std::span<const uint8_t> payload;
};

/// Parses a ChannelData datagram (channel 0x4000-0x7FFF). Over UDP the datagram may carry up to 3 padding bytes after
/// the payload (RFC 8656 section 12.5 allows them); anything shorter than the length field says
/// is kTooShort. Never reads outside `bytes`.
std::optional<ChannelDataView> parse_channel_data(std::span<const uint8_t> bytes, ParseError* error = nullptr);

/// Writes the 4-byte header for a payload of `len` bytes.
void write_channel_data_header(std::span<uint8_t, kChannelDataHeaderSize> out, uint16_t channel, uint16_t len);

/// On a byte stream (TCP/TLS) each frame is either a STUN message (20 + length) or ChannelData
/// padded to a multiple of 4. Given the start of the stream buffer, returns how many bytes the
/// first frame takes: 0 if more bytes are needed to know, or an error for garbage.
struct FrameSize {
  size_t size = 0;          ///< bytes the frame occupies in the stream (with padding); 0 = need more
  bool error = false;       ///< the stream is not STUN/ChannelData
};
FrameSize stream_frame_size(std::span<const uint8_t> buffered);

}  // namespace callrelay::stun
