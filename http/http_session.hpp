// One HTTP/1.1 connection of the listener, on its own strand of the thread pool: reads one
// request at a time through RequestParser, asks the Router, writes the answer, and either
// waits for the next request (keep-alive) or closes. Its deadlines keep slow clients from
// holding a slot: the request head must arrive within header_timeout (TLS handshake
// included), the body within header_timeout of the head, the next request's first byte within
// idle_timeout, and each answer must be written within write_timeout. Hands itself over to a
// WsSession on an accepted WebSocket upgrade. Private to server.cpp (needs Asio).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>

#include "base/limits.hpp"
#include "http/conn_budget.hpp"
#include "http/request_parser.hpp"
#include "http/router.hpp"
#include "http/ws_session.hpp"
#include "relay/core/types.hpp"

namespace callrelay::http::detail {

/// What every session of one listener shares (owned by the server, outlives the sessions).
struct Shared {
  Router& router;
  ConnectionBudget& budget;
  base::LimitCounters* counters;  ///< may be null
  asio::io_context& io;
  std::shared_ptr<WsHub> hub;
  WsOptions ws;
  RequestParser::Limits parser;
  std::chrono::milliseconds header_timeout;
  std::chrono::milliseconds idle_timeout;
  std::chrono::milliseconds write_timeout;
  std::function<core::TimeMs()> now;  ///< the clock handed to the routes
};

/// Status line, headers and body of `r` (no body for HEAD), with Content-Length and the
/// Connection header saying whether the connection stays open.
std::string to_wire(const Response& r, bool keep_alive, bool head_only);

template <typename Socket>
class HttpSession final : public Evictable,
                          public std::enable_shared_from_this<HttpSession<Socket>> {
 public:
  HttpSession(Shared& shared, Socket socket, std::string client_ip)
      : shared_(shared),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        client_ip_(std::move(client_ip)),
        parser_(shared.parser) {}
  ~HttpSession() override { shared_.budget.close(id_); }

  /// Runs on the session's strand once the budget admitted it as `id`.
  void start(ConnectionBudget::Id id) {
    asio::dispatch(socket_.get_executor(), [self = this->shared_from_this(), id] {
      self->id_ = id;
      self->arm(self->shared_.header_timeout, Deadline::kHead);
      self->handshake();
    });
  }

  /// The listener is full and this connection waited longest for a request head.
  void evict() override {
    asio::post(socket_.get_executor(), [self = this->shared_from_this()] {
      self->keep_alive_ = false;  // a request being served still gets its answer
      const bool head_pending = self->parser_.state() == RequestParser::State::kHead;
      if (self->phase_ == Phase::kReading && head_pending) self->close();
    });
  }

 private:
  enum class Phase : uint8_t { kReading, kServing, kWriting, kClosed };
  enum class Deadline : uint8_t { kHead, kBody, kIdle, kWrite };

  void handshake() {
    if constexpr (std::is_same_v<Socket, TlsStream>) {
      socket_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](const asio::error_code& ec) {
                                if (ec) return self->close();
                                self->read();
                              });
    } else {
      read();
    }
  }

  /// Waits for `after`, then ends the connection unless the phase moved on (a newer arm).
  void arm(std::chrono::milliseconds after, Deadline kind) {
    const uint64_t generation = ++generation_;
    deadline_ = kind;
    timer_.expires_after(after);
    timer_.async_wait([self = this->shared_from_this(), generation](const asio::error_code& ec) {
      if (ec || generation != self->generation_ || self->phase_ == Phase::kClosed) return;
      if (self->deadline_ == Deadline::kHead && self->shared_.counters != nullptr)
        self->shared_.counters->hit(base::Limit::kHttpSlowHeaders);
      self->close();
    });
  }

  void read() {
    phase_ = Phase::kReading;
    socket_.async_read_some(asio::buffer(buf_), [self = this->shared_from_this()](
                                                    const asio::error_code& ec, size_t n) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec) return self->close();
      self->received(std::string_view(self->buf_.data(), n));
    });
  }

  void received(std::string_view data) {
    if (deadline_ == Deadline::kIdle) arm(shared_.header_timeout, Deadline::kHead);
    pending_.append(data);
    parse();
  }

  /// Feeds what was received; serves a complete request, else reads on.
  void parse() {
    const size_t used = parser_.feed(pending_);
    pending_.erase(0, used);
    switch (parser_.state()) {
      case RequestParser::State::kHead:
        return read();
      case RequestParser::State::kBody:
        if (deadline_ == Deadline::kHead) {
          shared_.budget.serving(id_);
          arm(shared_.header_timeout, Deadline::kBody);
        }
        return read();
      case RequestParser::State::kBad:
        keep_alive_ = false;
        return write(json_error(parser_.status(), parser_.error()), false);
      case RequestParser::State::kComplete:
        return serve();
    }
  }

  void serve() {
    phase_ = Phase::kServing;
    shared_.budget.serving(id_);
    ++generation_;  // no deadline while the route runs
    timer_.cancel();
    const bool keep_alive = parser_.keep_alive();
    Request r = parser_.take();
    r.client_ip = client_ip_;
    const core::TimeMs now = shared_.now();
    if (auto up = shared_.router.route_upgrade(r, now)) {
      if (auto* refused = std::get_if<Response>(&*up)) return write(*refused, false);
      return upgrade(std::get<WsAccept>(std::move(*up)));
    }
    // A request that asked for an upgrade we do not do ends its connection after the answer.
    const Response out = shared_.router.handle(r, now);
    write(out, keep_alive && r.upgrade.empty() && out.status < 400, r.method == "HEAD");
  }

  void write(const Response& out, bool keep_alive, bool head_only = false) {
    phase_ = Phase::kWriting;
    keep_alive_ = keep_alive_ && keep_alive;
    out_ = to_wire(out, keep_alive_, head_only);
    arm(shared_.write_timeout, Deadline::kWrite);
    asio::async_write(socket_, asio::buffer(out_), [self = this->shared_from_this()](
                                                       const asio::error_code& ec, size_t) {
      if (self->phase_ == Phase::kClosed) return;
      if (ec || !self->keep_alive_) return self->close();
      self->next_request();
    });
  }

  /// Keep-alive: the next request may already be buffered (pipelined), else wait for it.
  void next_request() {
    shared_.budget.waiting(id_);
    if (!pending_.empty()) {
      arm(shared_.header_timeout, Deadline::kHead);
      phase_ = Phase::kReading;
      return parse();
    }
    arm(shared_.idle_timeout, Deadline::kIdle);
    read();
  }

  /// The endpoint accepted: within the WebSocket limits, the socket leaves the HTTP budget
  /// for a WsSession (which releases its WebSocket slot when it ends).
  void upgrade(WsAccept acc) {
    const auto admit = shared_.budget.open_websocket(client_ip_, acc.endpoint->limits());
    if (admit != ConnectionBudget::WsAdmit::kAccepted) {
      acc.endpoint->on_close(acc.session);
      const bool per_address = admit == ConnectionBudget::WsAdmit::kPerAddress;
      return write(json_error(per_address ? 429 : 503,
                              per_address ? "too many WebSocket connections from this address"
                                          : "too many WebSocket connections"),
                   false);
    }
    phase_ = Phase::kClosed;  // the socket is the WsSession's now
    ++generation_;
    timer_.cancel();
    shared_.budget.close(id_);
    // Released when the WebSocket ends (the budget outlives every session).
    std::shared_ptr<void> slot(nullptr, [&budget = shared_.budget, ip = client_ip_](void*) {
      budget.close_websocket(ip);
    });
    auto session = std::make_shared<WsSession<Socket>>(shared_.io, std::move(socket_),
                                                       *acc.endpoint, acc.session, shared_.hub,
                                                       shared_.ws, std::move(slot));
    session->start(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
            acc.accept_key + "\r\n\r\n",
        std::move(pending_));
  }

  void close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    ++generation_;
    timer_.cancel();
    close_socket(socket_);
    shared_.budget.close(id_);
  }

  Shared& shared_;
  Socket socket_;
  asio::steady_timer timer_;
  const std::string client_ip_;
  RequestParser parser_;
  ConnectionBudget::Id id_ = 0;
  Phase phase_ = Phase::kReading;
  Deadline deadline_ = Deadline::kHead;
  uint64_t generation_ = 0;
  bool keep_alive_ = true;  ///< false once evicted or after an answer that ends the connection
  std::string pending_;     ///< received, not parsed yet
  std::string out_;         ///< the answer being written
  std::array<char, 8192> buf_{};
};

}  // namespace callrelay::http::detail
