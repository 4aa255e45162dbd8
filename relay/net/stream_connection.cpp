#include "relay/net/stream_connection.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "base/log.hpp"
#include "relay/net/stream_handoff.hpp"
#include "relay/net/tls_session.hpp"

namespace callrelay::net {

core::TimeMs now_ms();    // worker.hpp; declared here to keep this file free of the worker
int64_t media_now_us();  // worker.hpp

namespace {
/// Lines about what unauthenticated clients sent (garbage, oversized frames, too many bytes):
/// at most 10 a second for the whole process.
log::RateLimit& garbage_log() {
  static log::RateLimit limit(10, 1000);
  return limit;
}
}  // namespace

StreamConnection::StreamConnection(StreamHost& host, const core::FiveTuple& tuple,
                                   const StreamLimits& limits, core::TimeMs now)
    : framer_(limits.max_frame_bytes),
      queue_(limits.send_queue_bytes),
      host_(host),
      tuple_(tuple),
      limits_(limits),
      last_frame_(now) {}

void StreamConnection::send(const core::FiveTuple& /*to*/, std::span<const uint8_t> data,
                            bool /*stable*/) {
  if (closed_) return;
  if (!has_allocation_ && is_allocate_success(data)) has_allocation_ = true;
  if (!queue_.push(data)) {
    // A client that does not read: lose frames like UDP would, never grow without bound.
    if (dropped_++ == 0) {
      log::debug("stream.send_queue_full",
                 {{"transport", core::to_string(tuple_.transport)},
                  {"client", tuple_.client.to_string()}},
                 core::to_string(tuple_.transport), " ", tuple_.client.to_string(),
                 ": send queue full, dropping frames");
    }
    return;
  }
  if (queue_.ready()) defer_write();
}

void StreamConnection::splice(std::shared_ptr<RawSink> sink) {
  if (closed_) return;
  sink_ = std::move(sink);
  spliced_ = true;
  has_allocation_ = true;  // the long timeout applies, as to the control connection
}

bool StreamConnection::send_raw(std::span<const uint8_t> bytes) {
  if (closed_) return false;
  if (!queue_.push(bytes)) return false;
  // An RFC 6062 data connection passes on each read from the peer as it comes, in a write
  // (over TLS, a record) of its own when none is in flight, rather than waiting to merge it
  // with the next one: bytes are bytes, but clients that read a record at a time as one
  // message (coturn's turnutils_uclient over TLS) see the peer's writes as the peer made them.
  kick_write();
  return true;
}

void StreamConnection::resume_reading() {
  if (closed_ || !paused_) return;
  paused_ = false;
  // Bytes read before the pause but not yet taken go first.
  if (framer_.buffered() > 0 && !deliver_raw()) return;
  read_more();
}

void StreamConnection::close_when_flushed() {
  if (closed_) return;
  close_flushed_ = true;
  if (!queue_.in_flight() && !queue_.ready()) shut("closed by the peer");
}

bool StreamConnection::deliver_raw() {
  last_frame_ = now_ms();  // raw bytes are this connection's activity
  const std::span<const uint8_t> bytes = framer_.take_buffered();
  if (bytes.empty()) return true;
  const bool more = sink_->on_client_bytes(bytes);
  if (closed_) return false;
  if (!more) paused_ = true;
  return more;
}

std::unique_ptr<StreamHandoff> StreamConnection::hand_off(std::span<const uint8_t> frame) {
  // Only a connection with nothing on its way out moves: its socket changes threads, and a
  // queued answer would be lost or sent twice.
  if (closed_ || spliced_ || queue_.in_flight() || queue_.ready()) return nullptr;
  auto h = std::make_unique<StreamHandoff>();
  h->transport = tuple_.transport;
  h->client = tuple_.client;
  h->server = tuple_.server;
  h->bytes.assign(frame.begin(), frame.end());
  const std::span<const uint8_t> after = framer_.take_buffered();
  h->bytes.insert(h->bytes.end(), after.begin(), after.end());
  if (!release_stream(*h)) {
    if (closed_) return nullptr;
    // Nothing moved: the frame stays this worker's to answer; what followed it is read again.
    shut("could not hand the connection over");
    return nullptr;
  }
  closed_ = true;  // the adopting worker's connection carries on; the host is not told
  h->guard = limits_.guard;
  return h;
}

void StreamConnection::start_adopted(std::span<const uint8_t> bytes) {
  // The bytes go through the framer as if read from the socket: the ConnectionBind is answered
  // and spliced here, and what the client sent after it is handled in order.
  while (!bytes.empty() && !closed_) {
    const std::span<uint8_t> area = framer_.write_area();
    const size_t n = std::min(area.size(), bytes.size());
    std::memcpy(area.data(), bytes.data(), n);
    bytes = bytes.subspan(n);
    if (on_read(n)) continue;
    if (closed_ || bytes.empty()) return;
    // The splice's far end is not keeping up: keep the rest in the framer for resume_reading().
    while (!bytes.empty()) {
      const std::span<uint8_t> room = framer_.write_area();
      const size_t k = std::min(room.size(), bytes.size());
      std::memcpy(room.data(), bytes.data(), k);
      framer_.commit(k);
      bytes = bytes.subspan(k);
    }
    return;
  }
  if (!closed_) start_reading();
}

void StreamConnection::kick_write() {
  if (!queue_.ready()) return;
  trimmed_ = false;
  last_write_ = now_ms();
  start_write(queue_.begin_write());
}

void StreamConnection::write_done(const asio::error_code& ec) {
  if (closed_) return;
  queue_.complete();
  if (ec) {
    shut(ec == asio::error::eof ? "closed by the client" : "write failed");
    return;
  }
  kick_write();
  if (!spliced_) return;
  last_frame_ = now_ms();
  if (close_flushed_ && !queue_.in_flight()) return shut("closed by the peer");
  if (sink_ && queue_.pending_bytes() < queue_.limit() / 2) sink_->on_client_drained();
}

bool StreamConnection::within_unauth_budget(size_t n) {
  if (has_allocation_ || limits_.unauth_bytes == 0) return true;
  unauth_bytes_ += n;
  if (unauth_bytes_ <= limits_.unauth_bytes) return true;
  if (host_.has_allocation(*this)) {  // its Allocate success went out before we looked
    has_allocation_ = true;
    return true;
  }
  if (limits_.counters != nullptr) limits_.counters->hit(base::Limit::kTcpUnauthBytes);
  log::limited(garbage_log(), limits_.counters, log::Level::kInfo, "stream.unauthenticated_bytes",
               {{"transport", core::to_string(tuple_.transport)},
                {"client", tuple_.client.to_string()}, {"bytes", unauth_bytes_}},
               core::to_string(tuple_.transport), " ", tuple_.client.to_string(), ": ",
               unauth_bytes_, " bytes without an allocation; closing the connection");
  shut("too many bytes without an allocation");
  return false;
}

bool StreamConnection::on_read(size_t n) {
  trimmed_ = false;
  framer_.commit(n);
  if (spliced_) return sink_ && deliver_raw();
  if (!within_unauth_budget(n)) return false;
  // The frames stay in the framer's buffer until the next read: their outputs are sent in one
  // batch once all of them are handled, before anything can overwrite them.
  const bool more = take_frames();
  host_.on_read_done();
  return more;
}

bool StreamConnection::take_frames() {
  // One clock reading for the frames of one read: they arrived together.
  int64_t now_us = -1;
  for (;;) {
    const StreamFramer::Next next = framer_.next();
    switch (next.status) {
      case StreamFramer::Status::kFrame:
        if (now_us < 0) now_us = media_now_us();
        last_frame_ = now_us / 1000;
        host_.on_frame(*this, next.frame, now_us);
        if (closed_) return false;
        if (spliced_) return deliver_raw();  // the frame was a ConnectionBind: raw from here
        continue;
      case StreamFramer::Status::kNeedMore:
        return true;
      case StreamFramer::Status::kGarbage:
        log::limited(garbage_log(), limits_.counters, log::Level::kInfo, "stream.garbage",
                     {{"transport", core::to_string(tuple_.transport)},
                      {"client", tuple_.client.to_string()}},
                     core::to_string(tuple_.transport), " ", tuple_.client.to_string(),
                     ": not STUN or ChannelData; closing the connection");
        shut("garbage");
        return false;
      case StreamFramer::Status::kTooLarge:
        log::limited(garbage_log(), limits_.counters, log::Level::kInfo, "stream.frame_too_large",
                     {{"transport", core::to_string(tuple_.transport)},
                      {"client", tuple_.client.to_string()}, {"frame_bytes", next.size},
                      {"max_frame_bytes", framer_.max_frame()}},
                     core::to_string(tuple_.transport), " ", tuple_.client.to_string(),
                     ": a frame of ", next.size, " bytes exceeds the maximum of ",
                     framer_.max_frame(), "; closing the connection");
        shut("frame too large");
        return false;
    }
  }
}

const char* StreamConnection::timed_out(core::TimeMs now) const {
  if (closed_) return nullptr;
  const core::TimeMs idle =
      has_allocation_ ? limits_.allocated_idle_timeout_ms : limits_.idle_timeout_ms;
  if (now - last_frame_ >= idle) return "idle timeout";
  if (queue_.in_flight() && now - last_write_ >= limits_.allocated_idle_timeout_ms) {
    return "send stalled";
  }
  return nullptr;
}

void StreamConnection::mark_established(core::TimeMs now) { last_frame_ = now; }

bool StreamConnection::trim_if_idle(core::TimeMs now) {
  if (closed_ || trimmed_ || tuple_.transport != core::Transport::kTls) return false;
  if (now - std::max(last_frame_, last_write_) < limits_.tls_buffers_idle_ms) return false;
  trimmed_ = trim_buffers();
  return trimmed_;
}

void StreamConnection::shut(const char* why) {
  if (closed_) return;
  closed_ = true;
  const auto self = shared_from_this();  // the host drops its reference in on_closed
  if (log::enabled(log::Level::kDebug)) {
    log::debug("stream.closed",
               {{"transport", core::to_string(tuple_.transport)},
                {"client", tuple_.client.to_string()}, {"reason", why},
                {"frames_dropped", dropped_}},
               core::to_string(tuple_.transport), " ", tuple_.client.to_string(), ": ", why,
               dropped_ ? " (" + std::to_string(dropped_) + " frames dropped)" : std::string());
  }
  close_socket();
  host_.on_closed(*this);
  if (auto sink = std::move(sink_)) sink->on_client_closed();
}

namespace {

/// What TCP and TLS connections share: the socket, deferred writes, closing.
class SocketConnection : public StreamConnection {
 public:
  SocketConnection(StreamHost& host, const core::FiveTuple& tuple, const StreamLimits& limits,
                   core::TimeMs now, asio::ip::tcp::socket socket)
      : StreamConnection(host, tuple, limits, now), socket_(std::move(socket)) {}

 protected:
  void defer_write() override {
    if (write_deferred_) return;
    write_deferred_ = true;
    // Runs after the handler that queued the frame, so the other frames that handler queues
    // (a batch of peer packets for this client) go out in the same write.
    asio::post(socket_.get_executor(), [this, self = shared_from_this()] {
      write_deferred_ = false;
      if (is_open()) kick_write();
    });
  }

  void close_socket() override {
    asio::error_code ignored;
    socket_.close(ignored);
  }

  asio::ip::tcp::socket socket_;

 private:
  bool write_deferred_ = false;  ///< a posted defer_write() has not run yet
};

/// A plain TCP connection.
class TcpConnection final : public SocketConnection {
 public:
  using SocketConnection::SocketConnection;

  void start() override { read(); }

 private:
  void read() {
    const std::span<uint8_t> area = framer_.write_area();
    socket_.async_read_some(
        asio::buffer(area.data(), area.size()),
        [this, self = shared_from_this()](const asio::error_code& ec, size_t n) {
          if (!is_open()) return;  // operation_aborted after close
          if (ec) return shut(ec == asio::error::eof ? "closed by the client" : "read failed");
          if (on_read(n)) read();
        });
  }

  void read_more() override { read(); }
  void start_reading() override { read(); }

  void start_write(std::span<const uint8_t> bytes) override {
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [this, self = shared_from_this()](const asio::error_code& ec, size_t) {
                        write_done(ec);
                      });
  }

  bool release_stream(StreamHandoff& h) override {
    asio::error_code ec;
    h.fd = socket_.release(ec);
    return !ec;
  }
};

/// A TLS connection: OpenSSL's session (TlsSession) between the socket and the framer. Reads
/// decrypt what one socket read brought; writes encrypt the frames of one write (a record per
/// frame, or packed) and send all their records at once.
class TlsConnection final : public SocketConnection {
 public:
  /// A new connection: the handshake comes first.
  TlsConnection(StreamHost& host, const core::FiveTuple& tuple, const StreamLimits& limits,
                core::TimeMs now, asio::ip::tcp::socket socket,
                std::shared_ptr<asio::ssl::context> ctx)
      : SocketConnection(host, tuple, limits, now, std::move(socket)),
        context_(std::move(ctx)),
        session_(context_->native_handle()) {}
  /// A connection handed over by another worker, its session established.
  TlsConnection(StreamHost& host, const core::FiveTuple& tuple, const StreamLimits& limits,
                core::TimeMs now, asio::ip::tcp::socket socket,
                std::shared_ptr<asio::ssl::context> ctx, SSL* ssl)
      : SocketConnection(host, tuple, limits, now, std::move(socket)),
        context_(std::move(ctx)),
        session_(ssl) {}

  void start() override { handshake(); }

 private:
  void handshake() {
    TlsSession::clear_errors();
    switch (session_.handshake()) {
      case TlsSession::Status::kOk:
        log_handshake();
        mark_established(now_ms());
        // The server's last flight (TLS 1.2) or its session tickets (1.3) leave before the
        // first read, so that a connection handed to another worker on its first frame has no
        // send in flight.
        if (session_.has_output()) {
          read_after_send_ = true;
          return flush_output();
        }
        return read();
      case TlsSession::Status::kWantRead:
        flush_output();
        return read_socket([this] { handshake(); });
      case TlsSession::Status::kClosed:
        return shut("closed by the client");
      case TlsSession::Status::kError:
        return handshake_failed(session_.error());
    }
  }

  /// Reads the socket into the session's input, then runs `next`.
  template <typename Next>
  void read_socket(Next next) {
    const std::span<uint8_t> space = session_.input_space();
    // The session asks for more only once it took in all it had (an empty read would complete
    // at once, again and again).
    if (space.empty()) return shut("tls input not taken");
    socket_.async_read_some(
        asio::buffer(space.data(), space.size()),
        [this, self = shared_from_this(), next](const asio::error_code& ec, size_t n) {
          if (!is_open()) return;  // operation_aborted after close
          if (ec) {
            if (!session_.handshake_done()) return handshake_failed(ec.message());
            return shut(ec == asio::error::eof ? "closed by the client" : "read failed");
          }
          session_.input_added(n);
          next();
        });
  }

  /// Hands the plaintext the session holds to the framer, then reads the socket for more.
  void read() {
    TlsSession::clear_errors();
    for (;;) {
      const std::span<uint8_t> area = framer_.write_area();
      size_t n = 0;
      // A connection that relays takes every record one socket read brought in one pass, so
      // their frames are handled, and their packets sent to peers, in one batch (clients write
      // a record per frame). Before its allocation a connection reads a record at a time, so
      // that one still setting up (an RFC 6062 data connection before its ConnectionBind is
      // answered, which then carries raw bytes) reads exactly as the client wrote.
      switch (session_.read(area, n, has_allocation() && !spliced())) {
        case TlsSession::Status::kOk:
          // The records of one socket read did not fit: the framer takes a whole socket
          // read's plaintext from the next pass on, so that its frames leave in one batch
          // (each pass ends with a send to the peers). Idle, the framer shrinks back.
          if (n == area.size()) framer_.read_up_to(TlsSession::kInputBytes);
          if (!on_read(n)) return;  // closed, or paused until resume_reading()
          continue;
        case TlsSession::Status::kWantRead:
          break;
        case TlsSession::Status::kClosed:
          return shut("closed by the client");
        case TlsSession::Status::kError:
          if (log::enabled(log::Level::kDebug)) {
            log::debug("tls.read_failed",
                       {{"client", tuple().client.to_string()}, {"error", session_.error()}},
                       "tls ", tuple().client.to_string(), ": ", session_.error());
          }
          return shut("read failed");
      }
      break;
    }
    // Reading may have made records of the session's own (a KeyUpdate's answer).
    flush_output();
    read_socket([this] { read(); });
  }

  void read_more() override { read(); }
  void start_reading() override { read(); }

  void start_write(std::span<const uint8_t> bytes) override {
    TlsSession::clear_errors();
    bool ok = true;
    if (!spliced() && !pack_tls_records()) {
      // One record per frame. A stream carries frames, not records, and RFC 8656 section 12.5
      // has clients reframe what they read; but coturn has always sent a record per message,
      // and clients written against it (its own turnutils_uclient among them) drop a record
      // holding two frames.
      size_t begin = 0;
      for (const size_t end : queue_.writing_frame_ends()) {
        if (!(ok = session_.write(bytes.subspan(begin, end - begin)))) break;
        begin = end;
      }
    } else {
      // Packed records (up to 16 KiB each, as OpenSSL cuts them), and the raw bytes of an RFC
      // 6062 data connection: one SSL_write for the whole write.
      ok = session_.write(bytes);
    }
    if (!ok) {
      if (log::enabled(log::Level::kDebug)) {
        log::debug("tls.write_failed",
                   {{"client", tuple().client.to_string()}, {"error", session_.error()}},
                   "tls ", tuple().client.to_string(), ": ", session_.error());
      }
      return shut("tls write failed");
    }
    queue_write_pending_ = true;
    flush_output();
  }

  /// Sends every record the session made, in one write, unless a send is in flight (its
  /// completion sends what was made meanwhile). The queue's write completes with the send that
  /// carries its records.
  void flush_output() {
    if (session_.sending() || !session_.has_output()) return;
    const bool carries_queue = std::exchange(queue_write_pending_, false);
    const std::span<const uint8_t> out = session_.take_output();
    asio::async_write(
        socket_, asio::buffer(out.data(), out.size()),
        [this, self = shared_from_this(), carries_queue](const asio::error_code& ec, size_t) {
          session_.output_sent();
          if (!is_open()) return;
          if (std::exchange(read_after_send_, false)) {
            if (ec) return shut(ec == asio::error::eof ? "closed by the client" : "write failed");
            return read();
          }
          if (carries_queue) {
            write_done(ec);  // may start the next write, which flushes
          } else if (ec) {
            return shut(ec == asio::error::eof ? "closed by the client" : "write failed");
          }
          if (is_open()) flush_output();
        });
  }

  bool trim_buffers() override {
    // Not while frames are on their way: the session refuses too while records are unsent.
    if (queue_.in_flight()) return false;
    // The framer is filled from the session, never by a pending socket read: it may go too.
    return session_.free_buffers() && framer_.release();
  }

  bool release_stream(StreamHandoff& h) override {
    // Records already made (a KeyUpdate's answer) would be lost with this connection.
    if (session_.sending() || session_.has_output()) {
      shut("tls output pending at a hand-over");
      return false;
    }
    // Decrypt what the session already holds, so the adopting worker gets it as bytes; a
    // partial record stays in the session.
    TlsSession::clear_errors();
    std::array<uint8_t, 4096> plain{};
    for (;;) {
      size_t n = 0;
      const TlsSession::Status s = session_.read(plain, n, true);
      if (s == TlsSession::Status::kOk) {
        h.bytes.insert(h.bytes.end(), plain.begin(), plain.begin() + static_cast<ptrdiff_t>(n));
        continue;
      }
      if (s == TlsSession::Status::kWantRead) break;
      shut("tls error before a hand-over");
      return false;
    }
    if (session_.has_output()) {
      shut("tls output pending at a hand-over");
      return false;
    }
    asio::error_code ec;
    const int fd = socket_.release(ec);
    if (ec) return false;
    h.fd = fd;
    h.ssl = session_.release();
    h.tls = context_;
    return true;
  }

  void handshake_failed(const std::string& why) {
    if (log::enabled(log::Level::kDebug)) {
      log::debug("tls.handshake_failed", {{"client", tuple().client.to_string()}, {"error", why}},
                 "tls ", tuple().client.to_string(), ": handshake failed: ", why);
    }
    shut("tls handshake failed");
  }

  void log_handshake() {
    if (!log::enabled(log::Level::kDebug)) return;
    SSL* ssl = session_.native_handle();
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    log::debug("tls.handshake",
               {{"client", tuple().client.to_string()}, {"version", SSL_get_version(ssl)},
                {"cipher", SSL_get_cipher_name(ssl)}, {"sni", sni ? sni : ""}},
               "tls ", tuple().client.to_string(), ": ", SSL_get_version(ssl), " ",
               SSL_get_cipher_name(ssl), ", SNI ", sni ? sni : "(none)");
  }

  std::shared_ptr<asio::ssl::context> context_;  ///< outlives the session's SSL object
  TlsSession session_;
  bool queue_write_pending_ = false;  ///< the queue's write is in the session's output
  bool read_after_send_ = false;      ///< the handshake's last output is on its way
};

}  // namespace

std::shared_ptr<StreamConnection> make_tcp_connection(StreamHost& host,
                                                      asio::ip::tcp::socket socket,
                                                      const core::FiveTuple& tuple,
                                                      const StreamLimits& limits,
                                                      core::TimeMs now) {
  return std::make_shared<TcpConnection>(host, tuple, limits, now, std::move(socket));
}

std::shared_ptr<StreamConnection> make_adopted_connection(StreamHost& host,
                                                          asio::ip::tcp::socket socket,
                                                          StreamHandoff& handoff,
                                                          const core::FiveTuple& tuple,
                                                          const StreamLimits& limits,
                                                          core::TimeMs now) {
  if (handoff.ssl == nullptr) {
    return std::make_shared<TcpConnection>(host, tuple, limits, now, std::move(socket));
  }
  SSL* ssl = std::exchange(handoff.ssl, nullptr);
  return std::make_shared<TlsConnection>(host, tuple, limits, now, std::move(socket),
                                         std::move(handoff.tls), ssl);
}

std::shared_ptr<StreamConnection> make_tls_connection(
    StreamHost& host, asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls,
    const core::FiveTuple& tuple, const StreamLimits& limits, core::TimeMs now) {
  return std::make_shared<TlsConnection>(host, tuple, limits, now, std::move(socket),
                                         std::move(tls));
}

}  // namespace callrelay::net
