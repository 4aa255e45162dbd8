// libFuzzer target: stream_frame_size over arbitrary TCP/TLS byte streams. Cuts frames the way
// a stream session does, checks that the answer never depends on how much was buffered, and
// hands every frame to its parser. Then the same stream goes through a connection's
// StreamFramer in reads of varying sizes, with its read size raised and its buffer released
// between reads as a busy or idle connection's are: the same frames and the same end come out,
// within the framer's memory bound.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "relay/net/stream_framer.hpp"
#include "relay/stun/channel_data.hpp"
#include "relay/stun/message.hpp"

namespace {

using namespace callrelay::stun;
using callrelay::net::StreamFramer;

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

/// A small deterministic generator: the schedule of reads follows from the input itself.
struct Rng {
  uint64_t state;
  uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
};

enum class End { kNeedMore, kGarbage, kTooLarge };

/// The frames of `stream` a framer accepting frames up to `max_frame` bytes gives, and why it
/// stops.
End reference(std::span<const uint8_t> stream, size_t max_frame,
              std::vector<std::span<const uint8_t>>& frames) {
  for (;;) {
    const auto fs = stream_frame_size(stream);
    if (fs.error) return End::kGarbage;
    if (fs.size > max_frame) return End::kTooLarge;
    if (fs.size == 0 || fs.size > stream.size()) return End::kNeedMore;
    frames.push_back(stream.first(fs.size));
    stream = stream.subspan(fs.size);
  }
}

void through_framer(std::span<const uint8_t> stream) {
  Rng rng{stream.size() * 0x9E3779B97F4A7C15ULL + (stream.empty() ? 0 : stream[0])};
  static constexpr size_t kMaxFrames[] = {64, 1500, 4100, 65552};
  const size_t max_frame = kMaxFrames[rng.next() % 4];
  std::vector<std::span<const uint8_t>> frames;
  const End end = reference(stream, max_frame, frames);
  const size_t bound = std::max(max_frame, StreamFramer::kMinRead) + StreamFramer::kMaxRead;

  StreamFramer f(max_frame);
  size_t pos = 0, taken = 0;
  for (;;) {
    const uint32_t what = rng.next() % 16;
    if (what == 0) f.read_up_to(rng.next() % (2 * StreamFramer::kMaxRead));
    if (what == 1) {
      const bool empty = f.buffered() == 0;
      require(f.release() == empty);
    }
    const std::span<uint8_t> area = f.write_area();
    require(area.size() >= StreamFramer::kMinRead);
    require(f.capacity() <= bound);
    if (pos == stream.size()) break;
    const size_t want = rng.next() % 4 == 0 ? area.size() : 1 + rng.next() % 2000;
    const size_t n = std::min({want, area.size(), stream.size() - pos});
    std::memcpy(area.data(), stream.data() + pos, n);
    f.commit(n);
    pos += n;
    for (;;) {
      const StreamFramer::Next next = f.next();
      if (next.status == StreamFramer::Status::kNeedMore) break;
      require(taken == frames.size() || next.status == StreamFramer::Status::kFrame);
      switch (next.status) {
        case StreamFramer::Status::kFrame:
          require(taken < frames.size());
          require(next.frame.size() == frames[taken].size() &&
                  std::equal(next.frame.begin(), next.frame.end(), frames[taken].begin()));
          ++taken;
          continue;
        case StreamFramer::Status::kGarbage:
          require(end == End::kGarbage);
          return;
        case StreamFramer::Status::kTooLarge:
          require(end == End::kTooLarge && next.size > max_frame);
          return;
        case StreamFramer::Status::kNeedMore:
          break;
      }
    }
  }
  require(taken == frames.size() && end == End::kNeedMore);
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
  through_framer({data, size});
  return 0;
}
