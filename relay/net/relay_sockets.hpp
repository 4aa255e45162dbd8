// A worker's relay sockets (RFC 8656 section 7.2: one relayed transport address per allocation
// and family; a dual allocation has an IPv4 and an IPv6 one): UDP sockets bound to ports from
// the relay port pools every worker shares, kept in a slab whose dense indexes are the core's
// RelayIds. Reserved ports (EVEN-PORT R=1) are found by any worker through the shared registry.
// Several relay addresses of a family spread the allocations over them, each with its own pool.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "relay/core/turn_server.hpp"
#include "relay/net/port_pool.hpp"
#include "relay/net/reservation_registry.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// Where relay sockets bind and what they advertise (the relay section of the config).
struct RelayNetSettings {
  uint16_t port_min = 49152;
  uint16_t port_max = 65535;
  /// Relay addresses per family (distinct, each with its own port range); an allocation takes
  /// the next one of its worker's rotation that has a free port. Empty: the local address the
  /// client reached.
  std::vector<stun::Endpoint> bind_ipv4, bind_ipv6;
  /// Address advertised in XOR-RELAYED-ADDRESS (public IP behind NAT); unset: the bound one.
  /// Only with at most one bind address of its family (the config refuses more: ports of two
  /// addresses would collide behind one public address).
  std::optional<stun::Endpoint> external_ipv4, external_ipv6;
  /// The port pools and reservations shared by the server's workers (relay/net's Server makes
  /// one with make_share). Null: each RelaySockets has its own (a single worker, tests).
  std::shared_ptr<RelayShare> share;
  /// Shared relay ports (relay.multiplex_peers): open_shared() places UDP relays on sockets
  /// that carry up to `allocations_per_port` relays of the worker each.
  bool multiplex_peers = false;
  uint32_t allocations_per_port = 32;
};

/// The shared pools for `settings`: one per bind address, and pool 0 for derived addresses.
std::shared_ptr<RelayShare> make_share(const RelayNetSettings& settings);

/// Relay ports the server can hand out at once: the range once per relay address that can be
/// in use (each configured one, and the listeners' addresses when a family has none).
uint64_t relay_port_capacity(const RelayNetSettings& settings,
                             const std::vector<stun::Endpoint>& listen);

/// Thread: owned and used by one worker thread.
///
/// The UDP relay sockets wait in one epoll set of their own (level-triggered, the slot's id
/// and generation as the event's data), and only that set's descriptor waits in the Asio
/// reactor. Asio would keep, per socket, a reactor state (168 B) and a pending wait operation
/// (152 B), a third of an idle allocation's memory, and dispatch a handler per ready socket;
/// here one wake-up finds every ready relay socket with one epoll_wait.
class RelaySockets {
 public:
  /// `listen` are the listen endpoints: a specific (non-wildcard) one is the bind address when
  /// a client asks for a family other than the one it reached us on.
  /// `index` of `count`: where this worker's searches of the shared pool start.
  RelaySockets(asio::io_context& ctx, const RelayNetSettings& settings, unsigned index,
               unsigned count, const std::vector<stun::Endpoint>& listen);
  /// Closes the sockets still open and gives back their ports and reservations.
  ~RelaySockets();

  /// Whether relay addresses of `family` can exist at all (core::RelayPorts::supports; 440
  /// otherwise): a bind address is configured for it, or the server listens on it, or the
  /// server listens on the other family's loopback address (then this family's loopback,
  /// 127.0.0.1 or [::1], is the relay address: a loopback-only server relays to local peers).
  bool supports(stun::Family family) const;
  RelaySockets(const RelaySockets&) = delete;
  RelaySockets& operator=(const RelaySockets&) = delete;

  /// As core::RelayPorts::open. Ports another process holds (EADDRINUSE) are given back and
  /// the next one is tried (the cursor has moved past them), a bounded number of times. With
  /// several relay addresses of `family`, the worker's rotation picks where to start and a
  /// full (or failing) address passes to the next: nullopt (508) only when none has a port.
  std::optional<core::RelayPorts::Opened> open(stun::Family family, const stun::Endpoint& server,
                                               bool even, bool reserve_next);
  /// A UDP relay on a shared socket of this worker with room (fewer than
  /// allocations_per_port relays), or on a new one bound to a pool port. The relay has its own
  /// id (a virtual slot: fd() is the shared socket's) so the core sees no difference. `*host`:
  /// the shared socket's id when this call opened it (the caller waits for reads on it), else
  /// kNoRelay. Never for EVEN-PORT or reservations (RFC 8656 section 7.2 needs a port of the
  /// allocation's own). nullopt: no port.
  std::optional<core::RelayPorts::Opened> open_shared(stun::Family family,
                                                      const stun::Endpoint& server,
                                                      core::RelayId* host);
  static constexpr core::RelayId kNoRelay = ~core::RelayId{0};
  bool multiplexing() const { return settings_.multiplex_peers; }
  /// Whether `id` is a relay on a shared socket (open_shared), and the shared socket's id.
  bool is_shared(core::RelayId id) const {
    return id < slots_.size() && slots_[id].open && slots_[id].host != kNoRelay;
  }
  core::RelayId host_of(core::RelayId id) const { return slots_[id].host; }
  /// Whether `id` is a shared socket (the reads of its relays happen on it).
  bool is_host(core::RelayId id) const {
    return id < slots_.size() && slots_[id].open && slots_[id].shared != nullptr;
  }
  /// Relays on shared socket `host` now (0 when it is not one).
  size_t members(core::RelayId host) const {
    return is_host(host) ? slots_[host].shared->members.size() : 0;
  }
  /// Peer transport addresses shared socket `host` has learned.
  size_t learned(core::RelayId host) const {
    return is_host(host) ? slots_[host].shared->peers.size() : 0;
  }
  /// Shared sockets open now.
  size_t shared_count() const { return hosts_.size(); }

  /// Shared relay `id` sends to `peer`: from now on datagrams from `peer` on its shared socket
  /// are its. When another relay of the socket learned `peer` already and still permits it
  /// (`permits(id)`: TurnServer::permits for that peer), the peer could not tell the two
  /// apart: false (the caller drops the datagram). Allocates only for a new peer address.
  template <typename Permits>
  bool learn(core::RelayId id, const stun::Endpoint& peer, Permits&& permits);
  /// Which relay of shared socket `host` a datagram from `peer` is for: the one that learned
  /// `peer` (while it permits it), else the single relay whose permission covers the peer's
  /// IP. `*ambiguous` when several do (the caller drops it). With none, a relay of the socket
  /// (the core drops it for want of a permission and counts that); kNoRelay if none is left.
  template <typename Permits>
  core::RelayId route(core::RelayId host, const stun::Endpoint& peer, Permits&& permits,
                      bool* ambiguous) const;
  /// A datagram of shared relay `id` to `dest`, which is its own shared socket's address
  /// (bound or advertised): two clients of this socket relaying to each other. The other relay
  /// of the socket that permits `dest` (the address the datagram comes from as its peer sees
  /// it) gets it, delivered inside the process: kNoRelay when none or several (`*ambiguous`)
  /// do, or when `dest` is not the socket's address (`*own` false then).
  template <typename Permits>
  core::RelayId loop_target(core::RelayId id, const stun::Endpoint& dest, Permits&& permits,
                            bool* own, bool* ambiguous) const;

  /// Peer addresses one shared socket learns at most; beyond, datagrams from new ones are
  /// routed by permission only (a relay sending to many ports cannot grow it without bound).
  static constexpr size_t kMaxLearnedPeers = 65536;

  /// RFC 6062: a TCP relay of `family` listening on a port of the shared pool (see open_tcp in
  /// socket_ops). The slot only holds the port and the id: the caller adopts `fd` (the
  /// listening socket) and closes it before close(id). nullopt when no port is free.
  struct OpenedTcp {
    core::RelayAddress relay;
    stun::Endpoint bound;  ///< the local address (connections to peers are made from it)
    int fd = -1;
  };
  std::optional<OpenedTcp> open_tcp(stun::Family family, const stun::Endpoint& server);
  /// Whether `id` is an open TCP relay (open_tcp) rather than a UDP one.
  bool is_tcp(core::RelayId id) const { return id < slots_.size() && slots_[id].open && slots_[id].tcp; }

  /// Closes the socket and returns its port to the pool; readiness already reported for it
  /// names the old generation() (is_open says no). A reservation another worker claimed
  /// keeps its port: it is that worker's now.
  void close(core::RelayId id);

  // --- readiness (the epoll set of the relay sockets) ---

  /// Whether sockets enter the epoll set when they open (default). False: their reads are
  /// driven elsewhere (an io_uring ring, after release()).
  void set_polling(bool on) { polling_ = on; }
  /// Calls `handler(error_code)` once the epoll set has a ready socket (an edge: ready()
  /// must be called until it reports no more before waiting again).
  template <typename Handler>
  void async_wait_ready(Handler&& handler) {
    ready_wait_.async_wait(asio::posix::stream_descriptor::wait_read,
                           std::forward<Handler>(handler));
  }
  struct Ready {
    core::RelayId id;
    uint32_t generation;
  };
  /// Sockets with datagrams (or an error) to read now, without blocking: at most kMaxReady.
  /// A socket not read empty is reported again by the next call (level-triggered).
  std::span<const Ready> ready();
  static constexpr size_t kMaxReady = 128;
  /// Hands the descriptor of `id` to the caller (an io_uring ring reads it): it leaves the
  /// epoll set, and close() frees only the slot and the port. -1 if `id` has none.
  int release(core::RelayId id);

  // --- RFC 8656 section 7.2 reservations (core::RelayPorts' shared reservations) ---

  /// Lists relay `id` (the reserved port+1 of open()) in the shared registry under `token`
  /// until `expires`.
  void share_reservation(uint64_t token, core::RelayId id, core::TimeMs expires);
  /// Claims reservation `token` at `now`: this worker's own is its relay again; another
  /// worker's is installed here on a duplicate of its descriptor (`*moved` set: the caller
  /// waits for reads on it), and that worker is told to let go of its own descriptor
  /// (detach, on its thread). nullopt: unknown, expired or claimed.
  std::optional<core::RelayAddress> claim_reservation(uint64_t token, core::TimeMs now,
                                                      bool* moved);
  /// Runs first when another worker claimed reservation `id` (on this worker's thread): the
  /// worker stops reading the socket by other means than the epoll set (an io_uring ring),
  /// closing the descriptor it took from it.
  void set_detach_hook(std::function<void(core::RelayId)> hook) { detach_hook_ = std::move(hook); }
  /// Reserved relays of this worker listed in the registry (claimed or not).
  size_t reservation_count() const { return reserved_.size(); }
  void close_all();

  /// The socket's descriptor, or -1 when `id` is not open.
  int fd(core::RelayId id) const;
  bool is_open(core::RelayId id, uint32_t generation) const;
  uint32_t generation(core::RelayId id) const { return slots_[id].generation; }
  /// Relay sockets open now. Written by the owning worker only; any thread may read it.
  size_t open_count() const { return open_count_.load(std::memory_order_relaxed); }
  /// The pool of relay address `ip` (its own when configured, else the shared pool 0).
  const PortPool& ports(const stun::Endpoint& ip) const {
    return share_->pool(share_->pool_of(ip));
  }
  RelayShare& share() { return *share_; }

  /// Bind attempts open() makes before answering "no port" (each EADDRINUSE costs one, a few
  /// microseconds: only ports another process holds fail, and the cursor moves past them).
  static constexpr int kMaxBindAttempts = 64;

 private:
  struct Slot {
    int fd = -1;
    uint16_t port = 0;
    uint16_t pool = 0;  ///< RelayShare pool the port came from
    uint32_t generation = 0;
    bool open = false;
    bool tcp = false;  ///< RFC 6062 relay: the descriptor belongs to its acceptor elsewhere
    bool polled = false;    ///< in the epoll set
    bool released = false;  ///< release()d: the descriptor is closed by whoever took it
    /// Another descriptor of the socket may exist (a reservation listed for other workers, or
    /// one claimed from another): closing ours would not end its epoll registration.
    bool duplicated = false;
    /// A reservation another worker claimed: the socket is theirs; the slot only keeps its
    /// id until the core closes it (the port stays taken: the claimer gives it back).
    bool detached = false;
    /// A relay on a shared socket: the socket's slot (kNoRelay: a socket of its own).
    core::RelayId host = kNoRelay;
    /// A shared socket: its relays and the peer addresses they sent to.
    struct Shared {
      std::vector<core::RelayId> members;
      std::unordered_map<stun::Endpoint, core::RelayId, stun::EndpointHash> peers;
      stun::Endpoint bound, advertised;
    };
    std::unique_ptr<Shared> shared;
  };
  /// A relay address of `family` and its pool.
  struct Choice {
    stun::Endpoint ip;
    uint16_t pool = 0;
  };
  /// Where a relay of `family` may bind, try `turn` (0, 1, ... until nullopt): the configured
  /// addresses from this worker's next turn (turn 0 moves the rotation on), or the one
  /// address derived from `server` (pool 0). No heap allocation.
  std::optional<Choice> choice(stun::Family family, const stun::Endpoint& server, size_t turn);
  std::optional<stun::Endpoint> derived_address(stun::Family family,
                                                const stun::Endpoint& server) const;
  /// open() on one address; nullopt when it has no port that fits or binding fails.
  std::optional<core::RelayPorts::Opened> open_on(const Choice& at, bool even, bool reserve_next);
  std::optional<OpenedTcp> open_tcp_on(const Choice& at);
  /// A shared socket on `at` with room, or a new one (`*opened` set); kNoRelay: no port.
  core::RelayId shared_on(const Choice& at, bool* opened);
  /// close() of a relay on a shared socket; the socket closes with its last relay.
  void close_shared(core::RelayId id);
  core::RelayId new_slot();
  stun::Endpoint advertised(const stun::Endpoint& bound) const;
  /// Binds `ip`:`port` (with SO_RCVBUF/SO_SNDBUF of `buffer_bytes` if > 0); fd, or -errno.
  static int bind_port(const stun::Endpoint& ip, uint16_t port, int buffer_bytes = 0);
  /// Puts a bound socket into a slot (and the epoll set, when polling); nullopt (fd closed)
  /// if epoll refuses it. `sole`: no duplicate of `fd` exists.
  std::optional<core::RelayAddress> install(int fd, const stun::Endpoint& bound, uint16_t pool,
                                            bool sole = true);
  /// Installs the socket(s) open() bound; on failure everything is closed and released.
  std::optional<core::RelayPorts::Opened> install_opened(const Choice& at, uint16_t port, int fd,
                                                         int fd_next);
  /// Runs on this worker's thread after another worker claimed reservation slot `id`: closes
  /// this worker's descriptor of it (the claimer's duplicate keeps the socket) so that only
  /// the claimer reads it.
  void detach(core::RelayId id, uint32_t generation);
  /// Closes the slot's descriptor (unless released), out of the epoll set first when a
  /// duplicate would keep it registered.
  void close_fd(Slot& s);

  asio::io_context& ctx_;
  /// The epoll set of the relay sockets, waited on in the Asio reactor (owns the descriptor).
  asio::posix::stream_descriptor ready_wait_;
  int epoll_fd() { return ready_wait_.native_handle(); }
  bool polling_ = true;
  std::array<epoll_event, kMaxReady> events_{};
  std::array<Ready, kMaxReady> ready_{};
  RelayNetSettings settings_;
  std::vector<stun::Endpoint> fallback_;  // specific listen addresses
  bool listens_v4_ = false, listens_v6_ = false;
  bool loopback_v4_ = false, loopback_v6_ = false;  // a listener on 127.0.0.0/8 or [::1]
  std::shared_ptr<RelayShare> share_;
  std::vector<PortPool::Cursor> cursors_;  ///< this worker's place in each shared pool
  /// The configured addresses per family ([0] IPv4, [1] IPv6) with their pools, and the
  /// position of this worker's next turn in each.
  std::vector<Choice> configured_[2];
  size_t next_turn_[2] = {0, 0};
  /// Tokens of this worker's reserved relays listed in the registry, by RelayId (only
  /// reserved ones: the slots of ordinary relays pay nothing for it).
  std::unordered_map<core::RelayId, uint64_t> reserved_;
  std::function<void(core::RelayId)> detach_hook_;
  std::deque<Slot> slots_;  // deque: stable references while growing
  std::vector<core::RelayId> free_ids_;
  /// Open shared sockets (open_shared looks for one with room here).
  std::vector<core::RelayId> hosts_;
  std::atomic<size_t> open_count_{0};
};

template <typename Permits>
bool RelaySockets::learn(core::RelayId id, const stun::Endpoint& peer, Permits&& permits) {
  auto& table = slots_[slots_[id].host].shared->peers;
  const auto it = table.find(peer);
  if (it != table.end()) {
    if (it->second == id) return true;
    // Another relay of the socket sends to the same peer address: while it still permits the
    // peer, the peer's answers could be either's, so the newcomer's datagram stays here.
    if (permits(it->second)) return false;
    it->second = id;
    return true;
  }
  if (table.size() < kMaxLearnedPeers) table.emplace(peer, id);
  return true;
}

template <typename Permits>
core::RelayId RelaySockets::route(core::RelayId host, const stun::Endpoint& peer,
                                  Permits&& permits, bool* ambiguous) const {
  *ambiguous = false;
  const Slot::Shared& s = *slots_[host].shared;
  const auto it = s.peers.find(peer);
  if (it != s.peers.end() && permits(it->second)) return it->second;
  core::RelayId found = kNoRelay;
  for (const core::RelayId m : s.members) {
    if (!permits(m)) continue;
    if (found != kNoRelay) {
      *ambiguous = true;
      return kNoRelay;
    }
    found = m;
  }
  if (found != kNoRelay) return found;
  if (it != s.peers.end()) return it->second;
  return s.members.empty() ? kNoRelay : s.members.front();
}

template <typename Permits>
core::RelayId RelaySockets::loop_target(core::RelayId id, const stun::Endpoint& dest,
                                        Permits&& permits, bool* own, bool* ambiguous) const {
  *ambiguous = false;
  const Slot::Shared& s = *slots_[slots_[id].host].shared;
  *own = dest == s.bound || dest == s.advertised;
  if (!*own) return kNoRelay;
  core::RelayId found = kNoRelay;
  for (const core::RelayId m : s.members) {
    if (m == id || !permits(m)) continue;
    if (found != kNoRelay) {
      *ambiguous = true;
      return kNoRelay;
    }
    found = m;
  }
  return found;
}

}  // namespace callrelay::net
