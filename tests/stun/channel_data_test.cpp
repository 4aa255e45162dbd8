// ChannelData parsing (with UDP padding) and the TCP/TLS stream framer, fed a stream split at
// every byte boundary, byte by byte, and all at once.
#include "relay/stun/channel_data.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "relay/stun/builder.hpp"
#include "test_util.hpp"

namespace callrelay::stun {
namespace {

using test::str;

std::vector<uint8_t> channel_data(uint16_t channel, size_t len, size_t padding) {
  std::vector<uint8_t> b(kChannelDataHeaderSize + len + padding, 0);
  write_channel_data_header(std::span(b).first<kChannelDataHeaderSize>(), channel,
                            static_cast<uint16_t>(len));
  for (size_t i = 0; i < len; ++i) b[kChannelDataHeaderSize + i] = static_cast<uint8_t>(0x30 + i);
  return b;
}

ParseError error_of(const std::vector<uint8_t>& b) {
  ParseError err{};
  EXPECT_FALSE(parse_channel_data(b, &err));
  return err;
}

TEST(ChannelData, HeaderIsChannelThenLength) {
  std::array<uint8_t, 4> h{};
  write_channel_data_header(h, 0x4001, 0x0102);
  EXPECT_EQ(h, (std::array<uint8_t, 4>{0x40, 0x01, 0x01, 0x02}));
}

TEST(ChannelData, ParsesWithUpToThreePaddingBytes) {
  for (size_t len : {0, 1, 2, 3, 4, 5, 160, 1200}) {
    for (size_t pad = 0; pad <= 3; ++pad) {
      const auto b = channel_data(0x4abc, len, pad);
      ParseError err{};
      const auto cd = parse_channel_data(b, &err);
      ASSERT_TRUE(cd) << len << "+" << pad << ": " << to_string(err);
      EXPECT_EQ(cd->channel, 0x4abc);
      EXPECT_EQ(cd->payload.size(), len);
      EXPECT_EQ(str(cd->payload), str(std::span(b).subspan(kChannelDataHeaderSize, len)));
    }
    EXPECT_EQ(error_of(channel_data(0x4abc, len, 4)), ParseError::kBadLength) << len;
  }
}

TEST(ChannelData, ChannelRange) {
  EXPECT_TRUE(parse_channel_data(channel_data(kMinChannel, 1, 0)));
  EXPECT_TRUE(parse_channel_data(channel_data(kMaxChannel, 1, 0)));
  // RFC 5766 numbers frame too (the core decides whether it binds them).
  EXPECT_TRUE(parse_channel_data(channel_data(0x5000, 1, 0)));
  EXPECT_TRUE(parse_channel_data(channel_data(kMaxChannelRfc5766, 1, 0)));
  for (const uint16_t bad : std::initializer_list<uint16_t>{0x0000, 0x3FFF, 0x8000, 0xFFFF}) {
    EXPECT_EQ(error_of(channel_data(bad, 1, 0)), ParseError::kBadChannelNumber) << bad;
  }
}

TEST(ChannelData, LengthPastTheDatagramIsTooShort) {
  const auto full = channel_data(0x4000, 10, 2);
  for (size_t n = 0; n < kChannelDataHeaderSize + 10; ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_EQ(error_of(cut), ParseError::kTooShort) << n;
  }
  auto lying = channel_data(0x4000, 10, 0);
  lying[2] = 0xFF;
  lying[3] = 0xFF;
  EXPECT_EQ(error_of(lying), ParseError::kTooShort);
}

// ---- Stream framing ---------------------------------------------------------------------

/// A test reassembler: appends bytes and cuts every complete frame off the front.
struct Reassembler {
  std::vector<uint8_t> buffer;
  std::vector<std::vector<uint8_t>> frames;
  bool error = false;

  void feed(std::span<const uint8_t> bytes) {
    buffer.insert(buffer.end(), bytes.begin(), bytes.end());
    while (!error) {
      const auto fs = stream_frame_size(buffer);
      if (fs.error) {
        error = true;
        return;
      }
      if (fs.size == 0 || fs.size > buffer.size()) return;
      frames.emplace_back(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(fs.size));
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(fs.size));
    }
  }
};

std::vector<uint8_t> stun_frame(Method m, std::string_view software) {
  std::vector<uint8_t> buf(256);
  MessageBuilder mb(buf, m, Class::kRequest, TransactionId{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2});
  if (!software.empty()) mb.add_string(attr::kSoftware, software);
  mb.add_fingerprint();
  buf.resize(mb.finish());
  return buf;
}

/// Frames as they sit on a stream: ChannelData padded to 4 (RFC 8656 section 12.5).
std::vector<std::vector<uint8_t>> sample_frames() {
  std::vector<std::vector<uint8_t>> frames;
  frames.push_back(stun_frame(Method::kAllocate, "callrelay"));
  for (size_t len = 0; len <= 5; ++len) {
    frames.push_back(channel_data(static_cast<uint16_t>(0x4000 + len), len, (4 - len % 4) % 4));
  }
  frames.push_back(stun_frame(Method::kBinding, ""));
  frames.push_back(channel_data(kMaxChannel, 1200, 0));
  frames.push_back(stun_frame(Method::kRefresh, "x"));
  return frames;
}

std::vector<uint8_t> concat(const std::vector<std::vector<uint8_t>>& frames) {
  std::vector<uint8_t> out;
  for (const auto& f : frames) out.insert(out.end(), f.begin(), f.end());
  return out;
}

TEST(StreamFraming, CoalescedFramesComeApart) {
  const auto frames = sample_frames();
  Reassembler r;
  r.feed(concat(frames));
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.frames, frames);
  EXPECT_TRUE(r.buffer.empty());
  // Each cut frame parses as what it is.
  for (const auto& f : r.frames) {
    if (looks_like_stun(f)) {
      EXPECT_TRUE(MessageView::parse(f));
    } else {
      EXPECT_TRUE(parse_channel_data(f));
    }
  }
}

TEST(StreamFraming, SplitAtEveryByteBoundary) {
  const auto frames = sample_frames();
  const auto stream = concat(frames);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    Reassembler r;
    r.feed(std::span(stream).first(cut));
    r.feed(std::span(stream).subspan(cut));
    ASSERT_FALSE(r.error) << cut;
    ASSERT_EQ(r.frames, frames) << cut;
  }
}

TEST(StreamFraming, ByteByByte) {
  const auto frames = sample_frames();
  const auto stream = concat(frames);
  Reassembler r;
  for (const uint8_t byte : stream) r.feed(std::span(&byte, 1));
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.frames, frames);
}

TEST(StreamFraming, NeedsMoreUntilTheLengthIsKnown) {
  const auto stun = stun_frame(Method::kBinding, "abc");
  for (size_t n = 0; n < 8; ++n) {
    const auto fs = stream_frame_size(std::span(stun).first(n));
    EXPECT_FALSE(fs.error) << n;
    EXPECT_EQ(fs.size, 0u) << n;
  }
  EXPECT_EQ(stream_frame_size(std::span(stun).first(8)).size, stun.size());
  const auto cd = channel_data(0x4001, 5, 3);
  for (size_t n = 0; n < 4; ++n) EXPECT_EQ(stream_frame_size(std::span(cd).first(n)).size, 0u);
  EXPECT_EQ(stream_frame_size(std::span(cd).first(4)).size, 12u);
}

TEST(StreamFraming, GarbageIsAnError) {
  const std::vector<std::vector<uint8_t>> garbage = {
      {0x80},                                            // top bits 10
      {0xC0, 0, 0, 0},                                   // top bits 11
      {0x00, 0x01, 0x00, 0x03, 0x21, 0x12, 0xA4, 0x42},  // STUN length not a multiple of 4
      {0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x43},  // wrong magic cookie
  };
  for (size_t i = 0; i < garbage.size(); ++i) {
    EXPECT_TRUE(stream_frame_size(garbage[i]).error) << i;
  }
  Reassembler r;
  r.feed(std::vector<uint8_t>{0x40, 0x00, 0x00, 0x00, 0x90});
  EXPECT_EQ(r.frames.size(), 1u);
  EXPECT_TRUE(r.error);
}

}  // namespace
}  // namespace callrelay::stun
