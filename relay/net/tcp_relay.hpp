// RFC 6062 TCP relays of one worker: the listening socket of each TCP allocation's relayed
// transport address, the peer data connections (made by Connect or accepted from peers), and
// the splice of each to its client data connection once the ConnectionBind succeeded. The
// core decides (permissions, CONNECTION-IDs, the 30 s ConnectionBind timer); this only moves
// bytes and reports what the sockets did. Thread: its worker's thread only.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "relay/core/turn_server.hpp"
#include "relay/net/stream_handoff.hpp"
#include "relay/net/stream_service.hpp"

namespace callrelay::net {

class TcpRelays {
 public:
  using Dispatch = std::function<void(const core::Output&)>;

  TcpRelays(asio::io_context& ctx, core::TurnServer& core, Dispatch dispatch);
  ~TcpRelays();
  TcpRelays(const TcpRelays&) = delete;
  TcpRelays& operator=(const TcpRelays&) = delete;

  /// Where client data connections are found (the worker's stream service; may stay null
  /// when the worker has no TCP/TLS listener: then no TCP allocation exists either).
  void set_streams(StreamService* streams) { streams_ = streams; }
  /// Where the peer data connections of this worker (`worker`) are registered, so that a
  /// ConnectionBind read by another worker finds them (null: one worker, none).
  void set_owners(ConnectionOwners* owners, unsigned worker) {
    owners_ = owners;
    worker_ = worker;
  }

  /// Adopts the listening socket `fd` of TCP relay `id` (RelaySockets::open_tcp) and accepts
  /// peers on it. False (fd closed) if the reactor refuses it.
  bool listen(core::RelayId id, int fd, const stun::Endpoint& bound);
  /// Closes TCP relay `id`'s listening socket. Its peer connections are the core's to close.
  void close_listener(core::RelayId id);

  /// core::RelayPorts::connect_peer: a connection from relay `relay`'s address to `peer`.
  bool connect(core::RelayId relay, core::ConnectionId cid, const stun::Endpoint& peer);
  /// core::RelayPorts::bind_peer_paced: remembered until after_frame() sees the client
  /// connection. With `gate`, the splice is paced by the allocation's bandwidth caps: when a
  /// read puts a direction over them, reading that side pauses until the tokens are back
  /// (TCP flow control slows the sender; nothing is dropped).
  void bind(core::ConnectionId cid, const core::FiveTuple& client, core::TrafficCounters& traffic,
            core::BandwidthGate* gate = nullptr);
  /// core::RelayPorts::close_peer. Idempotent.
  void close_peer(core::ConnectionId cid);
  /// StreamService's after-frame hook: the connection whose ConnectionBind was just answered
  /// becomes the client data connection of its peer (the response is queued first).
  void after_frame(StreamConnection& c);
  /// Closes every listener and peer connection without telling the core (shutdown).
  void close_all();

  /// Peer data connections open now. Any thread may read it (telemetry at scrape time).
  size_t peer_count() const { return peer_count_.load(std::memory_order_relaxed); }

  /// RFC 6062 section 5.2: "The timeout value MUST be at least 30 seconds."
  static constexpr int kConnectTimeoutMs = 30000;
  /// Peer bytes kept for a connection waiting for its ConnectionBind (RFC 6062 section 5.3:
  /// "The server MUST buffer any data received from the peer"); beyond, the peer waits (TCP
  /// flow control) rather than the server growing.
  static constexpr size_t kPendingBytes = 65536;
  /// Bytes read from a peer at a time once bound.
  static constexpr size_t kReadChunk = 16384;

 private:
  class Peer;
  friend class Peer;
  struct Listener {
    asio::ip::tcp::acceptor acceptor;
    stun::Endpoint bound;
    uint64_t serial;
  };
  void accept(core::RelayId id, uint64_t serial);
  void adopt_peer(core::RelayId id, asio::ip::tcp::socket socket);
  /// A peer connection closed on its own: the core forgets it.
  void forget(core::ConnectionId cid);
  void connected(core::ConnectionId cid, bool ok);
  /// Publishes peers_.size() to peer_count() after every change.
  void count_peers() { peer_count_.store(peers_.size(), std::memory_order_relaxed); }
  /// Registers `cid` as this worker's; false when another worker holds the same id.
  bool claim(core::ConnectionId cid) { return owners_ == nullptr || owners_->claim(cid, worker_); }
  void unclaim(core::ConnectionId cid) {
    if (owners_ != nullptr) owners_->release(cid, worker_);
  }

  asio::io_context& ctx_;
  core::TurnServer& core_;
  Dispatch dispatch_;
  StreamService* streams_ = nullptr;
  ConnectionOwners* owners_ = nullptr;
  unsigned worker_ = 0;
  std::unordered_map<core::RelayId, std::unique_ptr<Listener>> listeners_;
  std::unordered_map<core::ConnectionId, std::shared_ptr<Peer>> peers_;
  struct PendingBind {
    core::ConnectionId cid;
    core::FiveTuple client;
    core::TrafficCounters* traffic;
    core::BandwidthGate* gate;
  };
  std::optional<PendingBind> pending_bind_;
  std::atomic<size_t> peer_count_{0};
  uint64_t next_serial_ = 1;
  bool closing_ = false;
};

}  // namespace callrelay::net
