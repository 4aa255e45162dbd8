#include "relay/net/stream_framer.hpp"

#include <algorithm>
#include <cstring>

#include "relay/stun/channel_data.hpp"

namespace callrelay::net {

StreamFramer::StreamFramer(size_t max_frame) : max_frame_(max_frame) {}

std::span<uint8_t> StreamFramer::write_area() {
  if (begin_ == end_) begin_ = end_ = 0;
  // Room for the whole partial frame (when its size is known) plus one read.
  const size_t need = std::max(wanted_, buffered()) + read_size_;
  if (buf_.size() - begin_ < need || buf_.size() - end_ < read_size_) {
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, buffered());
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() < need) buf_.resize(std::max(need, read_size_ + kMinRead));
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void StreamFramer::read_up_to(size_t bytes) { read_size_ = std::clamp(bytes, kMinRead, kMaxRead); }

bool StreamFramer::release() {
  if (buffered() > 0) return false;
  std::vector<uint8_t>().swap(buf_);
  begin_ = end_ = 0;
  read_size_ = kMinRead;
  return true;
}

void StreamFramer::commit(size_t n) { end_ += std::min(n, buf_.size() - end_); }

StreamFramer::Next StreamFramer::next() {
  if (failed_) return {Status::kGarbage, {}, 0};
  const std::span<const uint8_t> data(buf_.data() + begin_, buffered());
  const stun::FrameSize fs = stun::stream_frame_size(data);
  if (fs.error) {
    failed_ = true;
    return {Status::kGarbage, {}, 0};
  }
  if (fs.size > max_frame_) {
    failed_ = true;
    return {Status::kTooLarge, {}, fs.size};
  }
  wanted_ = fs.size;
  if (fs.size == 0 || data.size() < fs.size) return {Status::kNeedMore, {}, 0};
  begin_ += fs.size;
  wanted_ = 0;
  return {Status::kFrame, data.first(fs.size), 0};
}

std::span<const uint8_t> StreamFramer::take_buffered() {
  const std::span<const uint8_t> all(buf_.data() + begin_, buffered());
  begin_ = end_;
  wanted_ = 0;
  return all;
}

bool StreamSendQueue::push(std::span<const uint8_t> frame) {
  if (pending_.size() + frame.size() > limit_) return false;
  pending_.insert(pending_.end(), frame.begin(), frame.end());
  pending_ends_.push_back(pending_.size());
  return true;
}

std::span<const uint8_t> StreamSendQueue::begin_write() {
  pending_.swap(writing_);
  pending_.clear();
  pending_ends_.swap(writing_ends_);
  pending_ends_.clear();
  in_flight_ = true;
  return writing_;
}

void StreamSendQueue::complete() {
  writing_.clear();
  writing_ends_.clear();
  in_flight_ = false;
}

bool is_allocate_success(std::span<const uint8_t> frame) {
  return frame.size() >= 20 && frame[0] == 0x01 && frame[1] == 0x03 && frame[4] == 0x21 &&
         frame[5] == 0x12 && frame[6] == 0xA4 && frame[7] == 0x42;
}

}  // namespace callrelay::net
