#include "http/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace callrelay::http {

void FailureLimiter::refill(Bucket& b, int64_t now_ms) const {
  if (now_ms > b.updated_ms) {
    const double elapsed_s = static_cast<double>(now_ms - b.updated_ms) / 1000.0;
    b.tokens = std::min(opt_.burst, b.tokens + elapsed_s * opt_.per_second);
    b.updated_ms = now_ms;
  }
}

bool FailureLimiter::allowed(const std::string& ip, int64_t now_ms) {
  const auto it = buckets_.find(ip);
  if (it == buckets_.end()) return true;
  refill(it->second, now_ms);
  return it->second.tokens >= 1.0;
}

void FailureLimiter::record_failure(const std::string& ip, int64_t now_ms) {
  auto it = buckets_.find(ip);
  if (it == buckets_.end()) {
    if (buckets_.size() >= opt_.max_clients) evict(now_ms);
    it = buckets_.emplace(ip, Bucket{opt_.burst, now_ms}).first;
  }
  refill(it->second, now_ms);
  it->second.tokens = std::max(0.0, it->second.tokens - 1.0);
}

uint32_t FailureLimiter::retry_after_s(const std::string& ip, int64_t now_ms) {
  const auto it = buckets_.find(ip);
  if (it == buckets_.end()) return 1;
  refill(it->second, now_ms);
  const double missing = 1.0 - it->second.tokens;
  if (missing <= 0 || opt_.per_second <= 0) return 1;
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(missing / opt_.per_second)));
}

void FailureLimiter::evict(int64_t now_ms) {
  // A full bucket is the same as no entry: forget those first.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now_ms);
    it = it->second.tokens >= opt_.burst ? buckets_.erase(it) : std::next(it);
  }
  if (buckets_.size() < opt_.max_clients) return;
  // Still full (an attack from many addresses): drop the least-limited client.
  const auto most = std::max_element(
      buckets_.begin(), buckets_.end(),
      [](const auto& a, const auto& b) { return a.second.tokens < b.second.tokens; });
  buckets_.erase(most);
}

}  // namespace callrelay::http
