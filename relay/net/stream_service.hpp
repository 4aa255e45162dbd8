// A worker's TURN-over-TCP and TURN-over-TLS side: its acceptors (each worker has its own
// SO_REUSEPORT listen socket per stream endpoint, so the kernel spreads connections over the
// workers by their 4-tuple), its open connections and their timeouts. A connection's
// allocation lives in the core shard of the worker that accepted it, except an RFC 6062 data
// connection, which moves to the worker holding its peer connection (stream_handoff.hpp);
// everything here runs on that worker's thread.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "relay/core/turn_server.hpp"
#include "relay/net/stream_connection.hpp"
#include "relay/net/stream_handoff.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// TLS listener settings (RFC 7350 TURN over TLS).
struct TlsSettings {
  std::string cert_file;            ///< PEM certificate chain (leaf first)
  std::string key_file;             ///< PEM private key
  std::string min_version = "1.2";  ///< "1.2" or "1.3"; older versions are never accepted
};

/// The stream part of the server's settings.
struct StreamSettings {
  std::vector<stun::Endpoint> listen_tcp;  ///< port 0: the kernel picks one, shared by all workers
  std::vector<stun::Endpoint> listen_tls;  ///< needs tls.cert_file and tls.key_file
  TlsSettings tls;
  StreamLimits limits;  ///< limits.max_connections is per server here
};

/// TLS 1.3 suites offered, in the server's order of preference (make_tls_context).
inline constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// TLS 1.2 ciphers offered (all forward-secret AEAD), in the server's order of preference.
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// A server TLS context from `tls`: the chain and key loaded and checked, TLS 1.2+ only, the
/// suites above in the server's order, no compression or renegotiation. Throws
/// std::runtime_error naming the file and OpenSSL's reason.
std::shared_ptr<asio::ssl::context> make_tls_context(const TlsSettings& tls);

/// Runs on its worker's io_context; not thread-safe.
class StreamService final : private StreamHost {
 public:
  /// Hands the core's outputs to the worker (which routes them by transport). `batched`: the
  /// output's data stays valid until `flush` runs (the frame it points into is not
  /// overwritten before), so it may be queued for one sendmmsg with the others of a read.
  using Dispatch = std::function<void(const core::Output&, bool batched)>;
  using Flush = std::function<void()>;

  StreamService(asio::io_context& ctx, core::TurnServer& core, Dispatch dispatch, Flush flush,
                const StreamLimits& limits);
  ~StreamService() override;
  StreamService(const StreamService&) = delete;
  StreamService& operator=(const StreamService&) = delete;

  /// Binds and listens on `endpoint` (SO_REUSEPORT). `join`: another worker already holds the
  /// endpoint (same port) and this socket joins its group; otherwise a port held by anyone
  /// fails. `tls` non-null makes it a TLS listener. The kernel spreads connections over the
  /// group by their 4-tuple: what a client's second connection needs (an RFC 6062 data
  /// connection's peer) is found on any worker. Returns the bound endpoint.
  /// Throws asio::system_error. Before start() only.
  stun::Endpoint listen(const stun::Endpoint& endpoint, bool join,
                        std::shared_ptr<asio::ssl::context> tls);

  /// Starts accepting and the timeout sweep.
  void start();
  /// Routes a core output to its connection (dropped if it closed meanwhile).
  void send(const core::FiveTuple& to, std::span<const uint8_t> data);
  /// The open connection `tuple` names, or null.
  std::shared_ptr<StreamConnection> find(const core::FiveTuple& tuple) const;
  /// Called after each frame a connection delivered was handled by the core and its output
  /// dispatched (RFC 6062: a ConnectionBind's connection is spliced then, after its response).
  using AfterFrame = std::function<void(StreamConnection&)>;
  void set_after_frame(AfterFrame f) { after_frame_ = std::move(f); }
  /// New TLS handshakes on this service's TLS acceptors use `tls` from now on (a certificate
  /// reload); open connections keep the context they started with. Plain TCP acceptors and a
  /// null `tls` are left alone.
  void set_tls_context(std::shared_ptr<asio::ssl::context> tls);
  /// Whether frames carry the media clock (core::CoreConfig::media_quality). Before start().
  void set_media_clock(bool on) { media_clock_ = on; }
  /// This service is worker `worker`'s of a server whose workers share `links`: a
  /// ConnectionBind for a CONNECTION-ID another worker holds hands the connection to it.
  /// Before start(); null: no hand-offs (one worker).
  void set_links(StreamLinks* links, unsigned worker) {
    links_ = links;
    worker_ = worker;
  }
  /// Adopts a connection another worker handed over (on this worker's thread). Once stopping,
  /// the hand-off is dropped (which closes the connection).
  void adopt(std::unique_ptr<StreamHandoff> handoff);
  /// Stops accepting and closes every connection without ending allocations through the core
  /// (the worker's core shutdown does that). Idempotent.
  void close_all();

  size_t connection_count() const { return connections_.size(); }
  /// TLS connections whose record buffers were freed while idle, so far (any thread).
  uint64_t tls_buffer_trims() const { return tls_buffer_trims_.load(std::memory_order_relaxed); }
  /// Connection ids start here, far above UDP listener indices (FiveTuple::listener).
  static constexpr uint32_t kFirstConnectionId = 0x80000000u;

 private:
  struct Acceptor {
    asio::ip::tcp::acceptor socket;
    std::shared_ptr<asio::ssl::context> tls;
    stun::Endpoint bound;
    asio::steady_timer retry;
  };

  void on_frame(StreamConnection& c, std::span<const uint8_t> frame, int64_t now_us) override;
  void on_closed(StreamConnection& c) override;
  void on_read_done() override { flush_(); }
  bool has_allocation(const StreamConnection& c) override { return core_.has_allocation(c.tuple()); }
  /// The shared admission's verdict on a new connection; false: refused (counted, logged).
  bool admitted(const Acceptor& a, const stun::Endpoint& remote, int fd);
  void accept(size_t ai);
  void adopt(Acceptor& a, asio::ip::tcp::socket socket);
  /// A ConnectionBind naming a CONNECTION-ID another worker holds: hands `c` over to it. True
  /// when `frame` is not this worker's to handle any more (handed over, or `c` closed).
  bool hand_off(StreamConnection& c, std::span<const uint8_t> frame);
  uint32_t next_id();
  void arm_sweep();

  asio::io_context& ctx_;
  core::TurnServer& core_;
  Dispatch dispatch_;
  Flush flush_;
  AfterFrame after_frame_;
  bool media_clock_ = true;  ///< see set_media_clock
  StreamLimits limits_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::unordered_map<uint32_t, std::shared_ptr<StreamConnection>> connections_;
  asio::steady_timer sweep_;
  uint32_t next_id_ = kFirstConnectionId;
  std::atomic<uint64_t> tls_buffer_trims_{0};
  StreamLinks* links_ = nullptr;  ///< see set_links
  unsigned worker_ = 0;
  bool stopping_ = false;
};

}  // namespace callrelay::net
