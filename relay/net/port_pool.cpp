#include "relay/net/port_pool.hpp"

#include <bit>

namespace callrelay::net {
namespace {

constexpr uint64_t kEvenBits = 0x5555555555555555ull;  // bits 0, 2, 4, ...: even ports
constexpr uint64_t kAll = ~0ull;

}  // namespace

PortPool::PortPool(uint16_t min, uint16_t max)
    : min_(min), max_(max < min ? min : max), base_(min & ~63u) {
  words_ = (static_cast<size_t>(max_) - base_) / 64 + 1;
  map_ = std::make_unique<std::atomic<uint64_t>[]>(words_);
  for (size_t w = 0; w < words_; ++w) {
    // Bits outside [min, max] are taken for good.
    uint64_t v = 0;
    for (size_t b = 0; b < 64; ++b) {
      const size_t port = base_ + w * 64 + b;
      if (port < min_ || port > max_) v |= 1ull << b;
    }
    map_[w].store(v, std::memory_order_relaxed);
  }
}

PortPool::Cursor PortPool::cursor(unsigned index, unsigned count, size_t start) const {
  const size_t bits = words_ * 64;
  return Cursor{((count == 0 ? 0 : bits / count * (index % count)) + start) % bits};
}

std::optional<uint16_t> PortPool::take(Cursor& cursor, bool even, bool pair) {
  const size_t start_word = (cursor.bit / 64) % words_;
  const size_t start_bit = cursor.bit % 64;
  // words_ + 1 visits: the first word again at the end for its bits below the cursor.
  for (size_t step = 0; step <= words_; ++step) {
    const size_t w = (start_word + step) % words_;
    uint64_t allowed = kAll;
    if (step == 0 && start_bit != 0) allowed = kAll << start_bit;            // at/after the cursor
    if (step == words_) allowed = start_bit == 0 ? 0 : ~(kAll << start_bit);  // the rest of it
    if (allowed == 0) continue;
    uint64_t cur = map_[w].load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t free = ~cur & allowed;
      uint64_t fit = free;
      if (pair) {
        fit = free & (free >> 1) & kEvenBits;  // an even bit whose odd neighbour is free too
      } else if (even) {
        fit = free & kEvenBits;
      }
      if (fit == 0) break;
      const int b = std::countr_zero(fit);
      const uint64_t mask = (pair ? 3ull : 1ull) << b;
      // acquire/release: a port handed from a releasing thread to a taking one carries the
      // releaser's writes (its socket closed) with it.
      if (map_[w].compare_exchange_weak(cur, cur | mask, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
        cursor.bit = (w * 64 + static_cast<size_t>(b) + (pair ? 2 : 1)) % (words_ * 64);
        return static_cast<uint16_t>(base_ + w * 64 + static_cast<size_t>(b));
      }
      // Another worker changed the word: look at it again.
    }
  }
  return std::nullopt;
}

void PortPool::release(uint16_t port) {
  if (!contains(port)) return;
  const size_t bit = bit_of(port);
  map_[bit / 64].fetch_and(~(1ull << (bit % 64)), std::memory_order_release);
}

bool PortPool::is_free(uint16_t port) const {
  if (!contains(port)) return false;
  const size_t bit = bit_of(port);
  return (map_[bit / 64].load(std::memory_order_acquire) & (1ull << (bit % 64))) == 0;
}

size_t PortPool::free_count() const {
  size_t n = 0;
  for (size_t w = 0; w < words_; ++w) {
    n += static_cast<size_t>(std::popcount(~map_[w].load(std::memory_order_relaxed)));
  }
  return n;
}

}  // namespace callrelay::net
