// StreamFramer and StreamSendQueue: every split point of a mixed stream, many frames per read,
// oversized frames, garbage, padding, the memory bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "relay/net/stream_framer.hpp"
#include "relay/stun/builder.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::net {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes stun_message(uint16_t padding_attr_len, uint8_t tag) {
  Bytes out(2048);
  stun::TransactionId tid{};
  tid.fill(tag);
  stun::MessageBuilder b(out, stun::Method::kBinding, stun::Class::kRequest, tid);
  if (padding_attr_len > 0) b.add_bytes(0x8026, Bytes(padding_attr_len, tag));  // PADDING
  out.resize(b.finish());
  return out;
}

/// ChannelData with `len` payload bytes and the stream padding (zero bytes) after it.
Bytes channel_data(uint16_t channel, uint16_t len, uint8_t fill) {
  Bytes out(4 + len, fill);
  stun::write_channel_data_header(std::span<uint8_t, 4>(out.data(), 4), channel, len);
  out.resize((out.size() + 3) & ~size_t{3}, 0);
  return out;
}

/// Feeds `stream` in reads of the given sizes (the last one repeated) and collects frames.
struct Feed {
  std::vector<Bytes> frames;
  StreamFramer::Status last = StreamFramer::Status::kNeedMore;
};
Feed feed(StreamFramer& f, const Bytes& stream, const std::vector<size_t>& reads) {
  Feed out;
  size_t pos = 0, r = 0;
  while (pos < stream.size()) {
    const size_t want = reads[std::min(r++, reads.size() - 1)];
    const auto area = f.write_area();
    EXPECT_GE(area.size(), StreamFramer::kMinRead);
    const size_t n = std::min({want, area.size(), stream.size() - pos});
    std::memcpy(area.data(), stream.data() + pos, n);
    f.commit(n);
    pos += n;
    for (;;) {
      const auto next = f.next();
      out.last = next.status;
      if (next.status != StreamFramer::Status::kFrame) break;
      out.frames.emplace_back(next.frame.begin(), next.frame.end());
    }
    if (out.last != StreamFramer::Status::kNeedMore) break;
  }
  return out;
}

std::vector<Bytes> corpus() {
  return {stun_message(0, 1),
          channel_data(0x4001, 5, 0xAA),
          channel_data(0x4FFF, 0, 0),
          channel_data(0x7FFF, 8, 0xBB),
          stun_message(1000, 2),
          channel_data(0x4002, 1, 0xCC),
          channel_data(0x4003, 1400, 0xDD),
          stun_message(7, 3)};
}

Bytes concat(const std::vector<Bytes>& frames) {
  Bytes all;
  for (const auto& f : frames) all.insert(all.end(), f.begin(), f.end());
  return all;
}

TEST(StreamFramer, EverySplitPointYieldsTheSameFrames) {
  const auto frames = corpus();
  const Bytes stream = concat(frames);
  for (size_t split = 0; split <= stream.size(); ++split) {
    StreamFramer f(65552);
    const Feed got = feed(f, stream, {split == 0 ? stream.size() : split, stream.size()});
    ASSERT_EQ(got.frames, frames) << "split at byte " << split;
    EXPECT_EQ(f.buffered(), 0u);
  }
}

TEST(StreamFramer, ByteAtATime) {
  const auto frames = corpus();
  StreamFramer f(65552);
  const Feed got = feed(f, concat(frames), {1});
  EXPECT_EQ(got.frames, frames);
  EXPECT_EQ(got.last, StreamFramer::Status::kNeedMore);
}

TEST(StreamFramer, TakeBufferedHandsOverWhatFollowsAFrame) {
  // RFC 6062 section 5.4: once a ConnectionBind frame is answered the connection carries raw
  // bytes; those read together with the frame must not be lost or framed.
  const Bytes bind = stun_message(0, 7);
  const Bytes raw = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02};  // not STUN, not ChannelData
  Bytes stream = bind;
  stream.insert(stream.end(), raw.begin(), raw.end());
  StreamFramer f(65552);
  const auto area = f.write_area();
  std::memcpy(area.data(), stream.data(), stream.size());
  f.commit(stream.size());
  const auto first = f.next();
  ASSERT_EQ(first.status, StreamFramer::Status::kFrame);
  EXPECT_EQ(Bytes(first.frame.begin(), first.frame.end()), bind);
  const auto rest = f.take_buffered();
  EXPECT_EQ(Bytes(rest.begin(), rest.end()), raw);
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_TRUE(f.take_buffered().empty());
  // Later reads come out whole too, whatever they contain.
  const auto again = f.write_area();
  std::memcpy(again.data(), raw.data(), 3);
  f.commit(3);
  const auto next = f.take_buffered();
  EXPECT_EQ(Bytes(next.begin(), next.end()), Bytes(raw.begin(), raw.begin() + 3));
}

TEST(StreamFramer, ManyFramesInOneRead) {
  std::vector<Bytes> frames;
  for (int i = 0; i < 2000; ++i) {
    frames.push_back(i % 3 == 0 ? stun_message(static_cast<uint16_t>(i % 40), uint8_t(i))
                                : channel_data(0x4000 + uint16_t(i % 100), uint16_t(i % 17), 1));
  }
  StreamFramer f(65552);
  // Reads as large as the framer offers: each carries hundreds of frames.
  const Feed got = feed(f, concat(frames), {1 << 20});
  EXPECT_EQ(got.frames, frames);
}

TEST(StreamFramer, ChannelDataWaitsForItsPadding) {
  StreamFramer f(65552);
  const Bytes cd = channel_data(0x4001, 5, 0xAA);  // 4 + 5 + 3 padding
  ASSERT_EQ(cd.size(), 12u);
  auto area = f.write_area();
  std::memcpy(area.data(), cd.data(), 9);  // header and payload, no padding yet
  f.commit(9);
  EXPECT_EQ(f.next().status, StreamFramer::Status::kNeedMore);
  area = f.write_area();
  std::memcpy(area.data(), cd.data() + 9, 3);
  f.commit(3);
  const auto next = f.next();
  ASSERT_EQ(next.status, StreamFramer::Status::kFrame);
  EXPECT_EQ(next.frame.size(), 12u);
  EXPECT_EQ(stun::parse_channel_data(next.frame)->payload.size(), 5u);
}

TEST(StreamFramer, OversizedFramesAreRefused) {
  const size_t max = 548;
  for (const Bytes& big : {channel_data(0x4001, 545, 1), stun_message(532, 1)}) {
    StreamFramer f(max);
    const Feed got = feed(f, big, {8});  // known from the header alone
    EXPECT_TRUE(got.frames.empty());
    EXPECT_EQ(got.last, StreamFramer::Status::kTooLarge) << big.size();
    EXPECT_EQ(f.next().status, StreamFramer::Status::kGarbage) << "stays failed";
  }
  // Exactly the maximum passes.
  StreamFramer f(max);
  const Bytes edge = channel_data(0x4001, 544, 1);
  ASSERT_EQ(edge.size(), max);
  EXPECT_EQ(feed(f, edge, {100}).frames.size(), 1u);
  // A ChannelData header announcing 65535 bytes with the largest maximum allowed waits.
  StreamFramer g(65552);
  const Bytes head = {0x40, 0x01, 0xFF, 0xFF};
  EXPECT_EQ(feed(g, head, {4}).last, StreamFramer::Status::kNeedMore);
}

TEST(StreamFramer, GarbageIsRefused) {
  const std::vector<Bytes> garbage = {
      {0x80, 0x60, 0x00, 0x01},                                      // RTP
      {0xC0, 0x00, 0x00, 0x00},                                      // reserved first bits 11
      {0x16, 0x03, 0x01, 0x00, 0x50, 0x01, 0x00, 0x00, 0x4C},        // a TLS ClientHello
      {0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x43, 0, 0, 0, 0},  // bad magic cookie
      {0x00, 0x01, 0x00, 0x05, 0x21, 0x12, 0xA4, 0x42},              // STUN length not 4-aligned
  };
  for (const Bytes& g : garbage) {
    StreamFramer f(65552);
    Bytes stream = stun_message(0, 9);  // a good frame first, then garbage
    stream.insert(stream.end(), g.begin(), g.end());
    const Feed got = feed(f, stream, {stream.size()});
    EXPECT_EQ(got.frames.size(), 1u);
    EXPECT_EQ(got.last, StreamFramer::Status::kGarbage) << int(g[0]);
  }
}

TEST(StreamFramer, MemoryStaysBounded) {
  const size_t max = 2048;
  StreamFramer f(max);
  std::vector<Bytes> frames;
  for (int i = 0; i < 500; ++i) frames.push_back(channel_data(0x4001, uint16_t(i * 7 % 2000), 1));
  const Feed got = feed(f, concat(frames), {3000, 1, 5000, 7});
  EXPECT_EQ(got.frames, frames);
  EXPECT_LE(f.capacity(), std::max(max + StreamFramer::kMinRead, 2 * StreamFramer::kMinRead));
  // With the largest maximum too: big frames grow the buffer only to what they need.
  StreamFramer g(65552);
  const std::vector<Bytes> big = {channel_data(0x4001, 65535, 1), channel_data(0x4001, 3, 1)};
  EXPECT_EQ(feed(g, concat(big), {1000, 65536}).frames, big);
  EXPECT_LE(g.capacity(), 65552 + StreamFramer::kMinRead);
}

TEST(StreamFramer, LargerReadsStayBoundedAndReleaseWhenEmpty) {
  const size_t max = 2048;
  StreamFramer f(max);
  EXPECT_TRUE(f.release()) << "nothing held yet";
  const size_t first = f.write_area().size();
  EXPECT_GE(first, StreamFramer::kMinRead);
  EXPECT_LT(first, 16645u);

  // A whole TLS input's plaintext fits in one area from the next write_area() on, with a
  // partial frame in front of it, and frames still come out whole and in order.
  f.read_up_to(16645);
  std::vector<Bytes> frames;
  for (int i = 0; i < 300; ++i) frames.push_back(channel_data(0x4001, uint16_t(i * 13 % 1500), 2));
  const Bytes stream = concat(frames);
  std::vector<Bytes> got;
  size_t pos = 0;
  while (pos < stream.size()) {
    const auto area = f.write_area();
    ASSERT_GE(area.size(), 16645u);
    const size_t n = std::min({area.size(), stream.size() - pos, size_t{16645}});
    std::memcpy(area.data(), stream.data() + pos, n);
    f.commit(n);
    pos += n;
    for (auto next = f.next(); next.status == StreamFramer::Status::kFrame; next = f.next()) {
      got.emplace_back(next.frame.begin(), next.frame.end());
    }
  }
  EXPECT_EQ(got, frames);
  EXPECT_LE(f.capacity(), std::max(max, StreamFramer::kMinRead) + 16645);

  // The read size is clamped to kMaxRead.
  f.read_up_to(size_t{1} << 30);
  EXPECT_GE(f.write_area().size(), StreamFramer::kMaxRead);
  EXPECT_LE(f.capacity(), std::max(max, StreamFramer::kMinRead) + StreamFramer::kMaxRead);

  // A partial frame keeps the buffer; once it is taken, the buffer goes and reads are small
  // again.
  const Bytes half = channel_data(0x4001, 100, 3);
  auto area = f.write_area();
  std::memcpy(area.data(), half.data(), 50);
  f.commit(50);
  EXPECT_EQ(f.next().status, StreamFramer::Status::kNeedMore);
  EXPECT_FALSE(f.release());
  area = f.write_area();
  std::memcpy(area.data(), half.data() + 50, half.size() - 50);
  f.commit(half.size() - 50);
  const auto whole = f.next();
  ASSERT_EQ(whole.status, StreamFramer::Status::kFrame);
  EXPECT_EQ(Bytes(whole.frame.begin(), whole.frame.end()), half);
  EXPECT_TRUE(f.release());
  EXPECT_EQ(f.capacity(), 0u);
  EXPECT_EQ(f.write_area().size(), first);
}

TEST(StreamSendQueue, BoundedAndOrdered) {
  StreamSendQueue q(10);
  const Bytes a = {1, 2, 3, 4}, b = {5, 6, 7, 8}, c = {9, 10, 11, 12};
  EXPECT_FALSE(q.ready());
  EXPECT_TRUE(q.push(a));
  EXPECT_TRUE(q.push(b));
  EXPECT_FALSE(q.push(c)) << "12 bytes exceed the limit of 10";
  ASSERT_TRUE(q.ready());
  const auto w = q.begin_write();
  EXPECT_EQ(Bytes(w.begin(), w.end()), (Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
  const auto ends = q.writing_frame_ends();
  EXPECT_EQ(std::vector<size_t>(ends.begin(), ends.end()), (std::vector<size_t>{4, 8}));
  EXPECT_FALSE(q.ready());
  EXPECT_TRUE(q.in_flight());
  EXPECT_TRUE(q.push(c)) << "pending space is free again while the write is in flight";
  EXPECT_FALSE(q.ready()) << "one write at a time";
  q.complete();
  ASSERT_TRUE(q.ready());
  const auto w2 = q.begin_write();
  EXPECT_EQ(Bytes(w2.begin(), w2.end()), c);
  q.complete();
  EXPECT_FALSE(q.ready());
}

TEST(StreamFramer, RecognizesAllocateSuccess) {
  Bytes out(256);
  stun::TransactionId tid{};
  stun::MessageBuilder b(out, stun::Method::kAllocate, stun::Class::kSuccess, tid);
  out.resize(b.finish());
  EXPECT_TRUE(is_allocate_success(out));
  out[1] = 0x13;  // error response
  EXPECT_FALSE(is_allocate_success(out));
  EXPECT_FALSE(is_allocate_success(stun_message(0, 1)));
}

}  // namespace
}  // namespace callrelay::net
