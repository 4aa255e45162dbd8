// What the shared state between instances counts: Redis operations that failed (each one a
// fail-safe taken), and what crossed the link. Atomics, bumped on any thread and read when
// /metrics is scraped.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/redis/redis_client.hpp"

namespace callrelay::cluster {

/// The Redis operations of the shared state, as the `op` label of the failure counter.
enum class SharedOp : uint8_t {
  kRevocationPublish,  ///< a revocation not yet shared (kept and sent again)
  kRevocationCatchUp,  ///< the revocations of other instances not read after (re)subscribing
  kQuotaAdmit,         ///< an allocation admitted on this instance's own limit alone
  kQuotaRelease,       ///< an ended allocation not taken off the shared count (resynchronised)
  kQuotaResync,        ///< this instance's shared counts not rewritten (tried again)
  kLoadPublish,        ///< this instance's load not published
  kLoadRead,           ///< the other instances' load not read (credentials from older data)
  kCount
};
std::string_view to_string(SharedOp op);

struct SharedCounters {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(SharedOp::kCount)> failures{};
  std::atomic<uint64_t> revocations_published{0};
  std::atomic<uint64_t> revocations_applied{0};  ///< other instances' revocations applied here
  std::atomic<uint64_t> quota_refused{0};        ///< allocations refused by the shared count
  /// Credentials that carried this instance's own URIs because no fresh load was known.
  std::atomic<uint64_t> credential_fallbacks{0};
  std::atomic<uint64_t> instances_healthy{0};  ///< as last read (not draining, not expired)
  RedisLinkCounters link;                      ///< the command connections
  RedisLinkCounters subscriber;                ///< the subscription's connection

  void fail(SharedOp op) { failures[static_cast<size_t>(op)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t failed(SharedOp op) const {
    return failures[static_cast<size_t>(op)].load(std::memory_order_relaxed);
  }
};

/// The counters in Prometheus text exposition format (callrelay_cluster_*).
std::string exposition_text(const SharedCounters& c);

}  // namespace callrelay::cluster
