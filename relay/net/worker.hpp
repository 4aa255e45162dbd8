// One worker thread's share of the server: its io_context, its TurnServer shard, its own
// SO_REUSEPORT listener sockets and its relay sockets. Workers share nothing mutable on the
// data path; the kernel's SO_REUSEPORT hash keeps each client 5-tuple on one worker, so an
// allocation lives (and is refreshed, and relays) on one thread only.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/limits.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/net/mailbox.hpp"
#include "relay/net/relay_sockets.hpp"
#include "relay/net/stream_service.hpp"
#include "relay/net/tcp_relay.hpp"
#include "relay/net/udp_batch.hpp"
#include "relay/net/udp_listener.hpp"
#include "relay/net/uring_relay.hpp"

namespace callrelay::net {

/// What every worker shares, read-only.
struct SharedAuth {
  const core::Authenticator& auth;
  const core::NonceCodec& nonces;
  const core::PeerPolicy& policy;
  /// Where the abuse limits the workers enforce are counted (null: nowhere).
  base::LimitCounters* limits = nullptr;
};

/// Monotonic milliseconds (the steady clock; the epoch is arbitrary, e.g. the boot): the `now`
/// every core call gets, so lifetimes, timers and rates never move when the wall clock steps.
/// Never a wall time: wall time comes from a core::WallClock (app/wall_clock.hpp).
core::TimeMs now_ms();
/// Monotonic microseconds (steady clock): the media clock (interarrival jitter, round trips)
/// the core gets with relayed packets when CoreConfig::media_quality is on, read once per
/// receive batch like now_ms(). Never steps with the wall clock. The same clock as now_ms():
/// media_now_us() / 1000 is now_ms() at that instant, so one reading serves both (a clock read
/// is a few percent of a relayed packet's CPU).
int64_t media_now_us();

class Worker final : private core::RelayPorts, private UringRelay::Sink {
 public:
  /// `index` of `count` workers: where this worker starts its searches of the shared relay
  /// port pool. `listen`: the configured listen endpoints (see RelaySockets). `observer` may
  /// be null. `users`: the quotas and shared bandwidth caps of every worker (null: this
  /// worker's own).
  Worker(unsigned index, unsigned count, const core::CoreConfig& core_config,
         const RelayNetSettings& relay, const std::vector<stun::Endpoint>& listen,
         const SharedAuth& shared, core::Observer* observer, core::UserLimits* users = nullptr);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Adopts a bound listener socket (see UdpListener); its index must equal the number of
  /// listeners added before. Before run() only.
  void add_listener(int fd, const stun::Endpoint& bound);

  size_t listener_count() const { return listeners_.size(); }
  int listener_fd(size_t i) const { return listeners_[i]->fd(); }

  /// Adds a TCP (or, with `tls`, TLS) listen socket on `endpoint` and returns the bound
  /// endpoint; `join`: another worker holds the endpoint already (see StreamService::listen).
  /// `limits`: those of the first call apply. Before run() only; throws asio::system_error.
  stun::Endpoint add_stream_listener(const stun::Endpoint& endpoint, bool join,
                                     const StreamLimits& limits,
                                     std::shared_ptr<asio::ssl::context> tls);
  /// Joins the workers sharing `links` (RFC 6062 data connections handed between workers:
  /// stream_handoff.hpp). After the stream listeners were added, before run().
  void link_streams(std::shared_ptr<StreamLinks> links);
  /// Any thread: `fn` runs on this worker's thread (its mailbox; destroyed unrun if the worker
  /// stops first).
  template <typename Fn>
  void post_to(Fn&& fn) {
    mailbox_.post(std::forward<Fn>(fn));
  }
  /// Thread-safe: new TLS handshakes on this worker's TLS listeners use `tls` (a certificate
  /// reload); connections already open keep the context they started with. No TLS listener:
  /// nothing changes.
  void set_tls_context(std::shared_ptr<asio::ssl::context> tls);
  /// Thread-safe: posts core::TurnServer::update_limits (quotas, lifetimes, bandwidth caps of a
  /// reloaded configuration) to the worker's thread (nothing once stopping).
  void update_limits(const core::CoreConfig& cfg);
  /// Open TCP/TLS connections (on the worker's thread, or after run() returned).
  size_t stream_connection_count() const { return streams_ ? streams_->connection_count() : 0; }
  /// StreamService::tls_buffer_trims() (any thread).
  uint64_t tls_buffer_trims() const { return streams_ ? streams_->tls_buffer_trims() : 0; }

  /// Serves until stop() has run its course. Call from the worker's own thread.
  void run();
  /// Thread-safe: stops accepting, ends every allocation (core shutdown), closes sockets.
  void stop();
  /// Thread-safe: posts core::TurnServer::end_call for `call_id` to the worker's thread, which
  /// ends the call's allocations there and closes their relay sockets (unless stopping).
  void end_call(std::string call_id);
  /// Thread-safe: posts core::TurnServer::set_payload_types for `call_id` to the worker's
  /// thread (nothing once stopping).
  void set_payload_types(std::string call_id, std::shared_ptr<const media::PayloadMap> map);
  /// Thread-safe: posts core::TurnServer::end_username (a revoked credential's allocations
  /// end, kRevoked) to the worker's thread (nothing once stopping).
  void end_username(std::string username);
  /// Thread-safe: posts core::TurnServer::end_user (every allocation of `user_id` ends with
  /// reason `why`) to the worker's thread (nothing once stopping). The future gets how many
  /// ended (0 once stopping; broken if the worker's loop is gone before it ran).
  std::future<size_t> end_user(std::string user_id, core::EndReason why);
  /// Thread-safe: posts core::TurnServer::end_allocation (the allocation with core id `id`
  /// ends with reason `why`) to the worker's thread. The future gets whether one ended (false
  /// once stopping; broken if the worker's loop is gone before it ran).
  std::future<bool> end_allocation(uint64_t id, core::EndReason why);
  /// Thread-safe: posts core::TurnServer::start_draining to the worker's thread.
  void start_draining(std::vector<stun::Endpoint> alternates);
  /// Thread-safe: posts core::TurnServer::end_all (reason `why`) to the worker's thread.
  void end_all(core::EndReason why);
  /// Steady-clock ms (now_ms()) of the worker's last housekeeping tick, which runs at least
  /// once a second while its thread serves: a stuck worker's heartbeat ages (any thread).
  core::TimeMs heartbeat() const { return heartbeat_.load(std::memory_order_relaxed); }
  /// Live allocations of the shard as of its last tick (any thread).
  size_t allocations() const { return allocations_.load(std::memory_order_relaxed); }

  unsigned index() const { return index_; }
  /// Open relay sockets (on the worker's thread, or after run() returned).
  size_t relay_count() const { return relays_.open_count(); }
  /// How this worker drives its relay sockets: RelayIo::kUring or RelayIo::kEpoll.
  RelayIo relay_io() const { return uring_ ? RelayIo::kUring : RelayIo::kEpoll; }
  /// RFC 6062 peer data connections open now (any thread).
  size_t tcp_peer_count() const { return tcp_.peer_count(); }

 private:
  // core::RelayPorts, called by the core on this thread.
  std::optional<Opened> open(core::Family family, const core::Endpoint& server, bool even,
                             bool reserve_next) override;
  void close(core::RelayId id) override;
  bool supports(core::Family family) const override { return relays_.supports(family); }
  // RFC 8656 section 7.2 reservations, shared by the workers (RelaySockets' registry).
  bool shares_reservations() const override { return true; }
  void share_reservation(uint64_t token, core::RelayId id, core::TimeMs expires) override {
    relays_.share_reservation(token, id, expires);
  }
  std::optional<core::RelayAddress> claim_reservation(uint64_t token, core::TimeMs now) override;
  std::optional<core::RelayAddress> open_tcp(core::Family family, const core::Endpoint& server) override;
  bool connect_peer(core::RelayId relay, core::ConnectionId cid, const core::Endpoint& peer) override {
    return tcp_.connect(relay, cid, peer);
  }
  void bind_peer(core::ConnectionId cid, const core::FiveTuple& client, core::TrafficCounters& traffic) override {
    tcp_.bind(cid, client, traffic);
  }
  void bind_peer_paced(core::ConnectionId cid, const core::FiveTuple& client, core::TrafficCounters& traffic,
                       core::BandwidthGate& gate) override {
    tcp_.bind(cid, client, traffic, &gate);
  }
  void close_peer(core::ConnectionId cid) override { tcp_.close_peer(cid); }

  void arm_listener(size_t li);
  void on_listener_readable(size_t li);
  void handle_client_datagram(UdpListener& l, size_t i, core::TimeMs now, int64_t now_us);
  /// A relay socket opened: on the io_uring path it goes to the ring (the epoll path has it
  /// in the relay sockets' epoll set already).
  void arm_relay(core::RelayId id);
  /// Epoll path: waits for the relay sockets' epoll set (one wait pending, from run() on).
  void arm_relays();
  /// Reads the ready relay sockets, a batch each per round, until all were read empty.
  void on_relays_ready();
  /// One recvmmsg batch of relay `id` through the core. True: the socket may hold more.
  bool receive_relay(core::RelayId id, uint32_t generation);
  void arm_timer(core::TimeMs deadline, core::TimeMs now);
  /// io_uring path: waits for the ring's completions (at most one wait pending).
  void arm_uring();
  /// io_uring path: harvests completions in batches, each batch's replies sent before the next.
  void on_uring_ready();
  /// UringRelay::Sink: a datagram from a peer on relay socket `id` (io_uring path).
  void on_relay_datagram(core::RelayId id, const stun::Endpoint& peer, std::span<uint8_t> slot,
                         size_t len) override;
  /// Hands relay socket `id` to the ring (its reactor registration dropped).
  void watch_relay(core::RelayId id);
  /// Ends the io_uring path (shutdown): its receives, then the sockets it held.
  void close_uring();
  /// Routes a core output. `batched`: its data stays valid until the next flush_all(), so a
  /// packet to a peer may wait in the sendmmsg batch (as datagrams in the receive batch do).
  void dispatch(const core::Output& out, bool batched = false);
  /// A datagram of relay `out.relay` on a shared socket to `out.peer`: learns the peer for
  /// the socket's demultiplexer, or delivers it inside the process when `out.peer` is the
  /// socket's own address. False: nothing more to send (delivered or dropped).
  bool shared_send(const core::Output& out);
  /// Which relay of shared socket `host` a datagram from `peer` is for (kNoRelay: dropped).
  core::RelayId shared_route(core::RelayId host, const stun::Endpoint& peer, core::TimeMs now);
  /// Sends everything queued (the receive slots stay in use).
  void flush_all();
  /// flush_all() and frees every receive slot. Only where no slot is being read.
  void flush_round();
  /// Posts one flush_round() to run after the ready handlers of this round.
  void schedule_flush();
  void shutdown();

  /// recvmmsg rounds one readiness event may run (over a listener, or over every ready relay
  /// socket) before yielding to the rest of the loop.
  static constexpr int kDrainRounds = 8;
  /// A relay socket's drain first flushes when fewer receive slots than this are free.
  static constexpr size_t kMinRelaySlots = 8;

  // Declaration order matters: the io_context outlives every socket and timer; the core is
  // destroyed first, while the relay sockets and listeners it may still close exist.
  unsigned index_;
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<UdpListener>> listeners_;
  RecvBatch batch_;
  SendBatch to_peers_;
  RelaySockets relays_;
  core::TurnServer core_;
  /// RFC 6062 TCP relays and peer data connections (destroyed before the core).
  TcpRelays tcp_;
  asio::steady_timer timer_;
  bool stopping_ = false;
  std::atomic<core::TimeMs> heartbeat_{0};  ///< see heartbeat()
  std::atomic<size_t> allocations_{0};      ///< see allocations()
  bool flush_scheduled_ = false;
  /// CoreConfig::media_quality: read media_now_us() per batch (else the core gets none).
  bool media_clock_ = true;
  /// The io_uring data path of the relay sockets (null: each relay socket waits in the Asio
  /// reactor). Declared after the relay sockets, so destroyed before them: its requests end
  /// before the sockets close.
  std::unique_ptr<UringRelay> uring_;
  bool uring_armed_ = false;
  /// Clocks of the batch being harvested (read once per batch, as on the Asio path).
  core::TimeMs uring_now_ = 0;
  int64_t uring_now_us_ = -1;
  /// TCP/TLS clients (null without stream listeners); destroyed first, before the core.
  std::unique_ptr<StreamService> streams_;
  /// What other threads hand this worker (see post_to); destroyed before streams_, so that a
  /// hand-off never run is dropped while its target still exists.
  Mailbox mailbox_{ctx_};
  std::shared_ptr<StreamLinks> links_;  ///< see link_streams
  /// Where a datagram between two relays of one shared socket is handed over (the core writes
  /// its header into the headroom): allocated once, with relay.multiplex_peers only.
  std::vector<uint8_t> loop_buffer_;
};

}  // namespace callrelay::net
