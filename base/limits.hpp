// Counters of the abuse limits and bandwidth caps, shared by every layer that enforces one
// (relay/core, relay/net, http, calls) and read by telemetry at scrape time. One instance per
// process, owned by app/ and handed down as a pointer (null: nothing is counted). Bumped only
// when a limit bites, never per relayed packet that passes, so a locked add is affordable.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace callrelay::base {

/// Every limit that can refuse, close, delay or drop something. Rendered as
/// callrelay_limit_hits_total{limit="<to_string>"}.
enum class Limit : uint8_t {
  kUnauthReflection,     ///< an answer to an unauthenticated request withheld: over the source's byte budget
  kChallengeRate,        ///< a 401/438 withheld: over the source's challenge rate
  kTcpPerAddress,        ///< a TCP/TLS connection refused: its source address has too many
  kTcpTotal,             ///< a TCP/TLS connection refused: the server has too many
  kTcpUnauthBytes,       ///< a TCP/TLS connection closed: too many bytes without an allocation
  kTlsHandshakeRate,     ///< a TLS connection refused: over the handshakes-per-second budget
  kFdReserve,            ///< a connection refused: it would eat into the descriptors kept for relay sockets
  kHttpPerAddress,       ///< an HTTP connection refused: its source address has too many
  kHttpTotal,            ///< an HTTP connection refused or an idle one evicted: the listener is full
  kHttpSlowHeaders,      ///< an HTTP connection closed: its request head did not arrive in time
  kWsPerAddress,         ///< a signaling WebSocket refused: its source address has too many
  kWsTotal,              ///< a signaling WebSocket refused: the server has too many
  kBandwidthAllocation,  ///< a relayed packet dropped: over its allocation's max_bps
  kBandwidthUser,        ///< a relayed packet dropped: over its user's cap
  kBandwidthTotal,       ///< a relayed packet dropped: over the server's total cap
  kUserQuota,            ///< an Allocate refused (486): the user has its maximum across workers
  kRevocationsFull,      ///< a revocation refused: the list is at its bound
  kLogSuppressed,        ///< a log line about unauthenticated input left out (rate limit)
  kCount_
};
inline constexpr size_t kLimitCount = static_cast<size_t>(Limit::kCount_);

constexpr const char* to_string(Limit l) {
  constexpr std::array<const char*, kLimitCount> kNames = {
      "unauth_reflection", "challenge_rate",     "tcp_per_address",      "tcp_total",
      "tcp_unauth_bytes",  "tls_handshake_rate", "fd_reserve",           "http_per_address",
      "http_total",        "http_slow_headers",  "ws_per_address",       "ws_total",
      "bandwidth_allocation", "bandwidth_user",  "bandwidth_total",      "user_quota",
      "revocations_full",  "log_suppressed"};
  return kNames[static_cast<size_t>(l)];
}

/// Thread-safe: any thread may bump, any thread may read.
class LimitCounters {
 public:
  void hit(Limit l, uint64_t n = 1) { hits_[index(l)].fetch_add(n, std::memory_order_relaxed); }
  /// Bytes dropped by a bandwidth cap (kBandwidth*), besides the packet counted by hit().
  void dropped_bytes(Limit l, uint64_t n) { bytes_[index(l)].fetch_add(n, std::memory_order_relaxed); }
  uint64_t hits(Limit l) const { return hits_[index(l)].load(std::memory_order_relaxed); }
  uint64_t bytes(Limit l) const { return bytes_[index(l)].load(std::memory_order_relaxed); }

 private:
  static constexpr size_t index(Limit l) { return static_cast<size_t>(l); }
  std::array<std::atomic<uint64_t>, kLimitCount> hits_{};
  std::array<std::atomic<uint64_t>, kLimitCount> bytes_{};
};

}  // namespace callrelay::base
