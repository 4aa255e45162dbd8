// RFC 8656 section 7.2 reservations (EVEN-PORT with R=1) that every worker can find: a client
// may send the Allocate with the RESERVATION-TOKEN from another 5-tuple (its RTCP port, say),
// and with clients steered to workers by their whole 5-tuple that Allocate may reach another
// worker than the one that reserved the port. Control path only: a mutex guards the table.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

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

/// What the workers of one server share about relay ports: the port pool and the reservations.
struct RelayShare {
  RelayShare(uint16_t port_min, uint16_t port_max) : pool(port_min, port_max) {}
  PortPool pool;
  ReservationRegistry reservations;
};

}  // namespace callrelay::net
