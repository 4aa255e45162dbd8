// ChannelData parsing and stream framing (RFC 8656 sections 12.4 and 12.5).
#include "relay/stun/channel_data.hpp"

#include "relay/stun/wire.hpp"

namespace callrelay::stun {
namespace {

using wire::read_u16;
using wire::read_u32;

bool valid_channel(uint16_t channel) {
  return channel >= kMinChannel && channel <= kMaxChannelRfc5766;
}

/// First-byte classes of a stream frame (RFC 7983 demultiplexing as RFC 8656 section 12 uses it).
enum class Lead : uint8_t { kStun, kChannelData, kGarbage };

Lead classify(uint8_t first) {
  switch (first & 0xC0) {
    case 0x00:
      return Lead::kStun;
    case 0x40:
      return Lead::kChannelData;
    default:
      return Lead::kGarbage;
  }
}

}  // namespace

// RFC 8656 section 12.6: a datagram shorter than the length field claims is discarded; over
// UDP the sender may pad the payload to a multiple of 4, so up to 3 bytes may follow it
// (section 12.5). More than that is not a ChannelData message.
std::optional<ChannelDataView> parse_channel_data(std::span<const uint8_t> bytes,
                                                  ParseError* error) {
  const auto fail = [error](ParseError e) -> std::optional<ChannelDataView> {
    if (error != nullptr) *error = e;
    return std::nullopt;
  };
  if (bytes.size() < kChannelDataHeaderSize) return fail(ParseError::kTooShort);
  const uint16_t channel = read_u16(bytes.data());
  // RFC 8656 section 12 allows 0x4000-0x4FFF, RFC 5766 section 11 0x4000-0x7FFF; the core
  // decides which it binds, the codec frames both.
  if (!valid_channel(channel)) return fail(ParseError::kBadChannelNumber);
  const size_t len = read_u16(bytes.data() + 2);
  const size_t room = bytes.size() - kChannelDataHeaderSize;
  if (len > room) return fail(ParseError::kTooShort);
  if (room - len > 3) return fail(ParseError::kBadLength);
  return ChannelDataView{channel, bytes.subspan(kChannelDataHeaderSize, len)};
}

void write_channel_data_header(std::span<uint8_t, kChannelDataHeaderSize> out, uint16_t channel,
                               uint16_t len) {
  wire::write_u16(out.data(), channel);
  wire::write_u16(out.data() + 2, len);
}

// RFC 8656 section 12.5: over TCP and TLS, ChannelData is padded to a multiple of 4 bytes and
// STUN messages are 20 + length bytes (RFC 8489 section 6.2.2 framing is the message itself).
FrameSize stream_frame_size(std::span<const uint8_t> buffered) {
  if (buffered.empty()) return {};
  switch (classify(buffered[0])) {
    case Lead::kGarbage:
      return {0, true};
    case Lead::kChannelData: {
      if (buffered.size() < kChannelDataHeaderSize) return {};
      return {kChannelDataHeaderSize + wire::padded(read_u16(buffered.data() + 2)), false};
    }
    case Lead::kStun: {
      // Wait for length and cookie: a stream that is not STUN is refused before we wait for
      // a length that garbage made up.
      if (buffered.size() < 8) return {};
      const size_t len = read_u16(buffered.data() + 2);
      if (len % 4 != 0 || read_u32(buffered.data() + 4) != kMagicCookie) return {0, true};
      return {kHeaderSize + len, false};
    }
  }
  return {0, true};
}

}  // namespace callrelay::stun
