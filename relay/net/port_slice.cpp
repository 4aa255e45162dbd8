#include "relay/net/port_slice.hpp"

namespace callrelay::net {
namespace {
constexpr uint8_t kFree = 1;    // not taken
constexpr uint8_t kInRing = 2;  // has an entry in the ring (possibly stale: taken as a pair)
}  // namespace

PortSlice::PortSlice(uint16_t min, uint16_t max, unsigned index, unsigned count)
    : min_(min), max_(max < min ? min : max), index_(index), count_(count == 0 ? 1 : count) {
  state_.assign(static_cast<size_t>(max_ - min_) + 1, 0);
  for (uint32_t p = min_; p <= max_; ++p) {
    if (owns(static_cast<uint16_t>(p))) ++owned_;
  }
  ring_.resize(owned_ == 0 ? 1 : owned_);
  for (uint32_t p = min_; p <= max_; ++p) {
    if (!owns(static_cast<uint16_t>(p))) continue;
    state_[slot(static_cast<uint16_t>(p))] = kFree;
    push(static_cast<uint16_t>(p));
    ++free_count_;
  }
}

bool PortSlice::owns(uint16_t port) const {
  return port >= min_ && port <= max_ && (port / 2u) % count_ == index_;
}

bool PortSlice::is_free(uint16_t port) const {
  return owns(port) && (state_[slot(port)] & kFree) != 0;
}

bool PortSlice::pop(uint16_t& port) {
  if (len_ == 0) return false;
  port = ring_[head_];
  head_ = (head_ + 1) % ring_.size();
  --len_;
  state_[slot(port)] = static_cast<uint8_t>(state_[slot(port)] & ~kInRing);
  return true;
}

void PortSlice::push(uint16_t port) {
  uint8_t& st = state_[slot(port)];
  if ((st & kInRing) != 0) return;  // its existing entry will serve
  ring_[(head_ + len_) % ring_.size()] = port;
  ++len_;
  st = static_cast<uint8_t>(st | kInRing);
}

std::optional<uint16_t> PortSlice::take(bool even, bool pair) {
  const bool need_even = even || pair;
  for (size_t scanned = 0; scanned < kMaxScan; ++scanned) {
    uint16_t p = 0;
    if (!pop(p)) return std::nullopt;
    if ((state_[slot(p)] & kFree) == 0) continue;  // stale entry: taken as the odd half of a pair
    const bool fits = (!need_even || p % 2 == 0) &&
                      (!pair || (p < max_ && is_free(static_cast<uint16_t>(p + 1))));
    if (!fits) {
      push(p);  // rotate: keep it for a later caller
      continue;
    }
    state_[slot(p)] = static_cast<uint8_t>(state_[slot(p)] & ~kFree);
    --free_count_;
    if (pair) {
      const auto q = static_cast<uint16_t>(p + 1);
      state_[slot(q)] = static_cast<uint8_t>(state_[slot(q)] & ~kFree);
      --free_count_;
    }
    return p;
  }
  return std::nullopt;
}

void PortSlice::release(uint16_t port) {
  if (!owns(port) || (state_[slot(port)] & kFree) != 0) return;
  state_[slot(port)] = static_cast<uint8_t>(state_[slot(port)] | kFree);
  ++free_count_;
  push(port);
}

}  // namespace callrelay::net
