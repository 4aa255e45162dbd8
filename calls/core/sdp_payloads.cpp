// The RTP payload types of an SDP (RFC 8866): the relay's key from a packet's payload type to
// its kind and clock. The SDP comes from a client, so every line is checked and a bad one is
// skipped; nothing is trusted to be well formed.
#include "calls/core/sdp_payloads.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <charconv>
#include <cstddef>
#include <optional>
#include <utility>

namespace callrelay::calls {

namespace {

constexpr uint32_t kMaxPayloadType = 127;  // RFC 3550 section 5.1: PT is 7 bits

/// A static payload type of RFC 3551 sections 6 (tables 4 and 5), usable without a=rtpmap.
struct StaticType {
  uint8_t pt;
  bool video;
  uint32_t clock_rate;
};
constexpr std::array<StaticType, 24> kStaticTypes = {{
    {0, false, 8000},   {3, false, 8000},   {4, false, 8000},   {5, false, 8000},
    {6, false, 16000},  {7, false, 8000},   {8, false, 8000},   {9, false, 8000},
    {10, false, 44100}, {11, false, 44100}, {12, false, 8000},  {13, false, 8000},
    {14, false, 90000}, {15, false, 8000},  {16, false, 11025}, {17, false, 22050},
    {18, false, 8000},  {25, true, 90000},  {26, true, 90000},  {28, true, 90000},
    {31, true, 90000},  {32, true, 90000},  {33, true, 90000},  {34, true, 90000},
}};

enum class Section : uint8_t { kNone, kAudio, kVideo, kOther };

/// A decimal number of at most `max_digits` digits filling `text` exactly.
std::optional<uint32_t> number(std::string_view text, size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<uint8_t> payload_type(std::string_view text) {
  const auto v = number(text, 3);
  if (!v || *v > kMaxPayloadType) return std::nullopt;
  return static_cast<uint8_t>(*v);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// rtx (RFC 4588) and flexfec (RFC 8627; "flexfec-03" in older browsers) have SSRCs of their own.
bool is_repair(std::string_view encoding) {
  return iequals(encoding, "rtx") || iequals(encoding, "flexfec") ||
         iequals(encoding, "flexfec-03");
}

/// The next space-separated token of `rest`, removed from it.
std::string_view next_token(std::string_view& rest) {
  const size_t start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  const size_t end = std::min(rest.find(' '), rest.size());
  const std::string_view token = rest.substr(0, end);
  rest.remove_prefix(end);
  return token;
}

/// One m= section being read: its kind, the formats of its m= line, those that had a=rtpmap.
struct SectionState {
  Section kind = Section::kNone;
  std::bitset<kMaxPayloadType + 1> listed, mapped;
};

class Collector {
 public:
  void add(uint8_t pt, bool video, uint32_t clock_rate, bool repair) {
    if (seen_[pt]) return;  // the first wins (BUNDLE shares one payload type space)
    seen_[pt] = true;
    out_.push_back({pt, video, clock_rate, repair});
  }

  /// Ends a section: its listed static payload types that no a=rtpmap described.
  void end_section(const SectionState& s) {
    if (s.kind != Section::kAudio && s.kind != Section::kVideo) return;
    const bool video = s.kind == Section::kVideo;
    for (const StaticType& t : kStaticTypes) {
      if (s.listed[t.pt] && !s.mapped[t.pt] && t.video == video) {
        add(t.pt, video, t.clock_rate, false);
      }
    }
  }

  std::vector<RtpPayloadType> take() { return std::move(out_); }

 private:
  std::bitset<kMaxPayloadType + 1> seen_;
  std::vector<RtpPayloadType> out_;
};

/// "m=<media> <port> <proto> <fmt> ..." (RFC 8866 section 5.14).
SectionState read_media_line(std::string_view value) {
  SectionState s;
  const std::string_view media = next_token(value);
  s.kind = media == "audio"   ? Section::kAudio
           : media == "video" ? Section::kVideo
                              : Section::kOther;
  next_token(value);  // port
  const std::string_view proto = next_token(value);
  if (proto.find("RTP/") == std::string_view::npos) return s;  // formats are not RTP types
  for (std::string_view fmt = next_token(value); !fmt.empty(); fmt = next_token(value)) {
    if (const auto pt = payload_type(fmt)) s.listed[*pt] = true;
  }
  return s;
}

/// "a=rtpmap:<pt> <encoding>/<clock rate>[/<parameters>]" (RFC 8866 section 6.6).
void read_rtpmap(std::string_view value, SectionState& s, Collector& out) {
  const size_t space = value.find(' ');
  if (space == std::string_view::npos) return;
  const auto pt = payload_type(value.substr(0, space));
  std::string_view rest = value.substr(space + 1);
  const size_t slash = rest.find('/');
  if (!pt || slash == 0 || slash == std::string_view::npos) return;
  const std::string_view encoding = rest.substr(0, slash);
  if (encoding.find(' ') != std::string_view::npos) return;
  rest.remove_prefix(slash + 1);
  const size_t params = rest.find('/');
  const auto rate = number(rest.substr(0, params), 10);
  if (!rate || *rate == 0) return;
  if (params != std::string_view::npos && !number(rest.substr(params + 1), 3)) return;
  s.mapped[*pt] = true;
  out.add(*pt, s.kind == Section::kVideo, *rate, is_repair(encoding));
}

}  // namespace

std::vector<RtpPayloadType> sdp_payload_types(std::string_view sdp) {
  Collector out;
  SectionState section;
  size_t pos = 0;
  while (pos < sdp.size()) {
    const size_t nl = std::min(sdp.find('\n', pos), sdp.size());
    std::string_view line = sdp.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("m=")) {
      out.end_section(section);
      section = read_media_line(line.substr(2));
    } else if (line.starts_with("a=rtpmap:") &&
               (section.kind == Section::kAudio || section.kind == Section::kVideo)) {
      read_rtpmap(line.substr(9), section, out);
    }
  }
  out.end_section(section);
  return out.take();
}

}  // namespace callrelay::calls
