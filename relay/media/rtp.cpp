#include "relay/media/rtp.hpp"

namespace callrelay::media {
namespace {

uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint32_t read_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

constexpr size_t kRtpFixedHeader = 12;  // RFC 3550 section 5.1
constexpr size_t kStunHeader = 20;      // RFC 8489 section 5
constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr uint16_t kBindingRequest = 0x0001;
constexpr uint16_t kBindingSuccess = 0x0101;
constexpr uint16_t kBindingError = 0x0111;

/// RFC 3551 tables 4 and 5 by payload type; reserved and unassigned numbers stay unknown.
constexpr std::array<PayloadType, 35> kStaticTypes = [] {
  using Role = PayloadType::Role;
  std::array<PayloadType, 35> t{};
  // PCMU, GSM, G723, DVI4, LPC, PCMA, G722 (8000 Hz, section 4.5.2), QCELP, CN, G728, G729
  for (const size_t pt : {0, 3, 4, 5, 7, 8, 9, 12, 13, 15, 18}) t[pt] = {Role::kAudio, 8000};
  t[6] = {Role::kAudio, 16000};                           // DVI4
  t[10] = t[11] = {Role::kAudio, 44100};                  // L16
  t[14] = {Role::kAudio, 90000};                          // MPA
  t[16] = {Role::kAudio, 11025};                          // DVI4
  t[17] = {Role::kAudio, 22050};                          // DVI4
  for (const size_t pt : {25, 26, 28, 31, 32, 33, 34}) {  // CelB, JPEG, nv, H261, MPV,
    t[pt] = {Role::kVideo, 90000};                        // MP2T, H263
  }
  return t;
}();

}  // namespace

Demux demultiplex(std::span<const uint8_t> datagram) {
  if (datagram.empty()) return Demux::kOther;
  const uint8_t b = datagram[0];
  if (b <= 3) return Demux::kStun;
  if (b >= 20 && b <= 63) return Demux::kDtls;
  if (b >= 128 && b <= 191) {
    // RFC 5761 section 4: the second byte is the RTCP packet type (192..223), or the RTP
    // marker bit and payload type (payload types 64..95 are avoided with rtcp-mux).
    if (datagram.size() >= 2 && datagram[1] >= 192 && datagram[1] <= 223) return Demux::kRtcp;
    return Demux::kRtp;
  }
  return Demux::kOther;
}

std::optional<RtpHeader> parse_rtp(std::span<const uint8_t> datagram) {
  const size_t size = datagram.size();
  if (size < kRtpFixedHeader) return std::nullopt;
  const uint8_t* p = datagram.data();
  if ((p[0] >> 6) != 2) return std::nullopt;
  const bool padding = (p[0] & 0x20) != 0;
  const bool extension = (p[0] & 0x10) != 0;
  const size_t csrc_count = p[0] & 0x0f;

  size_t offset = kRtpFixedHeader + 4 * csrc_count;
  if (offset > size) return std::nullopt;
  if (extension) {
    // RFC 3550 section 5.3.1: 16-bit profile field, 16-bit length in 32-bit words.
    if (offset + 4 > size) return std::nullopt;
    const size_t words = read_u16(p + offset + 2);
    offset += 4 + 4 * words;
    if (offset > size) return std::nullopt;
  }
  size_t payload = size - offset;
  if (padding) {
    // The last octet counts the padding octets, itself included.
    const size_t count = p[size - 1];
    if (count == 0 || count > payload) return std::nullopt;
    payload -= count;
  }

  RtpHeader h;
  h.marker = (p[1] & 0x80) != 0;
  h.payload_type = static_cast<uint8_t>(p[1] & 0x7f);
  h.seq = read_u16(p + 2);
  h.timestamp = read_u32(p + 4);
  h.ssrc = read_u32(p + 8);
  h.payload_size = payload;
  return h;
}

std::optional<BindingMessage> parse_binding(std::span<const uint8_t> datagram) {
  if (datagram.size() < kStunHeader) return std::nullopt;
  const uint8_t* p = datagram.data();
  if ((p[0] & 0xc0) != 0) return std::nullopt;
  if (read_u32(p + 4) != kMagicCookie) return std::nullopt;
  const size_t length = read_u16(p + 2);
  if (length % 4 != 0 || kStunHeader + length > datagram.size()) return std::nullopt;

  BindingMessage m;
  const uint16_t type = read_u16(p);
  if (type == kBindingRequest) {
    m.cls = BindingMessage::Class::kRequest;
  } else if (type == kBindingSuccess || type == kBindingError) {
    m.cls = BindingMessage::Class::kResponse;
  } else {
    return std::nullopt;
  }
  for (size_t i = 0; i < m.transaction.size(); ++i) m.transaction[i] = p[8 + i];
  return m;
}

PayloadType static_payload_type(uint8_t payload_type) {
  return payload_type < kStaticTypes.size() ? kStaticTypes[payload_type] : PayloadType{};
}

}  // namespace callrelay::media
