// Admission of TCP and TLS client connections, shared by every worker: connections per source
// address and in total, TLS handshakes per second, and descriptors kept in reserve so that
// connections can never starve relay sockets. Locked only when a connection is accepted or
// closes, never per frame.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "base/limits.hpp"
#include "relay/core/abuse.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// Raises the soft RLIMIT_NOFILE to the hard limit (best effort) and returns the soft limit
/// now in force.
uint64_t raise_descriptor_limit();

/// Thread-safe.
class StreamGuard {
 public:
  /// `soft_nofile`: the descriptor limit the reserve is counted from (RLIMIT_NOFILE's soft
  /// value). `counters` (may be null) counts refusals.
  StreamGuard(const core::AbuseConfig& cfg, uint64_t soft_nofile, base::LimitCounters* counters);

  enum class Verdict : uint8_t { kAccept, kPerAddress, kTotal, kTlsRate, kFdReserve };

  /// A connection from `source` was accepted on descriptor `fd` (`tls`: a TLS handshake would
  /// start). kAccept: keep it, and call release(source) once it closes; anything else: close
  /// it now (the refusal is counted).
  Verdict admit(const stun::Endpoint& source, int fd, bool tls, int64_t now_ms);
  /// An admitted connection from `source` closed.
  void release(const stun::Endpoint& source);

  /// New limits (reload); open connections stay, the counts carry on.
  void reconfigure(const core::AbuseConfig& cfg);

  size_t open() const;
  /// Source addresses (IPv6: /64 prefixes) with an open connection.
  size_t addresses() const;
  /// Descriptors kept in reserve: the configured value, at most half the limit.
  uint64_t reserve() const;

 private:
  struct Key {
    std::array<uint8_t, 9> bytes{};  ///< family, then the IPv4 address or the IPv6 /64
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  static Key key_of(const stun::Endpoint& source);
  uint64_t reserve_locked() const;
  bool take_handshake(int64_t now_ms);
  Verdict refuse(Verdict v);

  mutable std::mutex mu_;
  core::AbuseConfig cfg_;
  uint64_t soft_nofile_;
  base::LimitCounters* counters_;
  std::unordered_map<Key, uint32_t, KeyHash> per_address_;
  size_t open_ = 0;
  double handshake_tokens_ = 0;
  int64_t handshake_last_ = INT64_MIN;
};

}  // namespace callrelay::net
