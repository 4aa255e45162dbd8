#include "relay/net/worker.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "relay/net/socket_ops.hpp"
#include "base/log.hpp"

namespace callrelay::net {

core::TimeMs now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t media_now_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

Worker::Worker(unsigned index, unsigned count, const core::CoreConfig& core_config,
               const RelayNetSettings& relay, const std::vector<stun::Endpoint>& listen,
               const SharedAuth& shared, core::Observer* observer, core::UserLimits* users)
    : index_(index),
      ctx_(1),
      work_(asio::make_work_guard(ctx_)),
      relays_(ctx_, relay, index, count, listen),
      core_(core_config, shared.auth, shared.nonces, shared.policy, *this, observer, users),
      tcp_(ctx_, core_, [this](const core::Output& out) { dispatch(out); }),
      timer_(ctx_),
      media_clock_(core_config.media_quality) {
  core_.set_limit_counters(shared.limits);
  // A reservation of this worker claimed by another: the ring (if it holds the socket) stops
  // receiving on it before RelaySockets lets go of this worker's descriptor.
  relays_.set_detach_hook([this](core::RelayId id) {
    if (!uring_ || !uring_->watching(id)) return;
    const int fd = relays_.fd(id);
    uring_->unwatch(id);
    if (fd >= 0) ::close(fd);
  });
  RelayIo io = resolve_relay_io(configured_relay_io());
  if (relay.multiplex_peers) {
    // Shared relay sockets are demultiplexed on the epoll path only (the config refuses
    // io: io_uring with them; auto means epoll).
    if (configured_relay_io() == RelayIo::kUring) {
      throw std::runtime_error("relay.multiplex_peers cannot be used with relay.io: io_uring");
    }
    io = RelayIo::kEpoll;
    loop_buffer_.resize(RecvBatch::kSlotSize);
  }
  if (io == RelayIo::kUring) {
    if (!uring_unavailable().empty()) {
      throw std::runtime_error("relay.io is io_uring but io_uring cannot be used here: " +
                               uring_unavailable());
    }
    uring_ = std::make_unique<UringRelay>(ctx_);  // throws std::system_error (startup)
    relays_.set_polling(false);  // the ring reads the relay sockets (watch_relay)
  }
  if (index == 0) {
    const std::string why = uring_ ? std::string() : uring_unavailable();
    log::info("relay.io", {{"io", to_string(relay_io())}, {"configured", to_string(configured_relay_io())}, {"io_uring_unavailable", why}},
              "relay sockets use ", to_string(relay_io()), uring_ ? "" : " (io_uring: ",
              uring_ ? "" : (why.empty() ? "not chosen" : why), uring_ ? "" : ")");
    const bool v4 = udp_gso_supported(AF_INET), v6 = udp_gso_supported(AF_INET6);
    log::info("udp.gso", {{"configured", udp_gso_configured()}, {"ipv4", v4}, {"ipv6", v6}},
              "UDP segmentation offload ", !udp_gso_configured() ? "off (relay.udp_gso)"
                                           : v4 || v6 ? "on" : "not offered by this kernel");
  }
}

Worker::~Worker() {
  // Normally stop() ran already; this covers a worker destroyed without running.
  if (!stopping_) {
    stopping_ = true;
    core_.shutdown(now_ms());
    flush_all();
  }
  tcp_.close_all();
  if (streams_) streams_->close_all();
  for (auto& l : listeners_) l->close();
  close_uring();
  relays_.close_all();
}

void Worker::add_listener(int fd, const stun::Endpoint& bound) {
  listeners_.push_back(
      std::make_unique<UdpListener>(ctx_, fd, bound, static_cast<uint32_t>(listeners_.size())));
}

stun::Endpoint Worker::add_stream_listener(const stun::Endpoint& endpoint, bool join,
                                           const StreamLimits& limits,
                                           std::shared_ptr<asio::ssl::context> tls) {
  if (!streams_) {
    streams_ = std::make_unique<StreamService>(
        ctx_, core_, [this](const core::Output& out, bool batched) { dispatch(out, batched); },
        [this] {
          // Frames of a stream read point into its buffer: they leave before it is reused.
          if (uring_) uring_->submit();
          to_peers_.flush();
        },
        limits);
    streams_->set_after_frame([this](StreamConnection& c) { tcp_.after_frame(c); });
    streams_->set_media_clock(media_clock_);
    tcp_.set_streams(streams_.get());
  }
  return streams_->listen(endpoint, join, std::move(tls));
}

void Worker::link_streams(std::shared_ptr<StreamLinks> links) {
  links_ = std::move(links);
  links_->deliver.at(index_) = [this](std::unique_ptr<StreamHandoff> h) {
    mailbox_.post([this, handoff = std::move(h)]() mutable {
      if (!stopping_ && streams_) streams_->adopt(std::move(handoff));
    });
  };
  tcp_.set_owners(&links_->owners, index_);
  if (streams_) streams_->set_links(links_.get(), index_);
}

void Worker::set_tls_context(std::shared_ptr<asio::ssl::context> tls) {
  asio::post(ctx_, [this, t = std::move(tls)]() mutable {
    if (!stopping_ && streams_) streams_->set_tls_context(std::move(t));
  });
}

void Worker::run() {
  for (size_t li = 0; li < listeners_.size(); ++li) arm_listener(li);
  if (uring_) arm_uring();
  else arm_relays();
  if (streams_) streams_->start();
  mailbox_.start();
  const core::TimeMs now = now_ms();
  heartbeat_.store(now, std::memory_order_relaxed);
  arm_timer(core_.on_timer(now), now);
  ctx_.run();
}

void Worker::stop() {
  asio::post(ctx_, [this] { shutdown(); });
}

void Worker::end_call(std::string call_id) {
  asio::post(ctx_, [this, id = std::move(call_id)] {
    if (stopping_) return;
    // The core closes the relay sockets through close() (which sends what is queued first)
    // and the peer connections of TCP allocations through close_peer().
    core_.end_call(id, now_ms());
  });
}

void Worker::set_payload_types(std::string call_id, std::shared_ptr<const media::PayloadMap> map) {
  asio::post(ctx_, [this, id = std::move(call_id), m = std::move(map)]() mutable {
    if (stopping_) return;
    core_.set_payload_types(id, std::move(m), now_ms());
  });
}

void Worker::end_username(std::string username) {
  asio::post(ctx_, [this, name = std::move(username)] {
    if (!stopping_) core_.end_username(name, now_ms());
  });
}

std::future<size_t> Worker::end_user(std::string user_id, core::EndReason why) {
  auto done = std::make_shared<std::promise<size_t>>();
  std::future<size_t> ended = done->get_future();
  asio::post(ctx_, [this, id = std::move(user_id), why, done] {
    done->set_value(stopping_ ? 0 : core_.end_user(id, why, now_ms()));
  });
  return ended;
}

std::future<bool> Worker::end_allocation(uint64_t id, core::EndReason why) {
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> ended = done->get_future();
  asio::post(ctx_, [this, id, why, done] {
    done->set_value(!stopping_ && core_.end_allocation(id, why, now_ms()));
  });
  return ended;
}

void Worker::start_draining(std::vector<stun::Endpoint> alternates) {
  asio::post(ctx_, [this, alts = std::move(alternates)]() mutable {
    core_.start_draining(std::move(alts));
  });
}

void Worker::update_limits(const core::CoreConfig& cfg) {
  asio::post(ctx_, [this, c = cfg] {
    if (!stopping_) core_.update_limits(c);
  });
}

void Worker::end_all(core::EndReason why) {
  asio::post(ctx_, [this, why] {
    if (!stopping_) core_.end_all(why, now_ms());
  });
}

void Worker::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  core_.shutdown(now_ms());  // ends allocations (observers see kShutdown), closes relay sockets
  flush_all();
  tcp_.close_all();
  if (streams_) streams_->close_all();
  mailbox_.close();  // hand-offs still arriving are dropped with the mailbox
  for (auto& l : listeners_) l->close();
  close_uring();
  relays_.close_all();
  timer_.cancel();
  work_.reset();
  ctx_.stop();  // aborted waits are destroyed with the context; nothing else is pending
}

// --- client side -------------------------------------------------------------------------

void Worker::arm_listener(size_t li) {
  listeners_[li]->async_wait_readable([this, li](const asio::error_code& ec) {
    if (ec || stopping_) return;  // operation_aborted at shutdown is expected
    on_listener_readable(li);
  });
}

void Worker::on_listener_readable(size_t li) {
  UdpListener& l = *listeners_[li];
  for (int round = 0; round < kDrainRounds; ++round) {
    if (batch_.free_slots() < RecvBatch::kBatch) flush_round();  // a whole batch for clients
    const int n = batch_.receive(l.fd(), /*pktinfo=*/true);
    if (n == -EAGAIN || n == -EWOULDBLOCK) return arm_listener(li);
    if (n < 0) {
      // A queued socket error (e.g. ECONNREFUSED from an ICMP message): never fatal.
      if (log::enabled(log::Level::kDebug)) {
        log::debug("udp.receive_failed",
                   {{"address", l.bound().to_string()}, {"error", error_text(-n)}}, "receive on ",
                   l.bound().to_string(), ": ", error_text(-n));
      }
      continue;
    }
    const int64_t clock_us = media_now_us();
    const core::TimeMs now = clock_us / 1000;
    const int64_t now_us = media_clock_ ? clock_us : -1;
    const size_t first = batch_.first();
    l.defer_answers(true);  // the round's answers leave in its flush
    for (size_t i = first; i < first + static_cast<size_t>(n); ++i) {
      handle_client_datagram(l, i, now, now_us);
    }
    flush_round();
    l.defer_answers(false);
    if (stopping_) return;
    if (static_cast<size_t>(n) < RecvBatch::kBatch) return arm_listener(li);
  }
  // Still busy: let other sockets and the timer run, then continue draining.
  asio::post(ctx_, [this, li] {
    if (!stopping_) on_listener_readable(li);
  });
}

void Worker::handle_client_datagram(UdpListener& l, size_t i, core::TimeMs now, int64_t now_us) {
  if (batch_.truncated(i)) {
    if (log::enabled(log::Level::kDebug)) {
      log::debug("udp.truncated", {{"address", l.bound().to_string()}},
                 "dropped a truncated datagram on ", l.bound().to_string());
    }
    return;
  }
  const auto client = batch_.source(i);
  if (!client) return;
  const auto local = batch_.destination(i, l.bound().port);
  const core::FiveTuple from{core::Transport::kUdp, *client, local ? *local : l.bound(), l.index()};
  dispatch(core_.on_client_packet(from, batch_.payload(i), now, now_us));
}

// --- relay side --------------------------------------------------------------------------

std::optional<core::RelayPorts::Opened> Worker::open(core::Family family,
                                                     const core::Endpoint& server, bool even,
                                                     bool reserve_next) {
  if (relays_.multiplexing() && !even && !reserve_next) {
    // RFC 8656 section 7.2: EVEN-PORT and reservations need a port of their own; others share.
    core::RelayId host = RelaySockets::kNoRelay;
    auto shared = relays_.open_shared(family, server, &host);
    if (shared && host != RelaySockets::kNoRelay) arm_relay(host);
    return shared;
  }
  auto opened = relays_.open(family, server, even, reserve_next);
  if (opened) {
    arm_relay(opened->relay.id);
    if (opened->reserved_next) arm_relay(opened->reserved_next->id);
  }
  return opened;
}

std::optional<core::RelayAddress> Worker::open_tcp(core::Family family, const core::Endpoint& server) {
  auto opened = relays_.open_tcp(family, server);
  if (!opened) return std::nullopt;
  if (!tcp_.listen(opened->relay.id, opened->fd, opened->bound)) {
    relays_.close(opened->relay.id);
    return std::nullopt;
  }
  return opened->relay;
}

std::optional<core::RelayAddress> Worker::claim_reservation(uint64_t token, core::TimeMs now) {
  bool moved = false;
  auto relay = relays_.claim_reservation(token, now, &moved);
  if (relay && moved) arm_relay(relay->id);  // another worker's socket, read here from now on
  return relay;
}

void Worker::close(core::RelayId id) {
  if (relays_.is_tcp(id)) {
    tcp_.close_listener(id);  // the acceptor owns the descriptor
  } else {
    // Queued datagrams name the socket by descriptor: send them before it can be reused.
    flush_all();
    if (uring_ && uring_->watching(id)) {
      // The ring holds the socket (watch_relay took its descriptor from RelaySockets): end
      // its receive, then close the descriptor here; RelaySockets only frees the slot and port.
      const int fd = relays_.fd(id);
      uring_->unwatch(id);
      if (fd >= 0) ::close(fd);
    }
  }
  relays_.close(id);
}

void Worker::close_uring() {
  if (!uring_) return;
  const std::vector<int> fds = uring_->watched_fds();
  uring_->close();  // ends every receive still armed
  for (const int fd : fds) ::close(fd);
  uring_.reset();
}

void Worker::watch_relay(core::RelayId id) {
  // The socket stays in RelaySockets' slot (its descriptor, port and generation) but the ring
  // closes it; it is in no epoll set (set_polling(false)), where each datagram would also
  // wake the loop for nothing.
  const int fd = relays_.release(id);
  if (fd < 0) {
    log::warn("relay.uring_watch_failed", {{"relay_id", id}},
              "relay socket ", id, " not handed to io_uring: it has no descriptor");
    return;
  }
  uring_->watch(fd, id);
}

void Worker::arm_uring() {
  if (uring_armed_ || !uring_) return;
  uring_armed_ = true;
  uring_->async_wait([this](const asio::error_code& ec) {
    uring_armed_ = false;
    if (ec || stopping_ || !uring_) return;
    on_uring_ready();
  });
}

void Worker::on_uring_ready() {
  // Each batch of datagrams from peers is relayed (its sends to clients, one sendmmsg per
  // listener) and its buffers returned to the kernel before the next batch is taken.
  for (int round = 0; round < kDrainRounds; ++round) {
    const int64_t clock_us = media_now_us();
    uring_now_ = clock_us / 1000;
    uring_now_us_ = media_clock_ ? clock_us : -1;
    uring_->harvest(*this, RecvBatch::kBatch);
    flush_round();
    if (stopping_ || !uring_) return;
    if (!uring_->ready()) {
      arm_uring();
      // A completion posted between the check and the wait's registration would not wake
      // the wait (the ring's readiness is an edge): look once more after registering.
      if (!uring_->ready()) return;
    }
  }
  asio::post(ctx_, [this] {
    if (!stopping_ && uring_) on_uring_ready();
  });
}

void Worker::on_relay_datagram(core::RelayId id, const stun::Endpoint& peer,
                               std::span<uint8_t> slot, size_t len) {
  if (relays_.fd(id) < 0) return;
  dispatch(core_.on_peer_packet(id, peer, slot, len, uring_now_, uring_now_us_));
}

void Worker::arm_relay(core::RelayId id) {
  // On the epoll path the socket entered the relay sockets' epoll set when it opened.
  if (uring_) watch_relay(id);
}

void Worker::arm_relays() {
  relays_.async_wait_ready([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    on_relays_ready();
  });
}

void Worker::on_relays_ready() {
  // Each round reads one batch from every ready socket, so a busy allocation cannot starve
  // the others; datagrams from peers are not sent per socket but stay queued (their slots in
  // use) until the posted flush, so one sendmmsg carries packets of many allocations.
  for (int round = 0; round < kDrainRounds; ++round) {
    const auto ready = relays_.ready();
    bool more = ready.size() == RelaySockets::kMaxReady;  // others may wait their turn
    for (const auto& r : ready) {
      more |= receive_relay(r.id, r.generation);
      if (stopping_) return;
    }
    if (!ready.empty()) schedule_flush();
    if (!more) {
      // Every socket seen was read empty: a datagram arriving from now on makes the epoll set
      // readable again (a new edge), so waiting cannot miss one.
      return arm_relays();
    }
  }
  asio::post(ctx_, [this] {
    if (!stopping_) on_relays_ready();
  });
}

bool Worker::receive_relay(core::RelayId id, uint32_t generation) {
  if (!relays_.is_open(id, generation)) return false;  // closed since epoll_wait reported it
  if (batch_.free_slots() < kMinRelaySlots) flush_round();
  const size_t wanted = batch_.free_slots();
  const int n = batch_.receive(relays_.fd(id), /*pktinfo=*/false);
  if (n == -EAGAIN || n == -EWOULDBLOCK) return false;
  if (n < 0) {
    if (log::enabled(log::Level::kDebug)) {
      log::debug("relay.receive_failed", {{"error", error_text(-n)}}, "relay receive: ",
                 error_text(-n));
    }
    return true;  // the error is consumed; datagrams may follow it
  }
  const int64_t clock_us = media_now_us();
  const core::TimeMs now = clock_us / 1000;
  const int64_t now_us = media_clock_ ? clock_us : -1;
  const size_t first = batch_.first();
  for (size_t i = first; i < first + static_cast<size_t>(n); ++i) {
    if (batch_.truncated(i) || !relays_.is_open(id, generation)) continue;
    const auto peer = batch_.source(i);
    if (!peer) continue;
    const core::RelayId to = relays_.is_host(id) ? shared_route(id, *peer, now) : id;
    if (to == RelaySockets::kNoRelay) continue;
    dispatch(core_.on_peer_packet(to, *peer, batch_.slot(i), batch_.length(i), now, now_us));
  }
  // A full batch: more may be queued. Fewer: the socket was read empty (recvmmsg stops at
  // the first EAGAIN).
  return static_cast<size_t>(n) == wanted && relays_.is_open(id, generation);
}

// --- outputs and housekeeping ------------------------------------------------------------

void Worker::dispatch(const core::Output& out, bool batched) {
  const bool stable =
      batch_.contains(out.data.data()) || (uring_ && uring_->contains(out.data.data()));
  switch (out.kind) {
    case core::Output::Kind::kNone:
      return;
    case core::Output::Kind::kToClient:
      if (out.client.transport != core::Transport::kUdp) {
        if (streams_) streams_->send(out.client, out.data);
        return;
      }
      // UDP names the listener socket.
      if (out.client.transport == core::Transport::kUdp &&
          out.client.listener < listeners_.size()) {
        listeners_[out.client.listener]->send(out.client, out.data, stable);
      }
      return;
    case core::Output::Kind::kToPeer: {
      const int fd = relays_.fd(out.relay);
      if (fd < 0) return;
      if (relays_.is_shared(out.relay) && !shared_send(out)) return;
      if (uring_ && (stable || batched)) {
        uring_->send(fd, out.peer, out.data);  // leaves with the others in one submit
      } else if (stable || batched) {
        if (to_peers_.full()) to_peers_.flush();
        to_peers_.add(fd, out.peer, nullptr, out.data);
      } else if (const int err = send_now(fd, out.peer, nullptr, out.data); err != 0) {
        if (log::enabled(log::Level::kDebug)) {
          log::debug("relay.send_failed",
                     {{"peer", out.peer.to_string()}, {"error", error_text(err)}},
                     "send to peer ", out.peer.to_string(), ": ", error_text(err));
        }
      }
      return;
    }
  }
}

core::RelayId Worker::shared_route(core::RelayId host, const stun::Endpoint& peer,
                                   core::TimeMs now) {
  bool ambiguous = false;
  const core::RelayId to = relays_.route(
      host, peer, [&](core::RelayId m) { return core_.permits(m, peer, now); }, &ambiguous);
  if (ambiguous) {
    // Several allocations of the socket permit the peer's IP and none sent to its port: the
    // datagram cannot be given to one of them.
    core_.note_drop(core::DropReason::kAmbiguousPeer);
    if (log::enabled(log::Level::kDebug)) {
      log::debug("relay.shared_ambiguous", {{"peer", peer.to_string()}},
                 "datagram from ", peer.to_string(),
                 " on a shared relay port matches several allocations: dropped");
    }
  }
  return to;
}

bool Worker::shared_send(const core::Output& out) {
  const auto permits = [this, &out](core::RelayId m) {
    return core_.permits(m, out.peer, now_ms());
  };
  bool own = false, ambiguous = false;
  const core::RelayId to = relays_.loop_target(out.relay, out.peer, permits, &own, &ambiguous);
  if (own) {
    // Two clients of this socket relaying to each other: through the kernel the datagram
    // would come back to this socket from its own address, where only permissions could tell
    // the receiver; handed over here instead, as the receiver's peer sees it (from out.peer).
    if (to == RelaySockets::kNoRelay) {
      core_.note_drop(ambiguous ? core::DropReason::kAmbiguousPeer : core::DropReason::kNoPermission);
      return false;
    }
    const size_t len = out.data.size();
    if (len > loop_buffer_.size() - core::kPeerHeadroom - core::kPeerTailroom) return false;
    std::copy(out.data.begin(), out.data.end(), loop_buffer_.begin() + core::kPeerHeadroom);
    const stun::Endpoint from = out.peer;  // `out` may not outlive the core call
    dispatch(core_.on_peer_packet(to, from, std::span<uint8_t>(loop_buffer_), len, now_ms(),
                                  media_clock_ ? media_now_us() : -1));
    return false;
  }
  if (relays_.learn(out.relay, out.peer, permits)) return true;
  // Another allocation of the socket sends to this peer address and still permits it: the
  // peer could not tell whose its answers are.
  core_.note_drop(core::DropReason::kAmbiguousPeer);
  if (log::enabled(log::Level::kDebug)) {
    log::debug("relay.shared_peer_taken", {{"peer", out.peer.to_string()}},
               "another allocation on the shared relay port sends to ", out.peer.to_string(),
               ": dropped");
  }
  return false;
}

void Worker::flush_round() {
  flush_all();
  batch_.reset();
  if (uring_) uring_->release_buffers();
}

void Worker::schedule_flush() {
  if (flush_scheduled_ || batch_.free_slots() == RecvBatch::kBatch) return;
  flush_scheduled_ = true;
  // Runs after the handlers already made ready by this reactor round.
  asio::post(ctx_, [this] {
    flush_scheduled_ = false;
    if (!stopping_) flush_round();
  });
}

void Worker::flush_all() {
  if (uring_) uring_->submit();
  to_peers_.flush();
  for (auto& l : listeners_) l->flush();
}

void Worker::arm_timer(core::TimeMs deadline, core::TimeMs now) {
  const core::TimeMs delay = deadline > now ? deadline - now : 0;
  timer_.expires_after(std::chrono::milliseconds(delay));
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || stopping_) return;
    const core::TimeMs t = now_ms();
    const core::TimeMs next = core_.on_timer(t);
    flush_all();
    heartbeat_.store(t, std::memory_order_relaxed);
    allocations_.store(core_.allocation_count(), std::memory_order_relaxed);
    arm_timer(next, t);
  });
}

}  // namespace callrelay::net
