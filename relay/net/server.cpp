#include "relay/net/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <future>

#include "relay/net/socket_ops.hpp"
#include "base/log.hpp"

namespace callrelay::net {
namespace {

std::string describe(const stun::Endpoint& ep, const OpenResult& r) {
  return "cannot listen on udp " + ep.to_string() + ": " + r.step + ": " + error_text(r.error);
}

}  // namespace

unsigned resolve_worker_count(unsigned configured) {
  if (configured != 0) return configured;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

Server::Server(const ServerSettings& settings, const SharedAuth& shared,
               const ObserverFactory& observers)
    : users_(std::make_unique<core::UserLimits>(settings.core.bandwidth, shared.limits)) {
  const unsigned count = resolve_worker_count(settings.workers);
  // One relay port range per relay address for all workers (any of them can use any port)
  // and the reservations any of them can claim.
  RelayNetSettings relay = settings.relay;
  if (!relay.share) relay.share = make_share(relay);
  workers_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    core::Observer* observer = observers ? observers(i) : nullptr;
    workers_.push_back(std::make_unique<Worker>(i, count, settings.core, relay,
                                                settings.listen_udp, shared, observer, users_.get()));
  }
  bind_listeners(settings.listen_udp);
  bind_stream_listeners(settings, shared.limits);
}

Server::~Server() {
  stop();
  join();
}

void Server::bind_listeners(const std::vector<stun::Endpoint>& endpoints) {
  UdpOptions opts;
  opts.pktinfo = true;
  opts.buffer_bytes = kBusyUdpBufferBytes;
  for (const auto& ep : endpoints) {
    // The first socket binds without SO_REUSEPORT, so a port held by anyone else (even another
    // callrelay of the same user) fails clearly instead of silently sharing its traffic; it
    // joins the reuse group after bind, and the other workers' sockets join it.
    opts.reuse_port = false;
    const OpenResult first = open_udp(ep, opts);
    if (first.fd < 0) {
      if (first.error == EAFNOSUPPORT && !ep.is_v4() && is_unspecified(ep)) {
        log::warn("listener.ipv6_unavailable", {{"transport", "udp"}, {"address", ep.to_string()}},
                  "IPv6 is not available on this host; not listening on udp ", ep.to_string());
        continue;
      }
      throw BindError(describe(ep, first));
    }
    const int one = 1;
    if (::setsockopt(first.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      const int err = errno;
      ::close(first.fd);
      throw BindError(describe(ep, OpenResult{-1, err, "SO_REUSEPORT"}));
    }
    const auto bound = local_endpoint(first.fd);
    if (!bound) {
      const int err = errno;
      ::close(first.fd);
      throw BindError(describe(ep, OpenResult{-1, err, "getsockname"}));
    }
    workers_[0]->add_listener(first.fd, *bound);
    opts.reuse_port = true;
    for (size_t w = 1; w < workers_.size(); ++w) {
      const OpenResult r = open_udp(*bound, opts);
      if (r.fd < 0) throw BindError(describe(*bound, r));
      workers_[w]->add_listener(r.fd, *bound);
    }
    // No steering program: the kernel's SO_REUSEPORT hash covers the client's address and
    // port, so clients behind one NAT address spread over every worker. What a client's
    // second 5-tuple needs (a RESERVATION-TOKEN) is found through the workers' RelayShare.
    listening_.push_back(*bound);
  }
}

void Server::start() {
  if (!threads_.empty()) return;
  threads_.reserve(workers_.size());
  for (auto& w : workers_) {
    Worker* worker = w.get();
    threads_.emplace_back([worker] { worker->run(); });
  }
}

void Server::stop() {
  for (auto& w : workers_) w->stop();
}

void Server::end_call(std::string call_id) {
  if (workers_.empty()) return;
  // Each worker gets its own copy; the last one takes the caller's.
  for (size_t i = 0; i + 1 < workers_.size(); ++i) workers_[i]->end_call(call_id);
  workers_.back()->end_call(std::move(call_id));
}

void Server::set_payload_types(std::string call_id,
                               std::shared_ptr<const media::PayloadMap> map) {
  for (auto& w : workers_) w->set_payload_types(call_id, map);
}

void Server::set_tls_context(std::shared_ptr<asio::ssl::context> tls) {
  for (auto& w : workers_) w->set_tls_context(tls);
}

void Server::end_username(const std::string& username) {
  for (auto& w : workers_) w->end_username(username);
}

void Server::end_user(const std::string& user_id, core::EndReason why) {
  for (auto& w : workers_) w->end_user(user_id, why);
}

size_t Server::end_user_counted(const std::string& user_id, core::EndReason why,
                                std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  std::vector<std::future<size_t>> counts;
  for (auto& w : workers_) counts.push_back(w->end_user(user_id, why));
  size_t ended = 0;
  for (auto& c : counts) {
    if (c.wait_until(until) != std::future_status::ready) continue;
    try {
      ended += c.get();
    } catch (const std::future_error&) {  // the worker's loop ended before it ran
    }
  }
  return ended;
}

bool Server::end_allocation(unsigned worker, uint64_t id, core::EndReason why,
                            std::chrono::milliseconds timeout) {
  if (worker >= workers_.size()) return false;
  std::future<bool> ended = workers_[worker]->end_allocation(id, why);
  if (ended.wait_for(timeout) != std::future_status::ready) return false;
  try {
    return ended.get();
  } catch (const std::future_error&) {  // the worker's loop ended before it ran
    return false;
  }
}

void Server::start_draining(const std::vector<stun::Endpoint>& alternates) {
  for (auto& w : workers_) w->start_draining(alternates);
}

void Server::end_all(core::EndReason why) {
  for (auto& w : workers_) w->end_all(why);
}

core::TimeMs Server::oldest_heartbeat() const {
  core::TimeMs oldest = INT64_MAX;
  for (const auto& w : workers_) oldest = std::min(oldest, w->heartbeat());
  return oldest;
}

uint64_t Server::allocation_count() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->allocations();
  return n;
}

void Server::update_limits(const core::CoreConfig& cfg) {
  users_->reconfigure(cfg.bandwidth);
  if (stream_guard_) stream_guard_->reconfigure(cfg.abuse);  // connection limits, at once
  for (auto& w : workers_) w->update_limits(cfg);
}

void Server::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

uint64_t Server::tcp_peer_connections() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->tcp_peer_count();
  return n;
}

uint64_t Server::tls_buffer_trims() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->tls_buffer_trims();
  return n;
}

uint64_t Server::relay_ports_in_use() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->relay_count();
  return n;
}

}  // namespace callrelay::net
