// The TURN server (RFC 8656, RFC 5766 clients) as a state machine, one per worker shard.
// Inputs: packets from clients, packets from peers at relay sockets, and `now`.
// Outputs: at most one packet to send per input, and the next deadline. No I/O, no clock.
// Thread: each instance is owned and called by exactly one worker thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/core/abuse.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/core/types.hpp"
#include "relay/core/user_limits.hpp"
#include "relay/media/monitor.hpp"

namespace callrelay::base {
class LimitCounters;
}  // namespace callrelay::base

namespace callrelay::core {

/// Opens and closes relay sockets; implemented by relay/net, faked in tests.
class RelayPorts {
 public:
  virtual ~RelayPorts() = default;
  struct Opened {
    RelayAddress relay;
    std::optional<RelayAddress> reserved_next;  ///< port+1, when asked to reserve (EVEN-PORT R=1)
  };
  /// Opens a UDP relay socket of `family`. `server` is the local address the client reached
  /// (relay/net binds there unless configured otherwise). `even`: the port must be even.
  /// `reserve_next`: also open port+1 and keep it for a later Allocate with the
  /// RESERVATION-TOKEN. nullopt when no port is free (the client gets 508).
  virtual std::optional<Opened> open(Family family, const Endpoint& server, bool even,
                                     bool reserve_next) = 0;
  virtual void close(RelayId id) = 0;
  /// Whether relay sockets of `family` can be opened at all (no address of that family
  /// configured or available: false). Allocate answers 440 then, rather than 508.
  virtual bool supports(Family /*family*/) const { return true; }

  // --- RFC 8656 section 7.2 reservations every shard can claim. The defaults keep none: the
  // core then hands out its own shard's reservations only. ---

  /// Whether reservations are shared (share_reservation, claim_reservation): a client may send
  /// the Allocate with the RESERVATION-TOKEN from another 5-tuple, which may reach another
  /// shard than the one that reserved the port.
  virtual bool shares_reservations() const { return false; }
  /// Relay `id` (an Opened::reserved_next) is reserved for `token` until `expires` (the core's
  /// clock, common to every shard). The core still closes `id` when the reservation expires
  /// or the server shuts down; a reservation another shard claimed keeps its port then.
  virtual void share_reservation(uint64_t /*token*/, RelayId /*id*/, TimeMs /*expires*/) {}
  /// Claims reservation `token` for an allocation on this shard at `now`: the reserved relay,
  /// now this shard's (its id is this shard's; another shard's reservation is moved here).
  /// nullopt: unknown, expired or claimed already (the client gets 508).
  virtual std::optional<RelayAddress> claim_reservation(uint64_t /*token*/, TimeMs /*now*/) {
    return std::nullopt;
  }

  // --- RFC 6062 TCP allocations. The defaults refuse: a RelayPorts without TCP relays. ---

  /// Opens a TCP relayed transport address of `family`: a socket listening for peers on a
  /// relay port, from which outgoing peer connections are made too. close(id) closes it.
  /// nullopt when no port is free (the client gets 508).
  virtual std::optional<RelayAddress> open_tcp(Family /*family*/, const Endpoint& /*server*/) {
    return std::nullopt;
  }
  /// Starts a TCP connection from TCP relay `relay` to `peer` for `cid`. relay/net reports
  /// the outcome, within 30 s (RFC 6062 section 5.2), with TurnServer::on_peer_connected.
  /// False when the attempt cannot even start (the client gets 447 at once).
  virtual bool connect_peer(RelayId /*relay*/, ConnectionId /*cid*/, const Endpoint& /*peer*/) {
    return false;
  }
  /// RFC 6062 section 5.4: the client connection `client` becomes the data connection of
  /// peer connection `cid`. After the response to the ConnectionBind (the output of the call
  /// that made this one) is sent, bytes flow as-is both ways, including those the peer sent
  /// before; relay/net counts them in `traffic`, valid until close_peer(cid).
  virtual void bind_peer(ConnectionId /*cid*/, const FiveTuple& /*client*/, TrafficCounters& /*traffic*/) {}
  /// bind_peer, with the allocation's bandwidth caps: relay/net paces the splice by `gate`
  /// (pausing reads, never dropping stream bytes), valid until close_peer(cid). The core calls
  /// this one; the default forwards to bind_peer (a RelayPorts that does not pace).
  virtual void bind_peer_paced(ConnectionId cid, const FiveTuple& client, TrafficCounters& traffic,
                               BandwidthGate& /*gate*/) {
    bind_peer(cid, client, traffic);
  }
  /// Closes peer connection `cid` (connecting, waiting for its ConnectionBind, or bound: then
  /// its client data connection too). relay/net does not call on_peer_closed for it.
  virtual void close_peer(ConnectionId /*cid*/) {}
};

struct CoreConfig {
  std::string software = "callrelay";
  uint32_t default_lifetime_s = 600;   ///< RFC 8656 section 3.2
  uint32_t max_lifetime_s = 3600;
  uint32_t permission_lifetime_s = 300;
  uint32_t channel_lifetime_s = 600;
  uint32_t reservation_lifetime_s = 30;
  /// Counted across every worker sharing the TurnServers' UserLimits (the whole server).
  uint32_t max_allocations_per_user = 100;  ///< 0: unlimited (486 beyond)
  uint32_t max_allocations = 0;             ///< whole server; 0: unlimited (486 beyond)
  uint32_t max_permissions_per_allocation = 64;  ///< 508 beyond (bounded memory)
  uint32_t max_channels_per_allocation = 64;
  bool require_auth_for_binding = false;
  /// Accept channel numbers 0x4000-0x7FFF as RFC 5766 allowed (coturn's clients pick them at
  /// random from that range), not only RFC 8656's 0x4000-0x4FFF. Numbers outside get 400.
  bool accept_rfc5766_channels = true;
  /// RFC 6062: REQUESTED-TRANSPORT TCP from clients on TCP or TLS (442 when false).
  bool tcp_relay = true;
  /// RFC 6062 peer data connections per TCP allocation (Connect gets 508 beyond; inbound
  /// connections beyond are closed).
  uint32_t max_tcp_connections_per_allocation = 64;
  /// Measure relayed media (RTP loss and jitter per SSRC, STUN Binding round trips; see
  /// relay/media/monitor.hpp) into AllocationInfo::media. Off: the data path skips it and the
  /// counters stay 0.
  bool media_quality = true;
  /// Abuse limits (`limits:`): answers to unauthenticated requests (here) and connection
  /// limits (relay/net).
  AbuseConfig abuse;
  /// auth.strict_expiry: an allocation made with a REST credential ends (kCredentialExpired)
  /// when the credential's expiry passes on the wall clock, not only at its next Refresh.
  bool strict_expiry = false;
  /// Bandwidth caps: per allocation (this shard's), per user and total (the UserLimits').
  BandwidthConfig bandwidth;
  /// Fills a buffer with unpredictable bytes; false when the source failed (the request then
  /// fails with 500, never falls back to predictable values). Null: OpenSSL's RAND_bytes.
  bool (*random_bytes)(uint8_t* out, size_t n) = nullptr;
};

class TurnServer {
 public:
  /// `auth`, `nonces`, `policy`, `ports`, `observer` and `users` outlive the server. `observer`
  /// may be null. `users`: quotas and shared caps common to every worker's TurnServer; null:
  /// this server keeps its own (a single shard).
  TurnServer(CoreConfig cfg, const Authenticator& auth, const NonceCodec& nonces,
             const PeerPolicy& policy, RelayPorts& ports, Observer* observer,
             UserLimits* users = nullptr);
  ~TurnServer();
  TurnServer(const TurnServer&) = delete;
  TurnServer& operator=(const TurnServer&) = delete;

  /// A datagram (or one frame cut from a stream) from a client. Answers requests, relays
  /// Send indications and ChannelData to peers. Malformed input is dropped (or answered with
  /// 400 when it parses as a request).
  /// `now_us`: monotonic microseconds for media measurement (interarrival jitter, round trips),
  /// read by the caller with the same clock for every packet of this core; negative: now * 1000.
  Output on_client_packet(const FiveTuple& from, std::span<const uint8_t> bytes, TimeMs now,
                          int64_t now_us = -1);

  /// A datagram from `peer` at relay socket `relay`. `buffer` holds the payload at
  /// [kPeerHeadroom, kPeerHeadroom + len) with kPeerTailroom bytes free after it; the core
  /// writes the ChannelData or Data indication header in place (no copy of the payload).
  /// Dropped (kNone) without a permission for the peer's IP.
  /// `now_us` as for on_client_packet.
  Output on_peer_packet(RelayId relay, const Endpoint& peer, std::span<uint8_t> buffer, size_t len,
                        TimeMs now, int64_t now_us = -1);

  /// A stream connection closed: its allocation ends at once.
  void on_client_closed(const FiveTuple& from, TimeMs now);

  /// RFC 6062 section 5.2: the connection relay/net started for `cid` (RelayPorts::connect_peer)
  /// is established (`ok`) or failed or timed out. Returns the Connect response for the client:
  /// success with CONNECTION-ID, or 447. With `ok` and nothing to answer (the allocation ended
  /// meanwhile) the core closes the connection through close_peer.
  Output on_peer_connected(ConnectionId cid, bool ok, TimeMs now);
  /// RFC 6062 section 5.3: a peer connected to TCP relay `relay` from `peer`. Returns the
  /// ConnectionAttempt indication for the client and sets `*cid`; or kNone with `*cid` unset
  /// when the connection must be closed (no permission for the peer's IP, limits).
  Output on_peer_connection(RelayId relay, const Endpoint& peer, TimeMs now, std::optional<ConnectionId>* cid);
  /// RFC 6062 section 5.5: peer connection `cid` closed on its own (the peer, an error, or its
  /// client data connection closing); relay/net closed both ends already.
  void on_peer_closed(ConnectionId cid, TimeMs now);

  /// Expires allocations, permissions, channels, reservations and RFC 6062 ConnectionBind
  /// deadlines due at `now`; returns the next deadline (or now + kHeartbeatMs at the latest, so
  /// housekeeping keeps running). Costs what is due, not the number of allocations: deadlines
  /// are kept in heaps. Handles at most kTimerBatch due entries per call and returns `now` when
  /// more are due, so that the caller relays its waiting packets before calling again.
  TimeMs on_timer(TimeMs now);
  /// Due entries on_timer handles per call. The core has no clock, so the bound is a count:
  /// ending an allocation costs 1 to 2 us in the core and 6 to 14 us with callrelay's
  /// observers (its log line is most of it; bench_timers burst --observers), so 16 a call holds
  /// a burst of expiries' packets back about 0.25 ms at a time at most (64 held them 0.4 to
  /// 0.8 ms), well under the 1 ms a stop in relaying may last. Each call costs the worker one
  /// more timer wake-up.
  static constexpr size_t kTimerBatch = 16;
  /// The longest on_timer asks to wait.
  static constexpr TimeMs kHeartbeatMs = 1000;

  /// Ends every allocation (reason kShutdown) and closes their relay sockets.
  void shutdown(TimeMs now);

  /// Takes the live-changeable settings of `cfg` (hot reload): quotas and entry limits (for the
  /// next requests), lifetimes (for new allocations, permissions and channels, and the next
  /// Refresh), and bandwidth caps (every allocation's next packet; the shared caps too).
  /// Listeners, software, transports and media_quality stay as they were.
  void update_limits(const CoreConfig& cfg);
  /// The quotas and shared caps this server counts in (its own when none was given).
  UserLimits& user_limits();

  /// Ends every allocation of this shard made with call `call_id`'s credentials (reason
  /// kCallEnded) and closes their relay sockets. Allocations of other calls, and plain ones,
  /// live on. Costs the call's own allocations only (an index kept for call-scoped ones).
  void end_call(std::string_view call_id, TimeMs now);
  /// Calls with live allocations on this shard (the size of that index).
  size_t call_count() const;

  // --- operator actions (admin.cpp) ---

  /// Ends every allocation of this shard made with exactly `username` (reason kRevoked), so a
  /// revoked credential stops relaying at once rather than at its next Refresh. Returns how
  /// many ended. Scans the shard's allocations: an operator action, not a per-packet cost.
  size_t end_username(std::string_view username, TimeMs now);
  /// Ends every allocation of user `user_id` (AllocationInfo::user_id: the REST user part, or
  /// the static username), of every call, with reason `why`. Returns how many ended.
  size_t end_user(std::string_view user_id, EndReason why, TimeMs now);
  /// Ends the allocation whose AllocationInfo::id is `id` with reason `why` (an operator
  /// naming one allocation). Returns whether one did: false when no live allocation of this
  /// shard has that id. Scans the shard's allocations, like end_user.
  bool end_allocation(uint64_t id, EndReason why, TimeMs now);
  /// Drain: from now on a new Allocate is refused (RFC 8656 section 7.2) after authentication,
  /// with 300 (Try Alternate) and an ALTERNATE-SERVER of the client's address family from
  /// `alternates` (RFC 8489 section 10, round robin), or 403 when none fits. Live allocations
  /// are untouched: they refresh and relay until they end.
  void start_draining(std::vector<Endpoint> alternates);
  bool draining() const;
  /// Ends every allocation of this shard with reason `why` (a drain's deadline: kDrained).
  size_t end_all(EndReason why, TimeMs now);

  /// The RTP payload types call `call_id` negotiated (null: none known, kinds are guessed),
  /// for the media measurement of its allocations: given to the live ones now and to those
  /// made later. Replaces the previous map (the allocations are switched before it is
  /// released). Kept until end_call, or until the call has had no allocation on this shard
  /// for kPayloadTypesIdleMs (a map set after its call ended is not kept forever).
  void set_payload_types(std::string_view call_id, std::shared_ptr<const media::PayloadMap> map,
                         TimeMs now);
  /// Calls with a payload map on this shard.
  size_t payload_map_count() const;
  static constexpr TimeMs kPayloadTypesIdleMs = 3'600'000;

  /// Whether `tuple` has a live allocation (relay/net closes a stream connection that sends
  /// too much without one).
  bool has_allocation(const FiveTuple& tuple) const;
  /// Where limits that bite here are counted (kUnauthReflection, kChallengeRate); null:
  /// nowhere. Before the first packet.
  void set_limit_counters(base::LimitCounters* counters);

  size_t allocation_count() const;
  /// Whether relay `relay` is the live relay of an allocation with a permission for `peer`'s
  /// IP at `now` (RFC 8656 section 9): how relay/net tells apart allocations sharing a port.
  bool permits(RelayId relay, const Endpoint& peer, TimeMs now) const;
  /// Counts a datagram relay/net dropped for `why` (the observer's drop counter).
  void note_drop(DropReason why) const;
  /// Visits live allocations (telemetry reads counters at scrape time on the owning thread).
  template <typename F>
  void for_each_allocation(F&& f) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend struct Impl;
  void visit(void (*fn)(const AllocationInfo&, void*), void* ctx) const;
};

template <typename F>
void TurnServer::for_each_allocation(F&& f) const {
  visit([](const AllocationInfo& a, void* ctx) { (*static_cast<std::remove_reference_t<F>*>(ctx))(a); }, &f);
}

}  // namespace callrelay::core
