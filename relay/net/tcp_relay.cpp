#include "relay/net/tcp_relay.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include "relay/net/socket_ops.hpp"
#include "base/log.hpp"

namespace callrelay::net {

core::TimeMs now_ms();  // worker.cpp

namespace {

/// A peer that stops acknowledging (gone, or never reading) errors the connection out after
/// 30 s instead of holding its socket and buffers for as long as TCP retransmits; keepalive
/// does the same for a silent one. Best effort.
void set_peer_timeouts(asio::ip::tcp::socket& s) {
  const int fd = s.native_handle();
  const int on = 1, idle = 30, interval = 10, count = 3, user_timeout_ms = 30000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

asio::ip::tcp::endpoint to_asio(const stun::Endpoint& ep) {
  const auto sa = to_sockaddr(ep);
  asio::ip::tcp::endpoint out;
  std::memcpy(out.data(), sa.get(), sa.len);
  return out;
}

}  // namespace

/// One peer data connection: connecting (Connect), waiting for its ConnectionBind with the
/// peer's bytes buffered, or spliced to its client data connection. Handlers hold a
/// shared_ptr; `owner_` is null once TcpRelays let go of it.
class TcpRelays::Peer final : public RawSink, public std::enable_shared_from_this<Peer> {
 public:
  Peer(TcpRelays& owner, core::ConnectionId cid, asio::ip::tcp::socket socket)
      : owner_(&owner),
        cid_(cid),
        socket_(std::move(socket)),
        timer_(owner.ctx_),
        pace_in_(owner.ctx_),
        pace_out_(owner.ctx_) {
    in_.resize(kReadChunk);  // grows to kPendingBytes only while bytes wait for the bind
  }

  void start_connect(const stun::Endpoint& peer) {
    timer_.expires_after(std::chrono::milliseconds(kConnectTimeoutMs));
    timer_.async_wait([this, self = shared_from_this()](const asio::error_code& ec) {
      if (!ec && !closed_ && !connected_) {
        timed_out_ = true;
        asio::error_code ignored;
        socket_.cancel(ignored);  // the connect handler reports the failure
      }
    });
    socket_.async_connect(to_asio(peer), [this, self = shared_from_this(), peer](const asio::error_code& ec) {
      if (closed_) return;
      timer_.cancel();
      if (ec) {
        if (log::enabled(log::Level::kDebug)) {
          const std::string why = timed_out_ ? std::string("timed out") : ec.message();
          log::debug("tcp_relay.connect_failed", {{"peer", peer.to_string()}, {"error", why}},
                     "tcp relay: connect to ", peer.to_string(), ": ", why);
        }
        closed_ = true;
        asio::error_code ignored;
        socket_.close(ignored);
        if (owner_ != nullptr) owner_->connected(cid_, false);
        return;
      }
      connected_ = true;
      if (log::enabled(log::Level::kDebug)) {
        log::debug("tcp_relay.connected", {{"peer", peer.to_string()}, {"connection_id", cid_}},
                   "tcp relay: connected to peer ", peer.to_string(), " (connection ", cid_, ")");
      }
      if (owner_ != nullptr) owner_->connected(cid_, true);
      if (!closed_) read();  // buffer what the peer sends before the ConnectionBind
    });
  }

  /// An accepted peer: buffer its bytes until the ConnectionBind.
  void start_accepted() {
    connected_ = true;
    read();
  }

  void bind(std::shared_ptr<StreamConnection> client, core::TrafficCounters& traffic,
            core::BandwidthGate* gate) {
    if (closed_) return client->close();
    client_ = std::move(client);
    traffic_ = &traffic;
    gate_ = gate;
    client_->splice(shared_from_this());
    if (log::enabled(log::Level::kDebug)) {
      const auto& tuple = client_->tuple();
      log::debug("tcp_relay.bound",
                 {{"connection_id", cid_}, {"transport", core::to_string(tuple.transport)},
                  {"client", tuple.client.to_string()}, {"buffered_bytes", in_len_}},
                 "tcp relay: connection ", cid_, " bound to ", core::to_string(tuple.transport),
                 " ", tuple.client.to_string(), " (", in_len_, " bytes buffered)");
    }
    // "This includes data that was received after the associated Connect or request was
    // successfully processed and before this ConnectionBind request was received."
    if (in_len_ > 0) {
      const std::span<const uint8_t> early(in_.data(), in_len_);
      in_len_ = 0;
      if (!to_client(early)) return;
      if (pace_peer_reads(early.size())) return;
    }
    if (!reading_ && !read_paused_) read();
  }

  /// Closes the peer socket and, if spliced, the client data connection. `tell_core`: the
  /// close is the sockets' doing, not the core's.
  void close(bool tell_core) {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    pace_in_.cancel();
    pace_out_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    if (auto c = std::move(client_)) c->close();
    TcpRelays* owner = std::exchange(owner_, nullptr);
    if (tell_core && owner != nullptr) owner->forget(cid_);
  }

  /// TcpRelays goes away (shutdown): nothing may call back into it.
  void detach() {
    owner_ = nullptr;
    close(false);
  }

  // --- RawSink: the client data connection ---
  bool on_client_bytes(std::span<const uint8_t> bytes) override {
    if (closed_) return false;
    traffic_->bytes_to_peer.add(bytes.size());
    traffic_->packets_to_peer.add(1);
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    if (!writing_) write();
    // Stop reading the client while a few chunks wait for a slow peer, or while the bytes
    // just read put the allocation over its bandwidth caps.
    client_paused_ = out_.size() >= 4 * kReadChunk;
    pace_client_reads(bytes.size());
    return !client_paused_ && !paced_out_;
  }

  void on_client_drained() override {
    if (read_paused_ && !closed_) {
      read_paused_ = false;
      read();  // not while paced: the pacing timer reads again
    }
  }

  void on_client_closed() override {
    // RFC 6062 section 5.5: "When a client data connection is closed or times out, the server
    // MUST close the corresponding peer data connection." Bytes the client sent last still go.
    client_.reset();
    if (closed_) return;
    if (writing_ || !out_.empty()) {
      close_after_write_ = true;
      TcpRelays* owner = std::exchange(owner_, nullptr);
      if (owner != nullptr) owner->forget(cid_);
      return;
    }
    close(true);
  }

 private:
  void read() {
    if (closed_ || reading_ || paced_in_) return;
    // Before the bind, bytes accumulate (up to kPendingBytes, then the peer waits); after,
    // each read is passed on at once.
    if (in_len_ == in_.size() && in_.size() < kPendingBytes) in_.resize(std::min(in_.size() * 2, kPendingBytes));
    const size_t room = in_.size() - in_len_;
    if (room == 0) return;
    reading_ = true;
    // The read lands at `at`; bind() may hand the bytes before it to the client (and reset
    // in_len_) while it is pending, so the handler must not assume the buffer's start.
    const size_t at = in_len_;
    socket_.async_read_some(asio::buffer(in_.data() + at, client_ ? std::min(room, kReadChunk) : room),
                            [this, self = shared_from_this(), at](const asio::error_code& ec, size_t n) {
                              reading_ = false;
                              if (closed_) return;
                              if (ec) return peer_gone(ec);
                              if (!client_) {  // still waiting for the ConnectionBind
                                in_len_ = at + n;
                                return read();
                              }
                              in_len_ = 0;
                              if (!to_client(std::span<const uint8_t>(in_.data() + at, n))) return;
                              if (pace_peer_reads(n)) return;
                              read_unless_client_behind();
                            });
  }

  /// Flow control: a client that does not keep up stops the reads (on_client_drained resumes).
  void read_unless_client_behind() {
    if (client_->queued_bytes() >= client_->queue_limit() / 2) {
      read_paused_ = true;
    } else {
      read();
    }
  }

  /// Charges `n` bytes read from the peer to the caps; true when reading the peer pauses
  /// (a timer reads again once the tokens are back).
  bool pace_peer_reads(size_t n) {
    const core::TimeMs wait = gate_ != nullptr ? gate_->charge(core::Direction::kToClient, n, now_ms()) : 0;
    if (wait <= 0) return false;
    paced_in_ = true;
    pace_in_.expires_after(std::chrono::milliseconds(wait));
    pace_in_.async_wait([this, self = shared_from_this()](const asio::error_code& ec) {
      if (ec || closed_) return;
      paced_in_ = false;
      if (client_) read_unless_client_behind();
    });
    return true;
  }

  /// Charges `n` bytes read from the client; over the caps, the client connection is not read
  /// until the tokens are back (on_client_bytes returns false meanwhile).
  void pace_client_reads(size_t n) {
    const core::TimeMs wait = gate_ != nullptr ? gate_->charge(core::Direction::kToPeer, n, now_ms()) : 0;
    if (wait <= 0) return;
    paced_out_ = true;
    pace_out_.expires_after(std::chrono::milliseconds(wait));
    pace_out_.async_wait([this, self = shared_from_this()](const asio::error_code& ec) {
      if (ec || closed_) return;
      paced_out_ = false;
      if (!client_paused_ && client_) client_->resume_reading();
    });
  }

  /// Hands peer bytes to the client data connection; false when it closed everything.
  bool to_client(std::span<const uint8_t> bytes) {
    traffic_->bytes_to_client.add(bytes.size());
    traffic_->packets_to_client.add(1);
    if (client_->send_raw(bytes)) return true;
    log::debug("tcp_relay.client_overflow", {{"connection_id", cid_}},
               "tcp relay: client data connection's queue overflowed; closing");
    close(true);
    return false;
  }

  void peer_gone(const asio::error_code& ec) {
    // "When a peer data connection is closed or times out, the server MUST close the
    // corresponding client data connection." What the peer sent before reaches the client.
    if (log::enabled(log::Level::kDebug) && ec != asio::error::eof) {
      log::debug("tcp_relay.peer_closed", {{"connection_id", cid_}, {"error", ec.message()}},
                 "tcp relay: peer connection: ", ec.message());
    }
    if (client_) client_->close_when_flushed();
    client_.reset();
    close(true);
  }

  void write() {
    if (out_.empty() || (closed_ && !close_after_write_)) return;
    writing_ = true;
    writing_buf_.swap(out_);
    out_.clear();
    asio::async_write(socket_, asio::buffer(writing_buf_),
                      [this, self = shared_from_this()](const asio::error_code& ec, size_t) {
                        writing_ = false;
                        writing_buf_.clear();
                        if (ec) return close(true);
                        if (!out_.empty()) return write();
                        if (close_after_write_) {
                          asio::error_code ignored;
                          socket_.shutdown(asio::socket_base::shutdown_send, ignored);
                          return close(false);
                        }
                        if (client_paused_ && client_) {
                          client_paused_ = false;
                          if (!paced_out_) client_->resume_reading();  // else the pacing timer does
                        }
                      });
  }

  TcpRelays* owner_;
  core::ConnectionId cid_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  asio::steady_timer pace_in_, pace_out_;  ///< bandwidth caps: resume reading the peer / client
  std::vector<uint8_t> in_;  ///< peer -> client
  size_t in_len_ = 0;
  std::vector<uint8_t> out_, writing_buf_;  ///< client -> peer: queued, being written
  std::shared_ptr<StreamConnection> client_;
  core::TrafficCounters* traffic_ = nullptr;
  core::BandwidthGate* gate_ = nullptr;  ///< the allocation's caps (null: not paced)
  bool paced_in_ = false, paced_out_ = false;  ///< reading the peer / the client waits for tokens
  bool connected_ = false, timed_out_ = false, closed_ = false;
  bool reading_ = false, read_paused_ = false, writing_ = false;
  bool client_paused_ = false, close_after_write_ = false;
};

TcpRelays::TcpRelays(asio::io_context& ctx, core::TurnServer& core, Dispatch dispatch)
    : ctx_(ctx), core_(core), dispatch_(std::move(dispatch)) {}

TcpRelays::~TcpRelays() { close_all(); }

bool TcpRelays::listen(core::RelayId id, int fd, const stun::Endpoint& bound) {
  auto l = std::make_unique<Listener>(Listener{asio::ip::tcp::acceptor(ctx_), bound, next_serial_++});
  asio::error_code ec;
  l->acceptor.assign(bound.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), fd, ec);
  if (ec) {
    log::warn("tcp_relay.listen_failed", {{"address", bound.to_string()}, {"error", ec.message()}},
              "tcp relay on ", bound.to_string(), ": ", ec.message());
    ::close(fd);
    return false;
  }
  const uint64_t serial = l->serial;
  listeners_[id] = std::move(l);
  accept(id, serial);
  return true;
}

void TcpRelays::close_listener(core::RelayId id) {
  const auto it = listeners_.find(id);
  if (it == listeners_.end()) return;
  asio::error_code ignored;
  it->second->acceptor.close(ignored);
  listeners_.erase(it);
}

void TcpRelays::accept(core::RelayId id, uint64_t serial) {
  Listener& l = *listeners_.at(id);
  l.acceptor.async_accept([this, id, serial](const asio::error_code& ec, asio::ip::tcp::socket socket) {
    const auto it = listeners_.find(id);
    if (closing_ || it == listeners_.end() || it->second->serial != serial) return;  // closed
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors: the peer's connection is lost; keep accepting the next ones.
      log::debug("tcp_relay.accept_failed",
                 {{"address", it->second->bound.to_string()}, {"error", ec.message()}},
                 "tcp relay on ", it->second->bound.to_string(), ": accept: ", ec.message());
    } else {
      adopt_peer(id, std::move(socket));
    }
    if (listeners_.count(id) != 0 && listeners_.at(id)->serial == serial) accept(id, serial);
  });
}

void TcpRelays::adopt_peer(core::RelayId id, asio::ip::tcp::socket socket) {
  asio::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;
  const auto peer = from_sockaddr(remote.data(), static_cast<socklen_t>(remote.size()));
  if (!peer) return;
  // RFC 6062 section 5.3: the core checks the permission and names the connection; without
  // a CONNECTION-ID the socket closes here.
  std::optional<core::ConnectionId> cid;
  const core::Output out = core_.on_peer_connection(id, *peer, now_ms(), &cid);
  if (!cid) {
    if (log::enabled(log::Level::kDebug)) {
      log::debug("tcp_relay.peer_refused",
                 {{"peer", peer->to_string()}, {"reason", "no_permission"}},
                 "tcp relay: refused a connection from ", peer->to_string(), " (no permission)");
    }
    return;
  }
  if (!claim(*cid)) {  // another worker holds the same random id: refuse this peer
    core_.on_peer_closed(*cid, now_ms());
    return;
  }
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  set_peer_timeouts(socket);
  if (log::enabled(log::Level::kDebug)) {
    const std::string bound = listeners_.at(id)->bound.to_string();
    log::debug("tcp_relay.peer_connected",
               {{"address", bound}, {"peer", peer->to_string()}, {"connection_id", *cid}},
               "tcp relay ", bound, ": peer ", peer->to_string(), " connected (connection ", *cid,
               ")");
  }
  auto p = std::make_shared<Peer>(*this, *cid, std::move(socket));
  peers_[*cid] = p;
  count_peers();
  dispatch_(out);  // the ConnectionAttempt indication
  p->start_accepted();
}

bool TcpRelays::connect(core::RelayId relay, core::ConnectionId cid, const stun::Endpoint& peer) {
  const auto it = listeners_.find(relay);
  if (it == listeners_.end() || peer.family != it->second->bound.family) return false;
  // Registered before the Connect's answer can name it; another worker's identical random id
  // makes this Connect fail (447) rather than leave a ConnectionBind two places to go.
  if (!claim(cid)) return false;
  // "The local endpoint is the relayed transport address associated with the allocation."
  const OpenResult r = open_tcp(it->second->bound, /*backlog=*/0);
  if (r.fd < 0) {
    log::debug("tcp_relay.bind_failed",
               {{"address", it->second->bound.to_string()}, {"step", r.step},
                {"error", error_text(r.error)}},
               "tcp relay: cannot bind ", it->second->bound.to_string(), " to connect: ", r.step,
               ": ", error_text(r.error));
    unclaim(cid);
    return false;
  }
  asio::ip::tcp::socket socket(ctx_);
  asio::error_code ec;
  socket.assign(peer.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), r.fd, ec);
  if (ec) {
    ::close(r.fd);
    unclaim(cid);
    return false;
  }
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  set_peer_timeouts(socket);
  auto p = std::make_shared<Peer>(*this, cid, std::move(socket));
  peers_[cid] = p;
  count_peers();
  p->start_connect(peer);
  return true;
}

void TcpRelays::connected(core::ConnectionId cid, bool ok) {
  if (!ok) {
    peers_.erase(cid);  // the core forgets it with its 447
    count_peers();
    unclaim(cid);
  }
  dispatch_(core_.on_peer_connected(cid, ok, now_ms()));
}

void TcpRelays::bind(core::ConnectionId cid, const core::FiveTuple& client, core::TrafficCounters& traffic,
                     core::BandwidthGate* gate) {
  pending_bind_ = PendingBind{cid, client, &traffic, gate};
}

void TcpRelays::after_frame(StreamConnection& c) {
  if (!pending_bind_ || !(pending_bind_->client == c.tuple())) return;
  const PendingBind b = *pending_bind_;
  pending_bind_.reset();
  const auto it = peers_.find(b.cid);
  auto conn = streams_ != nullptr ? streams_->find(b.client) : nullptr;
  if (it == peers_.end() || !conn) {
    c.close();
    return;
  }
  it->second->bind(std::move(conn), *b.traffic, b.gate);
}

void TcpRelays::close_peer(core::ConnectionId cid) {
  const auto it = peers_.find(cid);
  if (it == peers_.end()) return;
  const std::shared_ptr<Peer> p = std::move(it->second);
  peers_.erase(it);
  count_peers();
  unclaim(cid);
  p->close(false);
}

void TcpRelays::forget(core::ConnectionId cid) {
  peers_.erase(cid);
  count_peers();
  unclaim(cid);
  if (!closing_) core_.on_peer_closed(cid, now_ms());
}

void TcpRelays::close_all() {
  closing_ = true;
  auto peers = std::move(peers_);
  peers_.clear();
  count_peers();
  for (auto& [cid, p] : peers) {
    unclaim(cid);
    p->detach();
  }
  for (auto& [id, l] : listeners_) {
    (void)id;
    asio::error_code ignored;
    l->acceptor.close(ignored);
  }
  listeners_.clear();
  pending_bind_.reset();
}

}  // namespace callrelay::net
