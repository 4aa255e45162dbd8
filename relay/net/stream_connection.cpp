#include "relay/net/stream_connection.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "base/log.hpp"
#include "relay/net/stream_handoff.hpp"

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

using Tcp = asio::ip::tcp::socket;
using Tls = asio::ssl::stream<asio::ip::tcp::socket>;

/// The connection over a concrete stream type: Tcp or Tls.
template <typename Stream>
class BasicStreamConnection final : public StreamConnection {
 public:
  template <typename... StreamArgs>
  BasicStreamConnection(StreamHost& host, const core::FiveTuple& tuple, const StreamLimits& limits,
                        core::TimeMs now, StreamArgs&&... args)
      : StreamConnection(host, tuple, limits, now), stream_(std::forward<StreamArgs>(args)...) {
    if constexpr (std::is_same_v<Stream, Tls>) {
      // Asio asks OpenSSL to free a session's read and write buffers whenever they empty, so a
      // busy connection allocated and freed about 34 KiB around every record (malloc and free
      // took 4.2% of a saturated TLS run's CPU, 2.5% after); trim_buffers() frees them once
      // the connection is idle instead.
      SSL_clear_mode(stream_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    }
  }

  void start() override {
    if constexpr (std::is_same_v<Stream, Tls>) {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [this, self = shared_from_this()](const asio::error_code& ec) {
                                if (!is_open()) return;
                                if (ec) return handshake_failed(ec);
                                log_handshake();
                                mark_established(now_ms());
                                read();
                              });
    } else {
      read();
    }
  }

 private:
  void read() {
    const std::span<uint8_t> area = framer_.write_area();
    stream_.async_read_some(
        asio::buffer(area.data(), area.size()),
        [this, self = shared_from_this()](const asio::error_code& ec, size_t n) {
          if (!is_open()) return;  // operation_aborted after close
          if (ec) {
            const bool clean = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
            return shut(clean ? "closed by the client" : "read failed");
          }
          if (on_read(n)) read();
        });
  }

  void read_more() override { read(); }

  void start_reading() override { read(); }

  bool release_stream(StreamHandoff& h) override {
    asio::error_code ec;
    if constexpr (std::is_same_v<Stream, Tls>) {
      SSL* ssl = stream_.native_handle();
      // Asio keeps ciphertext it read from the socket in a 17 KiB BIO pair and, when that is
      // full, in a buffer of its own that cannot be reached; only a nearly empty BIO proves that
      // buffer empty (one record is at most 16 KiB + 256 + 5 bytes, RFC 8446 section 5.2). A
      // client waits for the ConnectionBind's answer before sending data, so this is the case.
      if (BIO_ctrl_pending(SSL_get_rbio(ssl)) >= kMaxUnseenCiphertext) return false;
      // Decrypt what the session already holds, so the adopting worker gets it as bytes.
      std::array<uint8_t, 4096> plain{};
      for (;;) {
        ERR_clear_error();
        const int r = SSL_read(ssl, plain.data(), static_cast<int>(plain.size()));
        if (r > 0) {
          h.bytes.insert(h.bytes.end(), plain.begin(), plain.begin() + r);
          continue;
        }
        const int err = SSL_get_error(ssl, r);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) break;  // a partial record stays in the session
        shut("tls error before a hand-over");
        return false;
      }
      // Reading may have made output (a TLS 1.3 KeyUpdate's answer) that only this engine's
      // BIO holds: it would be lost with it.
      if (BIO_ctrl_wpending(SSL_get_wbio(ssl)) > 0) {
        shut("tls output pending at a hand-over");
        return false;
      }
      const int fd = stream_.lowest_layer().release(ec);
      if (ec) return false;
      SSL_up_ref(ssl);  // the hand-off's reference; the engine below drops its own
      h.ssl = ssl;
      h.tls = context_;
      h.fd = fd;
      // The engine (and its BIO pair) must be gone before the adopting thread gives the
      // session new BIOs: destroy it here, on this thread, now.
      { Stream gone(std::move(stream_)); }
    } else {
      h.fd = stream_.release(ec);
      if (ec) return false;
    }
    return true;
  }

 public:
  /// TLS: holds the context the handshake runs with for as long as the connection lives.
  void keep_context(std::shared_ptr<asio::ssl::context> ctx) { context_ = std::move(ctx); }

 private:

  void start_write(std::span<const uint8_t> bytes) override {
    if constexpr (std::is_same_v<Stream, Tls>) {
      if (!spliced() && !pack_tls_records()) {
        writing_ = bytes;
        next_frame_ = 0;
        return write_records();
      }
    }
    // TCP, TLS with packed records (Asio's stream cuts the bytes into records of up to 16 KiB),
    // and the raw bytes of an RFC 6062 data connection: one write of everything queued.
    asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()),
                      [this, self = shared_from_this()](const asio::error_code& ec, size_t) {
                        write_done(ec);
                      });
  }

  /// TLS: one record per frame, and the records of one write in as few sends as Asio's
  /// 17 KiB output buffer allows. A stream carries frames, not records, and RFC 8656 section
  /// 12.5 has clients reframe what they read; but coturn has always sent a record per
  /// message, and clients written against it (its own turnutils_uclient among them) drop a
  /// record holding two frames. Each SSL_write of Asio's stream makes a record and then a
  /// send of its own, so all frames but the last of a group are written with SSL_write into
  /// the BIO pair the stream flushes, and the last through the stream, which then sends every
  /// record pending in the pair at once.
  void write_records() requires std::is_same_v<Stream, Tls> {
    const std::span<const size_t> ends = queue_.writing_frame_ends();
    SSL* ssl = stream_.native_handle();
    size_t begin = next_frame_ == 0 ? 0 : ends[next_frame_ - 1];
    if (SSL_is_init_finished(ssl) == 1) {
      BIO* out = SSL_get_wbio(ssl);
      while (next_frame_ + 1 < ends.size()) {
        const size_t len = ends[next_frame_] - begin;
        // A record fits in the pair or waits for the stream: a partial one could not be
        // taken back.
        if (len > kMaxRecordPlaintext ||
            BIO_ctrl_get_write_guarantee(out) < len + kMaxRecordOverhead) {
          break;
        }
        // No SSL_get_error here: the error queue is cleared after a failure only (Asio clears
        // it before each of its own calls).
        const int r = SSL_write(ssl, writing_.data() + begin, static_cast<int>(len));
        if (r <= 0) {
          ERR_clear_error();
          return shut("tls write failed");
        }
        begin += static_cast<size_t>(r);
        if (static_cast<size_t>(r) < len) break;  // the rest of this frame goes through Asio
        ++next_frame_;
      }
    }
    const size_t end = ends[next_frame_++];
    asio::async_write(stream_, asio::buffer(writing_.data() + begin, end - begin),
                      [this, self = shared_from_this()](const asio::error_code& ec, size_t) {
                        if (ec || !is_open() || next_frame_ >= queue_.writing_frame_ends().size()) {
                          return write_done(ec);
                        }
                        write_records();
                      });
  }

  void defer_write() override {
    if (write_deferred_) return;
    write_deferred_ = true;
    // Runs after the handler that queued the frame, so the other frames that handler queues
    // (a batch of peer packets for this client) go out in the same write.
    asio::post(stream_.get_executor(), [this, self = shared_from_this()] {
      write_deferred_ = false;
      if (is_open()) kick_write();
    });
  }

  void close_socket() override {
    asio::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }

  bool trim_buffers() override {
    if constexpr (std::is_same_v<Stream, Tls>) {
      SSL* ssl = stream_.native_handle();
      // Not mid-handshake, and not while Asio is writing: a record may sit half sent in the
      // write buffer (SSL_free_buffers refuses then too, as it does with unread input).
      if (SSL_is_init_finished(ssl) != 1 || queue_.in_flight()) return false;
      return SSL_free_buffers(ssl) == 1;
    }
    return true;
  }

  void handshake_failed(const asio::error_code& ec) {
    if (log::enabled(log::Level::kDebug)) {
      log::debug("tls.handshake_failed",
                 {{"client", tuple().client.to_string()}, {"error", ec.message()}}, "tls ",
                 tuple().client.to_string(), ": handshake failed: ", ec.message());
    }
    shut("tls handshake failed");
  }

  void log_handshake() {
    if constexpr (std::is_same_v<Stream, Tls>) {
      if (!log::enabled(log::Level::kDebug)) return;
      SSL* ssl = stream_.native_handle();
      const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
      log::debug("tls.handshake",
                 {{"client", tuple().client.to_string()}, {"version", SSL_get_version(ssl)},
                  {"cipher", SSL_get_cipher_name(ssl)}, {"sni", sni ? sni : ""}},
                 "tls ", tuple().client.to_string(), ": ", SSL_get_version(ssl), " ",
                 SSL_get_cipher_name(ssl), ", SNI ", sni ? sni : "(none)");
    }
  }

  /// TLS: the BIO pair's pending bytes at or above which Asio may hold more ciphertext that a
  /// hand-over could not take along (17 KiB pair - the largest record).
  static constexpr size_t kMaxUnseenCiphertext = 17 * 1024 - (16384 + 256 + 5);

  /// TLS: the most plaintext in one record (RFC 8446 section 5.1) and more than any suite
  /// adds to it (header, nonce, tag or MAC and padding; RFC 8446 section 5.2 bounds the
  /// expansion by 256 bytes).
  static constexpr size_t kMaxRecordPlaintext = 16384;
  static constexpr size_t kMaxRecordOverhead = 5 + 256;

  std::shared_ptr<asio::ssl::context> context_;  ///< TLS: outlives stream_'s SSL object
  Stream stream_;
  std::span<const uint8_t> writing_;  ///< TLS: the bytes of the write in flight
  size_t next_frame_ = 0;             ///< TLS: the first of its frames not yet written
  bool write_deferred_ = false;  ///< a posted defer_write() has not run yet
};

}  // namespace

std::shared_ptr<StreamConnection> make_tcp_connection(StreamHost& host,
                                                      asio::ip::tcp::socket socket,
                                                      const core::FiveTuple& tuple,
                                                      const StreamLimits& limits,
                                                      core::TimeMs now) {
  return std::make_shared<BasicStreamConnection<Tcp>>(host, tuple, limits, now, std::move(socket));
}

std::shared_ptr<StreamConnection> make_adopted_connection(StreamHost& host,
                                                          asio::ip::tcp::socket socket,
                                                          StreamHandoff& handoff,
                                                          const core::FiveTuple& tuple,
                                                          const StreamLimits& limits,
                                                          core::TimeMs now) {
  if (handoff.ssl == nullptr) {
    return std::make_shared<BasicStreamConnection<Tcp>>(host, tuple, limits, now,
                                                        std::move(socket));
  }
  // asio::ssl::stream takes the established session over (and gives it BIOs of its own).
  SSL* ssl = std::exchange(handoff.ssl, nullptr);
  auto c = std::make_shared<BasicStreamConnection<Tls>>(host, tuple, limits, now,
                                                        std::move(socket), ssl);
  c->keep_context(std::move(handoff.tls));
  return c;
}

std::shared_ptr<StreamConnection> make_tls_connection(
    StreamHost& host, asio::ip::tcp::socket socket, std::shared_ptr<asio::ssl::context> tls,
    const core::FiveTuple& tuple, const StreamLimits& limits, core::TimeMs now) {
  auto c = std::make_shared<BasicStreamConnection<Tls>>(host, tuple, limits, now,
                                                        std::move(socket), *tls);
  c->keep_context(std::move(tls));
  return c;
}

}  // namespace callrelay::net
