// Token bucket arithmetic (units of 1/8000 byte: a bit rate refills `bps` units per ms).
#include "relay/core/bandwidth.hpp"

#include <algorithm>
#include <limits>

namespace callrelay::core {

Rate make_rate(uint64_t bps, uint32_t burst_ms) {
  if (bps == 0) return {};
  // Config bounds keep bps * burst_ms far below 2^63 (bps <= 10^12, burst_ms <= 10^4).
  const uint64_t wanted = bps * burst_ms;
  const uint64_t floor = kMinBurstBytes * static_cast<uint64_t>(kUnitsPerByte);
  return {bps, static_cast<int64_t>(std::max(wanted, floor))};
}

int64_t refill_units(const Rate& r, TimeMs elapsed_ms) {
  if (r.off() || elapsed_ms <= 0) return 0;
  // Past the time that fills an empty bucket, more time adds nothing: no overflow.
  const auto full_after = static_cast<TimeMs>(static_cast<uint64_t>(r.burst_units) / r.bps) + 1;
  if (elapsed_ms >= full_after) return r.burst_units;
  return static_cast<int64_t>(r.bps * static_cast<uint64_t>(elapsed_ms));
}

TimeMs wait_ms(const Rate& r, int64_t debt_units) {
  if (r.off() || debt_units <= 0) return 0;
  const auto debt = static_cast<uint64_t>(debt_units);
  return static_cast<TimeMs>((debt + r.bps - 1) / r.bps);  // rounded up: out of debt by then
}

namespace {
int64_t cost_of(uint64_t bytes) {
  // A datagram or a stream read is at most a few hundred KiB; clamp anything absurd.
  constexpr uint64_t kMaxBytes = static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / kUnitsPerByte);
  return static_cast<int64_t>(std::min(bytes, kMaxBytes)) * kUnitsPerByte;
}
}  // namespace

void TokenBucket::refill(TimeMs now, const Rate& r) {
  if (last_ == kUnprimed) {
    units_ = r.burst_units;  // a new allocation may start with a burst
    last_ = now;
    return;
  }
  if (now <= last_) return;
  units_ = std::min(r.burst_units, units_ + refill_units(r, now - last_));
  last_ = now;
}

bool TokenBucket::take(uint64_t bytes, TimeMs now, const Rate& r) {
  if (r.off()) return true;
  refill(now, r);
  const int64_t cost = cost_of(bytes);
  if (units_ < cost) return false;
  units_ -= cost;
  return true;
}

TimeMs TokenBucket::charge(uint64_t bytes, TimeMs now, const Rate& r) {
  if (r.off()) return 0;
  refill(now, r);
  units_ -= cost_of(bytes);
  return wait_ms(r, -units_);
}

void TokenBucket::give_back(uint64_t bytes, const Rate& r) {
  if (r.off()) return;
  units_ = std::min(r.burst_units, units_ + cost_of(bytes));
}

void SharedTokenBucket::refill(TimeMs now, const Rate& r) {
  TimeMs last = last_.load(std::memory_order_relaxed);
  if (last == kUnprimed) {
    // The first user of the bucket fills it; a racing second finds last_ set and refills 0.
    if (last_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
      units_.store(r.burst_units, std::memory_order_relaxed);
      return;
    }
  }
  // Whoever moves last_ forward owns the elapsed interval and adds its tokens; a worker whose
  // `now` is behind the last refill adds nothing.
  while (now > last) {
    if (last_.compare_exchange_weak(last, now, std::memory_order_relaxed)) {
      const int64_t add = refill_units(r, now - last);
      int64_t cur = units_.load(std::memory_order_relaxed);
      while (!units_.compare_exchange_weak(cur, std::min(r.burst_units, cur + add),
                                           std::memory_order_relaxed)) {
      }
      return;
    }
  }
}

bool SharedTokenBucket::take(uint64_t bytes, TimeMs now, const Rate& r) {
  if (r.off()) return true;
  refill(now, r);
  const int64_t cost = cost_of(bytes);
  int64_t cur = units_.load(std::memory_order_relaxed);
  do {
    if (cur < cost) return false;
  } while (!units_.compare_exchange_weak(cur, cur - cost, std::memory_order_relaxed));
  return true;
}

TimeMs SharedTokenBucket::charge(uint64_t bytes, TimeMs now, const Rate& r) {
  if (r.off()) return 0;
  refill(now, r);
  const int64_t cost = cost_of(bytes);
  const int64_t after = units_.fetch_sub(cost, std::memory_order_relaxed) - cost;
  return wait_ms(r, -after);
}

void SharedTokenBucket::give_back(uint64_t bytes, const Rate& r) {
  if (r.off()) return;
  const int64_t add = cost_of(bytes);
  int64_t cur = units_.load(std::memory_order_relaxed);
  while (!units_.compare_exchange_weak(cur, std::min(r.burst_units, cur + add),
                                       std::memory_order_relaxed)) {
  }
}

}  // namespace callrelay::core
