// libFuzzer target: parse_channel_data on arbitrary datagrams. What parses is written again
// (header, payload, padding) and must parse back to the same channel and payload.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "relay/stun/channel_data.hpp"

namespace {

using namespace callrelay::stun;

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto cd = parse_channel_data({data, size});
  if (!cd) return 0;
  require(cd->channel >= kMinChannel && cd->channel <= kMaxChannelRfc5766);
  require(cd->payload.data() == data + kChannelDataHeaderSize);
  require(kChannelDataHeaderSize + cd->payload.size() <= size);
  require(size - kChannelDataHeaderSize - cd->payload.size() <= 3);

  static uint8_t buf[kChannelDataHeaderSize + 0x10000 + 3];
  const size_t len = cd->payload.size();
  write_channel_data_header(std::span(buf).first<kChannelDataHeaderSize>(), cd->channel,
                            static_cast<uint16_t>(len));
  if (len != 0) std::memcpy(buf + kChannelDataHeaderSize, cd->payload.data(), len);
  const size_t pad = (4 - len % 4) % 4;
  std::memset(buf + kChannelDataHeaderSize + len, 0, pad);
  for (size_t with_pad : {size_t{0}, pad}) {
    const auto again = parse_channel_data({buf, kChannelDataHeaderSize + len + with_pad});
    require(again.has_value());
    require(again->channel == cd->channel && again->payload.size() == len);
    require(std::memcmp(again->payload.data(), cd->payload.data(), len) == 0);
  }
  return 0;
}
