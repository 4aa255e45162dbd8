// One TURN allocation (RFC 8656 section 2.2): the relayed address, its lifetime, and the
// permissions and channel bindings installed on it, all kept as expiry timestamps in small
// flat lists (a handful of entries: a linear scan beats any map and allocates nothing; the
// first entry of each is inline).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "relay/core/monitor_pool.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/small_list.hpp"
#include "relay/core/timers.hpp"
#include "relay/core/types.hpp"
#include "relay/core/user_limits.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::core {

/// RFC 8656 section 9: a permission is per peer IP address (the port is ignored).
struct Permission {
  Endpoint ip;  ///< port always 0
  TimeMs expires = 0;
};

/// RFC 8656 section 12: a channel number bound to one peer transport address.
struct ChannelBinding {
  Endpoint peer;
  uint16_t number = 0;
  TimeMs expires = 0;  ///< relaying stops here; the pair stays reserved kChannelCooldownMs more
};

/// RFC 8656 section 12: after a binding expires, its number and peer address cannot be bound
/// to anything else for 5 more minutes (in-flight ChannelData must not reach a new peer).
inline constexpr TimeMs kChannelCooldownMs = 300'000;

/// Index of `f` in per-family arrays: 0 for IPv4, 1 for IPv6.
constexpr size_t family_index(Family f) { return f == Family::kIPv4 ? 0 : 1; }
inline constexpr std::array<Family, 2> kFamilies{Family::kIPv4, Family::kIPv6};

/// One relayed transport address of an allocation. RFC 8656 section 7.2: a dual allocation
/// has one IPv4 and one IPv6 relayed address; section 8.1: a Refresh carrying
/// REQUESTED-ADDRESS-FAMILY refreshes (or deletes) only that family's, so each has a lifetime.
struct FamilyRelay {
  RelayAddress relay;
  TimeMs expires = 0;
  bool open = false;
};

/// RFC 8656 section 18.13 ADDRESS-ERROR-CODE: why one family of a dual allocation is missing.
struct AddressError {
  Family family = Family::kIPv6;
  uint16_t code = 440;
};

/// `realm` as a view of a string kept for the process's life, one per distinct realm: every
/// allocation of a server has the same realm (or one of a few across reloads), so the record
/// holds a view instead of its own copy. Thread-safe; grows only when a new realm is seen.
std::string_view intern_realm(std::string_view realm);

struct Allocation {
  AllocationInfo info;
  std::array<FamilyRelay, 2> relays{};  ///< indexed by family_index()
  TimeMs expires = 0;                   ///< the latest expiry of an open relay
  std::optional<AddressError> address_error;  ///< replayed in a retransmitted Allocate response
  // (The two flags fill the 2 bytes after address_error: field order is the size here.)
  bool dont_fragment = false;
  bool tcp = false;  ///< RFC 6062 TCP allocation: relays are TCP listeners, peers connect
  uint32_t granted_lifetime_s = 0;            ///< sent in the Allocate response (retransmissions)
  stun::TransactionId allocate_tid{};         ///< to recognise a retransmitted Allocate
  std::optional<uint64_t> reservation_token;  ///< handed out in the Allocate response, if any
  SmallList<Permission> permissions;
  SmallList<ChannelBinding> channels;
  /// Measures the relayed media into info.media (its payload map is owned by the shard's
  /// per-call table, which outlives every allocation pointing at it). Holds a monitor only
  /// once a datagram came: an idle allocation pays a pointer, not the monitor's ~400 bytes.
  LazyMonitor monitor;
  /// Bandwidth caps every relayed byte passes (datagrams here, RFC 6062 splices in relay/net);
  /// holds the allocation's place in its user's quota until the allocation is destroyed.
  BandwidthGate gate;
  /// Its place in the shard's deadline heap (TurnServer housekeeping, timers.cpp).
  TimerSlot timer;

  /// The open, unexpired relay of `family`, or null (no relay of that family: 443 / discard).
  const FamilyRelay* relay_for(Family family, TimeMs now) const {
    const FamilyRelay& r = relays[family_index(family)];
    return r.open && r.expires > now ? &r : nullptr;
  }
  /// Recomputes `expires` from the open relays (0 when none is open).
  void update_expiry();

  /// True when `ip` (port ignored) has an unexpired permission.
  bool permitted(const Endpoint& ip, TimeMs now) const;
  /// Installs or refreshes the permission for `ip` until `expires`. False when a new entry
  /// would exceed `max_entries` (nothing changed then).
  bool install_permission(const Endpoint& ip, TimeMs expires, size_t max_entries);

  /// The live binding for `number`, or null.
  const ChannelBinding* channel(uint16_t number, TimeMs now) const;
  /// The live binding to exactly `peer` (address and port), or null.
  const ChannelBinding* channel_to(const Endpoint& peer, TimeMs now) const;

  enum class BindResult : uint8_t { kOk, kConflict, kFull };
  /// RFC 8656 section 12.2 rules: binds `number` to `peer` or refreshes that same binding.
  /// kConflict when the number is bound (or cooling down) for another peer or the peer for
  /// another number; kFull beyond `max_entries`.
  BindResult bind_channel(uint16_t number, const Endpoint& peer, TimeMs expires, TimeMs now,
                          size_t max_entries);

  /// Drops expired permissions and channels past their cooldown; returns this allocation's
  /// next deadline (the earliest relay expiry at the latest).
  TimeMs prune(TimeMs now);
};

}  // namespace callrelay::core
