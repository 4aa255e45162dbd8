// One WebSocket connection after the upgrade, on its own strand of the HTTP listener's thread
// pool: reads client frames through WsReader, hands text messages to the WsEndpoint, answers
// pings, pings the client every ping_interval and drops one that sent nothing for
// idle_timeout. Private to server.cpp (needs Asio); the endpoint only sees WsConnection.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/log.hpp"
#include "http/websocket.hpp"
#include "http/ws_frame.hpp"

namespace callrelay::http::detail {

using Clock = std::chrono::steady_clock;
using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

/// Ends the TCP connection under either socket type (a TLS close_notify is not waited for).
inline void close_socket(asio::ip::tcp::socket& s) {
  asio::error_code ignored;
  s.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  s.close(ignored);
}
inline void close_socket(TlsStream& s) { close_socket(s.next_layer()); }

/// What a session needs to know besides its socket.
struct WsOptions {
  std::chrono::milliseconds ping_interval{15000};
  std::chrono::milliseconds idle_timeout{45000};
  /// How long a closing session waits for its close frame to go out and the peer's to come.
  std::chrono::milliseconds close_timeout{5000};
  /// Bytes queued for a client that does not read; beyond this it is dropped.
  size_t max_queued_bytes = 4 * 1024 * 1024;
};

/// What the thread-safe handle and the server may ask of a session (all posted to its strand).
class WsSessionBase {
 public:
  virtual ~WsSessionBase() = default;
  virtual void post_send(std::string text) = 0;
  virtual void post_close(uint16_t code, std::string reason) = 0;
  /// Closes the socket at once (server shutdown), then runs `done` on the strand.
  virtual void post_abort(std::function<void()> done) = 0;
};

/// The open sessions, shared by the server and every handle. Once stopped (the server is
/// shutting down), handles do nothing: nothing is posted to an io_context that is going away.
class WsHub {
 public:
  void add(uint64_t key, std::weak_ptr<WsSessionBase> s) {
    const std::lock_guard lock(mutex_);
    sessions_[key] = std::move(s);
  }
  void remove(uint64_t key) {
    const std::lock_guard lock(mutex_);
    sessions_.erase(key);
  }
  /// Runs `f(session)` under the lock if the hub runs and the session is alive.
  template <typename F>
  void with(const std::weak_ptr<WsSessionBase>& weak, F&& f) {
    const std::lock_guard lock(mutex_);
    if (stopped_) return;
    if (auto s = weak.lock()) f(*s);
  }
  /// Stops the hub; returns the sessions still alive.
  std::vector<std::shared_ptr<WsSessionBase>> stop() {
    const std::lock_guard lock(mutex_);
    stopped_ = true;
    std::vector<std::shared_ptr<WsSessionBase>> alive;
    for (auto& [key, weak] : sessions_)
      if (auto s = weak.lock()) alive.push_back(std::move(s));
    sessions_.clear();
    return alive;
  }
  size_t size() const {
    const std::lock_guard lock(mutex_);
    return sessions_.size();
  }
  uint64_t next_key() {
    const std::lock_guard lock(mutex_);
    return ++last_key_;
  }

 private:
  mutable std::mutex mutex_;
  bool stopped_ = false;
  uint64_t last_key_ = 0;
  std::unordered_map<uint64_t, std::weak_ptr<WsSessionBase>> sessions_;
};

/// The WsConnection the endpoint holds: any thread, harmless after the socket closed and
/// after the server stopped (it holds the session weakly, never the socket).
class WsHandle final : public WsConnection {
 public:
  WsHandle(std::shared_ptr<WsHub> hub, std::weak_ptr<WsSessionBase> session)
      : hub_(std::move(hub)), session_(std::move(session)) {}
  void send_text(std::string text) override {
    hub_->with(session_, [&](WsSessionBase& s) { s.post_send(std::move(text)); });
  }
  void close(uint16_t code, std::string reason) override {
    hub_->with(session_, [&](WsSessionBase& s) { s.post_close(code, std::move(reason)); });
  }

 private:
  std::shared_ptr<WsHub> hub_;
  std::weak_ptr<WsSessionBase> session_;
};

template <typename Socket>
class WsSession final : public WsSessionBase,
                        public std::enable_shared_from_this<WsSession<Socket>> {
 public:
  WsSession(asio::io_context& io, Socket socket, WsEndpoint& endpoint, uint64_t session,
            std::shared_ptr<WsHub> hub, WsOptions opt, std::shared_ptr<void> slot = nullptr)
      : strand_(asio::make_strand(io)),
        socket_(std::move(socket)),
        ping_timer_(strand_),
        close_timer_(strand_),
        endpoint_(endpoint),
        session_(session),
        hub_(std::move(hub)),
        key_(hub_->next_key()),
        opt_(opt),
        reader_(endpoint.max_message_bytes()),
        slot_(std::move(slot)) {}

  /// Sends the 101 response, reports the session open, reads `early` (frames the client sent
  /// right behind its upgrade request), starts reading and pinging.
  void start(std::string handshake_response, std::string early = {}) {
    asio::dispatch(strand_, [self = this->shared_from_this(), h = std::move(handshake_response),
                             early = std::move(early)] {
      self->last_rx_ = Clock::now();
      // Frames are small and often back to back: without TCP_NODELAY the second waits for the
      // client's delayed ACK (Nagle), tens of ms per message.
      asio::error_code ignored;
      self->socket_.lowest_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
      self->hub_->add(self->key_, self->weak_from_this());
      self->enqueue(h);
      self->endpoint_.on_open(self->session_,
                              std::make_shared<WsHandle>(self->hub_, self->weak_from_this()));
      if (!early.empty()) self->consume(early);
      if (self->phase_ == Phase::kClosed) return;
      if (!self->reader_.done() && !self->draining_) self->read();
      if (self->phase_ == Phase::kOpen) self->arm_ping();
    });
  }

  void post_send(std::string text) override {
    asio::post(strand_, [self = this->shared_from_this(), t = std::move(text)] {
      if (self->phase_ == Phase::kOpen) self->enqueue(ws_frame(WsOpcode::kText, t));
    });
  }

  void post_close(uint16_t code, std::string reason) override {
    asio::post(strand_, [self = this->shared_from_this(), code, r = std::move(reason)] {
      self->begin_close(code, r);
    });
  }

  void post_abort(std::function<void()> done) override {
    asio::post(strand_, [self = this->shared_from_this(), d = std::move(done)] {
      self->finish();
      d();
    });
  }

 private:
  enum class Phase : uint8_t { kOpen, kClosing, kClosed };

  void read() {
    socket_.async_read_some(asio::buffer(buf_),
                            asio::bind_executor(strand_, [self = this->shared_from_this()](
                                                             const asio::error_code& ec, size_t n) {
                              self->on_read(ec, n);
                            }));
  }

  void on_read(const asio::error_code& ec, size_t n) {
    if (phase_ == Phase::kClosed) return;
    if (ec) {  // reset, EOF without a close frame (1006), or the socket closed under us
      finish();
      return;
    }
    if (draining_) {  // after a protocol failure: discard until the peer closes
      read();
      return;
    }
    consume(std::string_view(buf_.data(), n));
    if (phase_ != Phase::kClosed && !reader_.done() && !draining_) read();
  }

  void consume(std::string_view bytes) {
    last_rx_ = Clock::now();
    events_.clear();
    reader_.feed(bytes, events_);
    for (WsEvent& e : events_) handle(e);
  }

  void handle(WsEvent& e) {
    switch (e.kind) {
      case WsEvent::Kind::kText:
        if (phase_ == Phase::kOpen) endpoint_.on_message(session_, std::move(e.payload));
        return;
      case WsEvent::Kind::kPing:  // RFC 6455 section 5.5.2: answer with the same payload
        if (phase_ == Phase::kOpen) enqueue(ws_frame(WsOpcode::kPong, e.payload));
        return;
      case WsEvent::Kind::kPong:
        return;
      case WsEvent::Kind::kClose:
        if (phase_ == Phase::kClosing) {  // the answer to our close: done (section 7.1.1)
          finish();
          return;
        }
        // Section 5.5.1: echo the peer's code (none when it sent none), then close.
        enqueue(e.code == ws_close::kNoStatus ? ws_frame(WsOpcode::kClose, "")
                                              : ws_close_frame(e.code, ""));
        closing(/*wait_for_peer=*/false);
        return;
      case WsEvent::Kind::kFail:
        if (phase_ == Phase::kClosing) {
          finish();
          return;
        }
        log::debug("ws.closed", {{"session", session_}, {"reason", e.payload}},
                   "http: WebSocket session ", session_, " closed: ", e.payload);
        // RFC 6455 section 7.1.1: the close frame, then our FIN, while the rest of what the
        // client sent (an oversized message's tail) is read and discarded. Closing the socket
        // with unread bytes would send a reset, and the client would lose the close frame.
        draining_ = true;
        enqueue(ws_close_frame(e.code, e.payload));
        closing(/*wait_for_peer=*/true);
        read();
        return;
    }
  }

  /// A close the server starts: the close frame, then wait for the peer's (or the timeout).
  void begin_close(uint16_t code, const std::string& reason) {
    if (phase_ != Phase::kOpen) return;
    enqueue(ws_close_frame(code, reason));
    closing(/*wait_for_peer=*/true);
  }

  /// Leaves the open phase: tells the endpoint, and ends the socket once the close frame is
  /// out (and, when `wait_for_peer`, the peer's close came), or after close_timeout.
  void closing(bool wait_for_peer) {
    if (phase_ != Phase::kOpen) return;
    phase_ = Phase::kClosing;
    report_close();
    finish_after_flush_ = !wait_for_peer;
    if (finish_after_flush_ && !writing_) {
      finish();
      return;
    }
    close_timer_.expires_after(opt_.close_timeout);
    close_timer_.async_wait([self = this->shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->finish();
    });
  }

  void report_close() {
    if (reported_) return;
    reported_ = true;
    endpoint_.on_close(session_);
  }

  /// Closes the socket; the endpoint hears of it once (if it had not yet).
  void finish() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    report_close();
    ping_timer_.cancel();
    close_timer_.cancel();
    close_socket(socket_);
    hub_->remove(key_);
    slot_.reset();
  }

  void enqueue(std::string bytes) {
    if (phase_ == Phase::kClosed) return;
    queued_ += bytes.size();
    if (queued_ > opt_.max_queued_bytes) {
      log::info("ws.dropped", {{"session", session_}, {"reason", "slow_reader"}},
                "http: WebSocket session ", session_, " dropped: the client does not read");
      finish();
      return;
    }
    out_.push_back(std::move(bytes));
    if (!writing_) write_next();
  }

  /// Writes everything queued in one gathered write (deque elements stay put while more are
  /// queued behind them).
  void write_next() {
    writing_ = true;
    write_started_ = Clock::now();
    in_flight_ = out_.size();
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(in_flight_);
    for (const std::string& frame : out_) buffers.push_back(asio::buffer(frame));
    asio::async_write(socket_, buffers,
                      asio::bind_executor(strand_, [self = this->shared_from_this()](
                                                       const asio::error_code& ec, size_t) {
                        self->on_written(ec);
                      }));
  }

  void on_written(const asio::error_code& ec) {
    writing_ = false;
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      finish();
      return;
    }
    for (; in_flight_ > 0; --in_flight_) {
      queued_ -= out_.front().size();
      out_.pop_front();
    }
    if (!out_.empty()) {
      write_next();
    } else if (finish_after_flush_) {
      finish();
    } else if (draining_) {
      asio::error_code ignored;
      socket_.lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    }
  }

  void arm_ping() {
    ping_timer_.expires_after(opt_.ping_interval);
    ping_timer_.async_wait([self = this->shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->on_ping_timer();
    });
  }

  /// Every ping_interval: drop a client silent for idle_timeout (no pong, no message) or
  /// whose writes are stuck that long, else ping it (RFC 6455 section 5.5.2).
  void on_ping_timer() {
    if (phase_ != Phase::kOpen) return;
    const auto now = Clock::now();
    if (now - last_rx_ >= opt_.idle_timeout ||
        (writing_ && now - write_started_ >= opt_.idle_timeout)) {
      log::debug("ws.dropped", {{"session", session_}, {"reason", "idle"}},
                 "http: WebSocket session ", session_, " dropped: no activity");
      if (writing_) {
        finish();  // a close frame could not get past the stuck write: 1006 for the peer
        return;
      }
      enqueue(ws_close_frame(ws_close::kGoingAway, "no activity"));
      closing(false);
      return;
    }
    enqueue(ws_frame(WsOpcode::kPing, ""));
    arm_ping();
  }

  bool draining_ = false;  ///< closing after a failure: reading only to discard
  asio::strand<asio::io_context::executor_type> strand_;
  Socket socket_;
  asio::steady_timer ping_timer_;
  asio::steady_timer close_timer_;
  WsEndpoint& endpoint_;
  const uint64_t session_;
  std::shared_ptr<WsHub> hub_;
  const uint64_t key_;
  const WsOptions opt_;
  WsReader reader_;
  std::array<char, 16384> buf_{};
  std::vector<WsEvent> events_;
  std::deque<std::string> out_;
  size_t queued_ = 0;
  size_t in_flight_ = 0;  ///< frames at the front of out_ being written
  bool writing_ = false;
  bool finish_after_flush_ = false;
  bool reported_ = false;
  Phase phase_ = Phase::kOpen;
  Clock::time_point last_rx_{};
  Clock::time_point write_started_{};
  std::shared_ptr<void> slot_;  ///< the WebSocket's place in the listener's budget
};

}  // namespace callrelay::http::detail
