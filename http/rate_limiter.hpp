// Token buckets per client IP for failed API-key attempts, in a bounded table. Not thread-safe
// by itself: ApiKeys holds it behind a mutex. The clock is passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace callrelay::http {

class FailureLimiter {
 public:
  struct Options {
    double burst = 10;          ///< failures allowed at once from one IP
    double per_second = 0.5;    ///< refill: one more failure allowed every 2 s
    size_t max_clients = 4096;  ///< table bound; full buckets are forgotten first
  };
  explicit FailureLimiter(Options opt) : opt_(opt) {}
  FailureLimiter() : FailureLimiter(Options{}) {}

  /// Whether `ip` may try a key now (it has at least one token left).
  bool allowed(const std::string& ip, int64_t now_ms);
  /// Records one failed attempt by `ip` (takes one token).
  void record_failure(const std::string& ip, int64_t now_ms);
  /// Seconds until `ip` gets a token back (for Retry-After), at least 1.
  uint32_t retry_after_s(const std::string& ip, int64_t now_ms);
  size_t tracked() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
  };
  void refill(Bucket& b, int64_t now_ms) const;
  /// Makes room for one entry: drops full buckets, else the one with the most tokens.
  void evict(int64_t now_ms);

  Options opt_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace callrelay::http
