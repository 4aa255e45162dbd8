// RFC 8656 section 7.2 reservations (EVEN-PORT with R=1) that every worker can find: a client
// may send the Allocate with the RESERVATION-TOKEN from another 5-tuple (its RTCP port, say),
// and with clients steered to workers by their whole 5-tuple that Allocate may reach another
// worker than the one that reserved the port. Control path only: a mutex guards the table.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "relay/core/types.hpp"
#include "relay/net/port_pool.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

class RelaySockets;

class ReservationRegistry {
 public:
  /// A reserved relay socket, on the worker that opened it.
  struct Entry {
    RelaySockets* owner = nullptr;
    core::RelayId id = 0;
    uint32_t generation = 0;  ///< of the owner's slot, so a late hand-off finds it gone
    /// The registry's own duplicate of the owner's descriptor (closed by withdraw, handed to
    /// the claimer by claim), so a claim never depends on when the owner closes its own.
    int fd = -1;
    stun::Endpoint bound;     ///< the local address of the socket
    core::TimeMs expires = 0;
    uint16_t pool = 0;        ///< RelayShare pool of the port (of bound's address)
  };

  ReservationRegistry() = default;
  ReservationRegistry(const ReservationRegistry&) = delete;
  ReservationRegistry& operator=(const ReservationRegistry&) = delete;
  /// Closes the descriptors of the entries left.
  ~ReservationRegistry();

  /// Lists `token`; the registry owns `entry.fd` from now on.
  void add(uint64_t token, const Entry& entry);
  /// Takes reservation `token` for an Allocate on `claimer`'s worker at `now`. On another
  /// worker's reservation the returned entry's fd (a duplicate of the owner's descriptor)
  /// belongs to the caller; on the claimer's own it is closed here and -1. nullopt: no such
  /// token, or expired (left for its owner's timer).
  std::optional<Entry> claim(uint64_t token, core::TimeMs now, const RelaySockets* claimer);
  /// The owner closes its reserved socket: true when the reservation was still unclaimed (now
  /// gone: the port goes back to the pool), false when some worker claimed it (the port is
  /// theirs now).
  bool withdraw(uint64_t token, const RelaySockets* owner);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> entries_;
};

/// What the workers of one server share about relay ports: a port pool per relay address and
/// the reservations. Each configured relay address has a pool of its own over the whole range
/// (a port is a port of one address: two addresses double the allocations a family can hold);
/// pool 0 serves the addresses taken from the listener a client reached, for a family without
/// configured ones (one pool for all of them: they may be several, known only per request).
class RelayShare {
 public:
  /// `addresses`: the configured relay addresses (ports ignored), pools 1..N in this order.
  RelayShare(uint16_t port_min, uint16_t port_max,
             const std::vector<stun::Endpoint>& addresses = {});
  RelayShare(const RelayShare&) = delete;
  RelayShare& operator=(const RelayShare&) = delete;

  PortPool& pool(size_t index) { return *pools_[index]; }
  const PortPool& pool(size_t index) const { return *pools_[index]; }
  /// Where in pool `index` the workers' searches start (PortPool::cursor's `start`): drawn at
  /// random once, so two servers on one host (or a restart while the old sockets linger) do
  /// not walk the range in step, each failing to bind what the other holds.
  size_t start(size_t index) const { return starts_[index]; }
  size_t pool_count() const { return pools_.size(); }
  /// The pool of relay address `ip` (the port is ignored): its own when configured, else 0.
  uint16_t pool_of(const stun::Endpoint& ip) const;
  /// The address of pool `index` (port 0); pool 0 has none (an unspecified IPv4 address).
  const stun::Endpoint& address(size_t index) const { return addresses_[index]; }

  ReservationRegistry reservations;

 private:
  std::vector<stun::Endpoint> addresses_;  // index-aligned with pools_
  std::vector<std::unique_ptr<PortPool>> pools_;
  std::vector<size_t> starts_;  // index-aligned with pools_
};

}  // namespace callrelay::net
