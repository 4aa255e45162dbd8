// One client connection over TCP or TLS: a ClientTransport that frames the byte stream into
// STUN messages and ChannelData (StreamFramer), queues what goes out (StreamSendQueue) and
// times out idle, half-open and slow-loris connections. Thread: its worker's thread only.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <span>

#include "base/limits.hpp"
#include "relay/core/types.hpp"
#include "relay/net/stream_framer.hpp"
#include "relay/net/transport.hpp"

namespace callrelay::net {

class StreamGuard;
struct StreamHandoff;

/// Limits of every stream connection of a worker.
struct StreamLimits {
  /// A connection without an allocation is closed when no complete frame arrived for this
  /// long (slow-loris: trickled bytes do not count); the TLS handshake must finish within it.
  core::TimeMs idle_timeout_ms = 30000;
  /// The same for a connection whose client got an allocation (it must refresh within the
  /// allocation's lifetime anyway); also how long a write may stay stuck.
  core::TimeMs allocated_idle_timeout_ms = 3600000;
  size_t max_frame_bytes = 65552;    ///< larger frames close the connection
  size_t send_queue_bytes = 262144;  ///< pending output per connection; beyond, frames drop
  /// TLS: a connection that read and wrote nothing for this long hands OpenSSL's record
  /// buffers (about 34 KiB) back; until then it keeps them, where SSL_MODE_RELEASE_BUFFERS
  /// would free and allocate them again around every record.
  core::TimeMs tls_buffers_idle_ms = 10000;
  /// TLS: the frames of one write share records (tls.records: packed) instead of a record
  /// each.
  bool pack_tls_records = false;
  size_t max_connections = 0;        ///< per worker; 0: unlimited
  /// Bytes a connection may send without an allocation on it before it is closed (counted
  /// kTcpUnauthBytes); 0: no limit.
  size_t unauth_bytes = 0;
  /// Where the limits that bite are counted; null: nowhere.
  base::LimitCounters* counters = nullptr;
  /// Admission shared by every worker (per address, total, TLS rate, descriptor reserve;
  /// stream_guard.hpp); null: none. Read by StreamService, not by connections.
  StreamGuard* guard = nullptr;
};

class StreamConnection;

/// The far end of a spliced connection (an RFC 6062 client data connection bound to its peer
/// data connection): takes the client's raw bytes. Same thread.
class RawSink {
 public:
  virtual ~RawSink() = default;
  /// Raw bytes from the client, valid during the call. False: stop reading until
  /// StreamConnection::resume_reading() (the other side is not keeping up).
  virtual bool on_client_bytes(std::span<const uint8_t> bytes) = 0;
  /// A write to the client finished and the send queue is below half its limit.
  virtual void on_client_drained() = 0;
  /// The connection closed (the client, an error, a timeout or close()); called once.
  virtual void on_client_closed() = 0;
};

/// What a connection calls back into (the worker's StreamService). Same thread.
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  /// One complete frame from the client; `now_us`: media_now_us() when the read that carried it
  /// was handled (now_ms() is now_us / 1000).
  virtual void on_frame(StreamConnection& c, std::span<const uint8_t> frame, int64_t now_us) = 0;
  /// The connection closed (by the client, an error, a timeout or close()); called once.
  virtual void on_closed(StreamConnection& c) = 0;
  /// The frames of one read were all delivered; outputs pointing into them (kept until now
  /// so they could be sent in one batch) must be sent before this returns.
  virtual void on_read_done() {}
  /// Whether the client of `c` has an allocation now (asked only when `c` has sent
  /// StreamLimits::unauth_bytes without one being seen in its responses).
  virtual bool has_allocation(const StreamConnection& /*c*/) { return false; }
};

/// A stream connection. Handlers hold a shared_ptr to it, so it lives until the last one ran;
/// the host holds it while open.
class StreamConnection : public ClientTransport,
                         public std::enable_shared_from_this<StreamConnection> {
 public:
  StreamConnection(StreamHost& host, const core::FiveTuple& tuple, const StreamLimits& limits,
                   core::TimeMs now);
  ~StreamConnection() override = default;
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  /// Starts the TLS handshake (if any) and reading.
  virtual void start() = 0;

  /// Queues a frame to the client (a copy; `stable` is irrelevant); drops it when the
  /// connection's send queue is full.
  void send(const core::FiveTuple& to, std::span<const uint8_t> data, bool stable) override;
  void flush() override {}
  /// Closes the connection (the host's on_closed runs). Idempotent.
  void close() override { shut("closed by the server"); }

  /// Which timeout passed at `now` ("idle timeout", "send stalled"), or null.
  const char* timed_out(core::TimeMs now) const;
  /// TLS: frees the session's record buffers when the connection has been idle for
  /// StreamLimits::tls_buffers_idle_ms at `now` (once per idle period). True when it freed them
  /// now.
  bool trim_if_idle(core::TimeMs now);
  /// Closes the connection, logging `why` at debug level. Idempotent.
  void close_for(const char* why) { shut(why); }

  /// RFC 6062 section 5.4: from now on the connection carries raw bytes both ways: what the
  /// client sends (including bytes already read after the current frame) goes to `sink`, and
  /// send_raw() queues bytes to the client. Call from the host's on_frame or later.
  void splice(std::shared_ptr<RawSink> sink);
  bool spliced() const { return spliced_; }
  /// Queues raw bytes to the client (a copy); false when they do not fit in the send queue.
  bool send_raw(std::span<const uint8_t> bytes);
  /// Bytes queued and not yet handed to the socket.
  size_t queued_bytes() const { return queue_.pending_bytes(); }
  size_t queue_limit() const { return queue_.limit(); }
  /// Reads again after RawSink::on_client_bytes returned false.
  void resume_reading();
  /// Closes once everything queued has been written (the peer closed: its last bytes still
  /// reach the client).
  void close_when_flushed();

  /// RFC 6062 on another worker: gives up the connection so that the worker holding the peer
  /// data connection can adopt it. Call from the host's on_frame with the `frame` being
  /// delivered (a ConnectionBind). Returns the descriptor, the TLS session and `frame` with
  /// every byte read after it; the connection is then closed without telling the host. Null
  /// with the connection open when it cannot move now (an answer queued or being written: the
  /// frame is this worker's to answer); null with it closed through the host as usual when
  /// moving failed half-way (TLS records of the session's own unsent, a TLS error, a socket
  /// error).
  std::unique_ptr<StreamHandoff> hand_off(std::span<const uint8_t> frame);
  /// A connection adopted from another worker: handles the handed bytes as if just read, then
  /// reads on (no TLS handshake: the session is established). Instead of start().
  void start_adopted(std::span<const uint8_t> bytes);

  const core::FiveTuple& tuple() const { return tuple_; }
  uint32_t id() const { return tuple_.listener; }
  bool is_open() const { return !closed_; }
  bool has_allocation() const { return has_allocation_; }
  uint64_t dropped_frames() const { return dropped_; }

 protected:
  /// Implementations: bytes `n` were read into the framer's write area (n may be 0).
  /// Delivers every complete frame; false if the connection closed.
  bool on_read(size_t n);
  /// Issues the next read (after a pause).
  virtual void read_more() = 0;
  /// Starts one write of `bytes` (valid until write_done()).
  virtual void start_write(std::span<const uint8_t> bytes) = 0;
  /// Calls kick_write() once the current handler has returned (queued frames wait for it, so
  /// the frames queued by one handler leave in one write). At most one pending at a time.
  virtual void defer_write() = 0;
  /// Starts a write of everything queued, unless one is in flight or nothing is queued.
  void kick_write();
  /// A write finished.
  void write_done(const asio::error_code& ec);
  /// Closes the socket (pending operations end with operation_aborted).
  virtual void close_socket() = 0;
  /// trim_if_idle(): frees what the stream can rebuild on its next read or write; false when
  /// it holds data now (nothing freed, tried again at the next sweep).
  virtual bool trim_buffers() { return true; }
  /// hand_off(): moves the descriptor (and TLS session, with any plaintext it already holds
  /// appended to h.bytes) into `h`. False: nothing moved (the connection stays as it was),
  /// unless it closed (is_open() tells).
  virtual bool release_stream(StreamHandoff& h) = 0;
  /// start_adopted() without the bytes: reads (and, for TLS, no handshake).
  virtual void start_reading() = 0;
  /// Closes with a reason (debug log) and tells the host.
  void shut(const char* why);
  void mark_established(core::TimeMs now);
  bool pack_tls_records() const { return limits_.pack_tls_records; }

  StreamFramer framer_;
  StreamSendQueue queue_;

 private:
  /// Hands everything read to the sink; false when reading must stop (paused or closed).
  bool deliver_raw();
  /// on_read() without the on_read_done() call.
  bool take_frames();
  /// Counts `n` bytes read without an allocation; false (and closed) when over the limit.
  bool within_unauth_budget(size_t n);

  StreamHost& host_;
  core::FiveTuple tuple_;
  StreamLimits limits_;
  core::TimeMs last_frame_;
  core::TimeMs last_write_ = 0;
  uint64_t dropped_ = 0;
  uint64_t unauth_bytes_ = 0;  ///< bytes read while no allocation was seen
  bool closed_ = false;
  bool has_allocation_ = false;
  std::shared_ptr<RawSink> sink_;  ///< spliced: where the client's bytes go
  bool spliced_ = false;
  bool paused_ = false;       ///< spliced: no read in flight until resume_reading()
  bool close_flushed_ = false;  ///< close_when_flushed() was called
  bool trimmed_ = false;  ///< trim_buffers() ran and nothing was read or written since
};

/// A plain TCP connection on an accepted socket.
std::shared_ptr<StreamConnection> make_tcp_connection(StreamHost& host,
                                                      asio::ip::tcp::socket socket,
                                                      const core::FiveTuple& tuple,
                                                      const StreamLimits& limits, core::TimeMs now);
/// A connection handed over by another worker (StreamHandoff: its descriptor, now in `socket`,
/// and for TLS its established session and context); start with start_adopted().
std::shared_ptr<StreamConnection> make_adopted_connection(StreamHost& host,
                                                          asio::ip::tcp::socket socket,
                                                          StreamHandoff& handoff,
                                                          const core::FiveTuple& tuple,
                                                          const StreamLimits& limits,
                                                          core::TimeMs now);
/// A TLS connection on an accepted socket (server side of the handshake with `tls`, which the
/// connection keeps alive: a certificate reload replaces the acceptor's context, not this one).
std::shared_ptr<StreamConnection> make_tls_connection(StreamHost& host,
                                                      asio::ip::tcp::socket socket,
                                                      std::shared_ptr<asio::ssl::context> tls,
                                                      const core::FiveTuple& tuple,
                                                      const StreamLimits& limits, core::TimeMs now);

}  // namespace callrelay::net
