// Values shared by the relay core and the layers around it.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "relay/stun/endpoint.hpp"

namespace callrelay::core {

using stun::Endpoint;
using stun::Family;

/// Milliseconds. The `now` every core entry point takes is monotonic (relay/net reads the steady
/// clock): lifetimes, timers and rates never move when the wall clock steps (NTP, a VM
/// resumed). Wall time (Unix ms) is read only through a WallClock, for what is defined in wall
/// time: REST usernames' expiry and revocations. The core never reads a clock itself.
using TimeMs = int64_t;

/// The wall clock (milliseconds since the Unix epoch), injected where wall time is needed.
/// Implemented by app/ with the system clock, faked in tests (stepped at will).
class WallClock {
 public:
  virtual ~WallClock() = default;
  virtual TimeMs unix_ms() const = 0;
};
inline constexpr TimeMs ms_from_seconds(uint32_t s) { return static_cast<TimeMs>(s) * 1000; }

enum class Transport : uint8_t { kUdp = 0, kTcp = 1, kTls = 2 };
const char* to_string(Transport t);

/// Identifies one client connection. For UDP `listener` names the socket the datagram came in
/// on (a responder must answer from it); for streams it names the connection. Both are opaque
/// small integers chosen by relay/net.
struct FiveTuple {
  Transport transport = Transport::kUdp;
  Endpoint client;
  Endpoint server;
  uint32_t listener = 0;
  friend bool operator==(const FiveTuple&, const FiveTuple&) = default;
};
struct FiveTupleHash {
  size_t operator()(const FiveTuple& t) const noexcept;
};

/// A relay socket, as relay/net numbers them: small dense integers, reused after close.
using RelayId = uint32_t;
struct RelayAddress {
  RelayId id = 0;
  Endpoint address;  ///< the relayed transport address to advertise (XOR-RELAYED-ADDRESS)
};

/// RFC 6062 section 6.2.1 CONNECTION-ID: names one peer data connection of a TCP allocation
/// (between Connect or a ConnectionAttempt and the ConnectionBind that claims it).
using ConnectionId = uint32_t;

/// A counter written by one thread (the shard's worker) and read by others (telemetry).
/// Relaxed load+store, not fetch_add: one writer, so no locked instruction on the hot path.
class RelaxedCounter {
 public:
  void add(uint64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
 private:
  std::atomic<uint64_t> v_{0};
};

/// Per-allocation traffic, bumped on the data path, read at scrape time.
struct TrafficCounters {
  RelaxedCounter bytes_to_peer, packets_to_peer;      ///< client -> peer (payload bytes)
  RelaxedCounter bytes_to_client, packets_to_client;  ///< peer -> client (payload bytes)
};

/// What a core entry point asks the transport to do: send at most one packet.
/// `data` points into the core's scratch buffer or into the caller's own buffer;
/// it stays valid until the next call into the same core.
struct Output {
  enum class Kind : uint8_t { kNone, kToClient, kToPeer };
  Kind kind = Kind::kNone;
  FiveTuple client;   ///< kToClient: which connection/listener and address
  RelayId relay = 0;  ///< kToPeer: from which relay socket
  Endpoint peer;      ///< kToPeer: to which peer
  std::span<const uint8_t> data;
};

/// Bytes relay/net must leave free before a peer packet's payload (room for a Data indication
/// header: 20 + XOR-PEER-ADDRESS(24) + DATA header(4)) and after it (padding to 4 bytes).
inline constexpr size_t kPeerHeadroom = 48;
inline constexpr size_t kPeerTailroom = 4;

}  // namespace callrelay::core
