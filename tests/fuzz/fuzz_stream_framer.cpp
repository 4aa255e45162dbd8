// libFuzzer target: stream_frame_size over arbitrary TCP/TLS byte streams. Cuts frames the way
// a stream session does, checks that the answer never depends on how much was buffered, and
// hands every frame to its parser.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "relay/stun/channel_data.hpp"
#include "relay/stun/message.hpp"

namespace {

using namespace callrelay::stun;

void require(bool condition) {
  if (!condition) std::abort();
}

/// Any shorter prefix either asks for more bytes or gives the same answer.
void check_prefixes(std::span<const uint8_t> stream, const FrameSize& full) {
  const size_t limit = std::min<size_t>(stream.size(), 24);
  for (size_t k = 0; k < limit; ++k) {
    const auto fs = stream_frame_size(stream.first(k));
    if (fs.error) require(full.error);
    if (fs.size != 0) require(fs.size == full.size && !full.error);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> stream(data, size);
  while (!stream.empty()) {
    const auto fs = stream_frame_size(stream);
    check_prefixes(stream, fs);
    if (fs.error || fs.size == 0 || fs.size > stream.size()) break;
    const auto frame = stream.first(fs.size);
    if (looks_like_channel_data(frame)) {
      // A frame the framer accepted as ChannelData is one the datagram parser accepts too.
      const auto cd = parse_channel_data(frame);
      require(cd.has_value());
      require(fs.size - kChannelDataHeaderSize - cd->payload.size() <= 3);
    } else {
      require(looks_like_stun(frame));
      (void)MessageView::parse(frame);
    }
    stream = stream.subspan(fs.size);
  }
  return 0;
}
