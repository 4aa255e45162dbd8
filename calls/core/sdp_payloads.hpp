// The RTP payload types a call negotiated, read from its SDP offer and answer (RFC 8866
// section 6.6 a=rtpmap, RFC 4588 rtx, RFC 2198 red, RFC 5109 ulpfec, RFC 8627 flexfec), so that
// the relay can tell each relayed packet's kind and clock rate without decrypting anything.
// Payload types 0..34 listed on an m= line without a=rtpmap take RFC 3551's static values.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace callrelay::calls {

/// One RTP payload type of a call's SDP (a=rtpmap), as the relay needs it to measure media.
struct RtpPayloadType {
  uint8_t pt = 0;               ///< 0..127
  bool video = false;           ///< the m= section's kind: false audio, true video
  uint32_t clock_rate = 0;      ///< Hz, from a=rtpmap
  /// rtx and flexfec: repair streams with SSRCs of their own, not counted as media. red and
  /// ulpfec travel on the media SSRC and share its sequence numbers, so they count as media of
  /// their m= section (repair = false).
  bool repair = false;
};

/// The payload types of one SDP (every m=audio and m=video section). Malformed lines are
/// skipped; never throws. At most 128 entries (one per payload type; the first wins).
std::vector<RtpPayloadType> sdp_payload_types(std::string_view sdp);

}  // namespace callrelay::calls
