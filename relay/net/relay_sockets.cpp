#include "relay/net/relay_sockets.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "relay/net/socket_ops.hpp"
#include "base/log.hpp"

namespace callrelay::net {

namespace {

bool is_loopback(const stun::Endpoint& ep) {
  if (ep.is_v4()) return ep.addr[0] == 127;
  const std::array<uint8_t, 16> one{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return ep.addr == one;
}

stun::Endpoint loopback_of(stun::Family family) {
  if (family == stun::Family::kIPv4) return stun::Endpoint::v4({127, 0, 0, 1}, 0);
  return stun::Endpoint::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0);
}

size_t family_slot(stun::Family family) { return family == stun::Family::kIPv4 ? 0 : 1; }

/// Which families the listen endpoints can relay without a configured address (see supports).
struct ListenFamilies {
  bool v4 = false, v6 = false;
  bool loopback_v4 = false, loopback_v6 = false;
  explicit ListenFamilies(const std::vector<stun::Endpoint>& listen) {
    for (const auto& ep : listen) {
      (ep.is_v4() ? v4 : v6) = true;
      if (is_loopback(ep)) (ep.is_v4() ? loopback_v4 : loopback_v6) = true;
    }
  }
  bool serves(stun::Family family) const {
    return family == stun::Family::kIPv4 ? v4 || loopback_v6 : v6 || loopback_v4;
  }
};

}  // namespace

std::shared_ptr<RelayShare> make_share(const RelayNetSettings& settings) {
  std::vector<stun::Endpoint> addresses = settings.bind_ipv4;
  addresses.insert(addresses.end(), settings.bind_ipv6.begin(), settings.bind_ipv6.end());
  return std::make_shared<RelayShare>(settings.port_min, settings.port_max, addresses);
}

uint64_t relay_port_capacity(const RelayNetSettings& settings,
                             const std::vector<stun::Endpoint>& listen) {
  const uint64_t range =
      settings.port_max < settings.port_min ? 1u : settings.port_max - settings.port_min + 1u;
  const ListenFamilies families(listen);
  const bool derived = (settings.bind_ipv4.empty() && families.serves(stun::Family::kIPv4)) ||
                       (settings.bind_ipv6.empty() && families.serves(stun::Family::kIPv6));
  return range * (settings.bind_ipv4.size() + settings.bind_ipv6.size() + (derived ? 1 : 0));
}

RelaySockets::RelaySockets(asio::io_context& ctx, const RelayNetSettings& settings, unsigned index,
                           unsigned count, const std::vector<stun::Endpoint>& listen)
    : ctx_(ctx),
      ready_wait_(ctx),
      settings_(settings),
      share_(settings.share ? settings.share : make_share(settings)) {
  settings_.share.reset();  // share_ holds it
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_create1 (relay sockets)");
  }
  asio::error_code ec;
  ready_wait_.assign(epfd, ec);  // ready_wait_ owns it from here on
  if (ec) {
    ::close(epfd);
    throw std::system_error(ec, "registering the relay sockets' epoll set");
  }
  for (size_t p = 0; p < share_->pool_count(); ++p) {
    cursors_.push_back(share_->pool(p).cursor(index, count, share_->start(p)));
  }
  // Each worker starts its rotation at another address, so the first allocations of all
  // workers spread too.
  for (const auto& ip : settings_.bind_ipv4) configured_[0].push_back({ip, share_->pool_of(ip)});
  for (const auto& ip : settings_.bind_ipv6) configured_[1].push_back({ip, share_->pool_of(ip)});
  next_turn_[0] = next_turn_[1] = index;
  const ListenFamilies families(listen);
  listens_v4_ = families.v4;
  listens_v6_ = families.v6;
  loopback_v4_ = families.loopback_v4;
  loopback_v6_ = families.loopback_v6;
  for (const auto& ep : listen) {
    if (!is_unspecified(ep)) fallback_.push_back(ep);
  }
}

RelaySockets::~RelaySockets() {
  // Sockets still open close here (their ports go back, their reservations are withdrawn:
  // reserved_ lists open relays only); the epoll set closes with ready_wait_.
  close_all();
}

bool RelaySockets::supports(stun::Family family) const {
  if (family == stun::Family::kIPv4) {
    return !settings_.bind_ipv4.empty() || listens_v4_ || loopback_v6_;
  }
  return !settings_.bind_ipv6.empty() || listens_v6_ || loopback_v4_;
}

std::optional<RelaySockets::Choice> RelaySockets::choice(stun::Family family,
                                                         const stun::Endpoint& server,
                                                         size_t turn) {
  const auto& configured = configured_[family_slot(family)];
  if (configured.empty()) {
    if (turn != 0) return std::nullopt;
    const auto ip = derived_address(family, server);
    if (!ip) return std::nullopt;
    return Choice{*ip, 0};
  }
  if (turn >= configured.size()) return std::nullopt;
  // Round-robin per worker: allocations spread evenly over the addresses, and one that is
  // full passes its turn to the next.
  if (turn == 0) ++next_turn_[family_slot(family)];
  return configured[(next_turn_[family_slot(family)] - 1 + turn) % configured.size()];
}

std::optional<stun::Endpoint> RelaySockets::derived_address(stun::Family family,
                                                            const stun::Endpoint& server) const {
  if (server.family == family && !is_unspecified(server)) return server;
  for (const auto& ep : fallback_) {
    if (ep.family == family) return ep;
  }
  // A client on loopback asking for the other family (RFC 8656 REQUESTED-ADDRESS-FAMILY or
  // ADDITIONAL-ADDRESS-FAMILY): that family's loopback address is the one we know is local.
  const bool other_loopback = family == stun::Family::kIPv4 ? loopback_v6_ : loopback_v4_;
  if (is_loopback(server) || other_loopback) return loopback_of(family);
  return std::nullopt;  // no address of that family we know to be reachable
}

stun::Endpoint RelaySockets::advertised(const stun::Endpoint& bound) const {
  const auto& external = bound.is_v4() ? settings_.external_ipv4 : settings_.external_ipv6;
  if (!external) return bound;
  stun::Endpoint ep = *external;
  ep.port = bound.port;
  return ep;
}

int RelaySockets::bind_port(const stun::Endpoint& ip, uint16_t port, int buffer_bytes) {
  stun::Endpoint ep = ip;
  ep.port = port;
  UdpOptions opts;
  opts.buffer_bytes = buffer_bytes;
  const OpenResult r = open_udp(ep, opts);
  return r.fd >= 0 ? r.fd : -r.error;
}

core::RelayId RelaySockets::new_slot() {
  if (!free_ids_.empty()) {
    const core::RelayId id = free_ids_.back();
    free_ids_.pop_back();
    return id;
  }
  slots_.emplace_back();
  return static_cast<core::RelayId>(slots_.size() - 1);
}

std::optional<core::RelayAddress> RelaySockets::install(int fd, const stun::Endpoint& bound,
                                                        uint16_t pool, bool sole) {
  const core::RelayId id = new_slot();
  Slot& s = slots_[id];
  if (polling_) {
    // Level-triggered: a socket left with datagrams (its drain yielded to others) is reported
    // again by the next epoll_wait without a syscall of ours to re-arm it.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(s.generation) << 32 | id;
    if (::epoll_ctl(epoll_fd(), EPOLL_CTL_ADD, fd, &ev) != 0) {  // ENOMEM, ENOSPC
      const int err = errno;
      log::warn("relay_socket.register_failed", {{"port", bound.port}, {"error", error_text(err)}},
                "relay socket on port ", bound.port, ": epoll: ", error_text(err));
      ::close(fd);
      free_ids_.push_back(id);
      return std::nullopt;
    }
    s.polled = true;
  }
  s.duplicated = !sole;
  s.fd = fd;
  s.port = bound.port;
  s.pool = pool;
  s.open = true;
  open_count_.store(open_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return core::RelayAddress{id, advertised(bound)};
}

std::optional<core::RelayPorts::Opened> RelaySockets::open(stun::Family family,
                                                           const stun::Endpoint& server, bool even,
                                                           bool reserve_next) {
  auto at = choice(family, server, 0);
  if (!at) {
    log::debug("relay_socket.no_address", {{"server", server.to_string()}},
               "no relay address of the requested family for a client on ", server.to_string());
    return std::nullopt;
  }
  for (size_t turn = 1; at; at = choice(family, server, turn++)) {
    if (auto opened = open_on(*at, even, reserve_next)) return opened;
  }
  return std::nullopt;
}

std::optional<core::RelayPorts::Opened> RelaySockets::open_on(const Choice& at, bool even,
                                                              bool reserve_next) {
  PortPool& pool = share_->pool(at.pool);
  for (int attempt = 0; attempt < kMaxBindAttempts; ++attempt) {
    const auto port = pool.take(cursors_[at.pool], even, reserve_next);
    if (!port) {
      if (log::enabled(log::Level::kDebug)) {
        const size_t free = pool.free_count();
        log::debug("relay_socket.no_free_port", {{"ip", at.ip.ip_string()}, {"free_ports", free}},
                   "no free relay port that fits on ", at.ip.ip_string(), " (", free,
                   " free in the range)");
      }
      return std::nullopt;
    }
    const int fd = bind_port(at.ip, *port);
    int fd_next = -1;
    if (fd >= 0 && reserve_next) {
      fd_next = bind_port(at.ip, static_cast<uint16_t>(*port + 1));
      if (fd_next < 0) ::close(fd);
    }
    const int err = fd < 0 ? -fd : (reserve_next && fd_next < 0 ? -fd_next : 0);
    if (err != 0) {
      // The cursor has moved past it: tried again only after the rest of the range.
      pool.release(*port);
      if (reserve_next) pool.release(static_cast<uint16_t>(*port + 1));
      if (err == EADDRINUSE || err == EACCES) continue;
      log::warn("relay_socket.bind_failed",
                {{"ip", at.ip.ip_string()}, {"port", *port}, {"error", error_text(err)}},
                "relay socket on ", at.ip.ip_string(), " port ", *port, ": ", error_text(err));
      return std::nullopt;
    }
    return install_opened(at, *port, fd, fd_next);
  }
  return std::nullopt;
}

std::optional<core::RelayPorts::Opened> RelaySockets::install_opened(const Choice& at,
                                                                     uint16_t port, int fd,
                                                                     int fd_next) {
  PortPool& pool = share_->pool(at.pool);
  stun::Endpoint bound = at.ip;
  bound.port = port;
  const auto relay = install(fd, bound, at.pool);
  if (!relay) {
    if (fd_next >= 0) ::close(fd_next);
    pool.release(port);
    if (fd_next >= 0) pool.release(static_cast<uint16_t>(port + 1));
    return std::nullopt;
  }
  core::RelayPorts::Opened opened{*relay, std::nullopt};
  if (fd_next >= 0) {
    bound.port = static_cast<uint16_t>(port + 1);
    opened.reserved_next = install(fd_next, bound, at.pool);
    if (!opened.reserved_next) {
      pool.release(bound.port);
      close(relay->id);
      return std::nullopt;
    }
  }
  return opened;
}

std::optional<core::RelayPorts::Opened> RelaySockets::open_shared(stun::Family family,
                                                                  const stun::Endpoint& server,
                                                                  core::RelayId* host) {
  *host = kNoRelay;
  for (size_t turn = 0; const auto at = choice(family, server, turn); ++turn) {
    bool opened = false;
    const core::RelayId h = shared_on(*at, &opened);
    if (h == kNoRelay) continue;
    const core::RelayId id = new_slot();
    Slot& v = slots_[id];
    Slot& hs = slots_[h];
    v.host = h;
    v.fd = hs.fd;  // sends go out through the shared socket
    v.port = hs.port;
    v.pool = hs.pool;
    v.open = true;
    hs.shared->members.push_back(id);
    if (opened) *host = h;
    return core::RelayPorts::Opened{core::RelayAddress{id, hs.shared->advertised}, std::nullopt};
  }
  return std::nullopt;
}

core::RelayId RelaySockets::shared_on(const Choice& at, bool* opened) {
  *opened = false;
  const size_t room = settings_.allocations_per_port == 0 ? 1 : settings_.allocations_per_port;
  for (const core::RelayId h : hosts_) {
    const Slot::Shared& sh = *slots_[h].shared;
    if (sh.members.size() < room && sh.bound.same_ip(at.ip)) return h;
  }
  PortPool& pool = share_->pool(at.pool);
  for (int attempt = 0; attempt < kMaxBindAttempts; ++attempt) {
    const auto port = pool.take(cursors_[at.pool], false, false);
    if (!port) return kNoRelay;
    // It queues the datagrams of up to allocations_per_port peers between two wake-ups, as a
    // listener does its clients'; a dedicated relay socket keeps the system default.
    const int fd = bind_port(at.ip, *port, kBusyUdpBufferBytes);
    if (fd < 0) {
      pool.release(*port);
      if (-fd == EADDRINUSE || -fd == EACCES) continue;
      log::warn("relay_socket.bind_failed",
                {{"ip", at.ip.ip_string()}, {"port", *port}, {"error", error_text(-fd)}},
                "relay socket on ", at.ip.ip_string(), " port ", *port, ": ", error_text(-fd));
      return kNoRelay;
    }
    stun::Endpoint bound = at.ip;
    bound.port = *port;
    const auto relay = install(fd, bound, at.pool);
    if (!relay) {
      pool.release(*port);
      return kNoRelay;
    }
    Slot& hs = slots_[relay->id];
    hs.shared = std::make_unique<Slot::Shared>();
    hs.shared->bound = bound;
    hs.shared->advertised = relay->address;
    hs.shared->members.reserve(room);
    hosts_.push_back(relay->id);
    log::debug("relay_socket.shared_open", {{"port", bound.port}, {"relay_id", relay->id}},
               "shared relay port ", bound.port, " opened");
    *opened = true;
    return relay->id;
  }
  return kNoRelay;
}

void RelaySockets::close_shared(core::RelayId id) {
  Slot& v = slots_[id];
  const core::RelayId h = v.host;
  Slot::Shared& sh = *slots_[h].shared;
  std::erase(sh.members, id);
  // Its learned peers are free for the other relays of the socket (or their permissions).
  std::erase_if(sh.peers, [id](const auto& e) { return e.second == id; });
  v.host = kNoRelay;
  v.fd = -1;
  v.open = false;
  ++v.generation;
  free_ids_.push_back(id);
  if (!sh.members.empty()) return;
  // The last relay is gone: the socket and its port go back.
  log::debug("relay_socket.shared_close", {{"port", slots_[h].port}, {"relay_id", h}},
             "shared relay port ", slots_[h].port, " closed");
  std::erase(hosts_, h);
  slots_[h].shared.reset();
  close(h);
}

std::optional<RelaySockets::OpenedTcp> RelaySockets::open_tcp(stun::Family family,
                                                              const stun::Endpoint& server) {
  for (size_t turn = 0; const auto at = choice(family, server, turn); ++turn) {
    if (auto opened = open_tcp_on(*at)) return opened;
  }
  return std::nullopt;
}

std::optional<RelaySockets::OpenedTcp> RelaySockets::open_tcp_on(const Choice& at) {
  PortPool& pool = share_->pool(at.pool);
  // A short backlog: peers connect one at a time, and each needs a permission anyway.
  constexpr int kBacklog = 16;
  for (int attempt = 0; attempt < kMaxBindAttempts; ++attempt) {
    const auto port = pool.take(cursors_[at.pool], false, false);
    if (!port) return std::nullopt;
    stun::Endpoint bound = at.ip;
    bound.port = *port;
    const OpenResult r = net::open_tcp(bound, kBacklog);
    if (r.fd < 0) {
      pool.release(*port);
      if (r.error == EADDRINUSE || r.error == EACCES) continue;
      log::warn("relay_socket.tcp_failed",
                {{"address", bound.to_string()}, {"step", r.step}, {"error", error_text(r.error)}},
                "tcp relay socket on ", bound.to_string(), ": ", r.step, ": ",
                error_text(r.error));
      return std::nullopt;
    }
    const core::RelayId id = new_slot();
    Slot& s = slots_[id];
    s.fd = -1;  // fd() is for UDP sends: never hand out the listening socket
    s.port = *port;
    s.pool = at.pool;
    s.open = true;
    s.tcp = true;
    open_count_.store(open_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return OpenedTcp{core::RelayAddress{id, advertised(bound)}, bound, r.fd};
  }
  return std::nullopt;
}

void RelaySockets::close(core::RelayId id) {
  if (id >= slots_.size() || !slots_[id].open) return;
  Slot& s = slots_[id];
  if (s.host != kNoRelay) return close_shared(id);
  if (s.shared) return;  // a shared socket closes with its last relay (close_shared)
  // A reservation still listed goes back with its port; one that another worker claimed
  // (withdraw finds it gone) keeps its port taken: the claimer's socket holds it now.
  bool release = true;
  if (const auto r = reserved_.find(id); r != reserved_.end()) {
    release = share_->reservations.withdraw(r->second, this);
    reserved_.erase(r);
  }
  if (!s.tcp && !s.detached) close_fd(s);
  if (!s.detached) {
    open_count_.store(open_count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  s.tcp = false;
  s.detached = false;
  s.released = false;
  s.duplicated = false;
  s.fd = -1;
  s.open = false;
  ++s.generation;
  if (release) share_->pool(s.pool).release(s.port);
  free_ids_.push_back(id);
}

void RelaySockets::share_reservation(uint64_t token, core::RelayId id, core::TimeMs expires) {
  if (id >= slots_.size() || !slots_[id].open || slots_[id].tcp) return;
  const auto bound = local_endpoint(slots_[id].fd);
  if (!bound) return;  // not listed: only this worker's Allocates find it (the core's own map)
  const int dup = ::fcntl(slots_[id].fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return;  // likewise
  // Closing this descriptor no longer ends its epoll registration while the duplicate lives.
  slots_[id].duplicated = true;
  reserved_[id] = token;
  const Slot& s = slots_[id];
  share_->reservations.add(token, {this, id, s.generation, dup, *bound, expires, s.pool});
}

std::optional<core::RelayAddress> RelaySockets::claim_reservation(uint64_t token,
                                                                  core::TimeMs now, bool* moved) {
  *moved = false;
  const auto e = share_->reservations.claim(token, now, this);
  if (!e) return std::nullopt;
  if (e->owner == this) {
    reserved_.erase(e->id);  // an ordinary relay of this worker from now on
    return core::RelayAddress{e->id, advertised(e->bound)};
  }
  // The owner lets go of its descriptor on its own thread; until then both hold the socket,
  // and only a peer that already knew the reserved port could have a datagram read there.
  RelaySockets* owner = e->owner;
  asio::post(owner->ctx_, [owner, id = e->id, generation = e->generation] {
    owner->detach(id, generation);
  });
  const auto relay = install(e->fd, e->bound, e->pool, /*sole=*/false);
  if (!relay) {
    // install closed the duplicate; the owner lets go of its own
    share_->pool(e->pool).release(e->bound.port);
    return std::nullopt;
  }
  log::debug("relay_socket.reservation_moved",
             {{"port", e->bound.port}, {"relay_id", relay->id}},
             "reserved relay port ", e->bound.port, " claimed from another worker");
  *moved = true;
  return relay;
}

void RelaySockets::detach(core::RelayId id, uint32_t generation) {
  if (!is_open(id, generation) || slots_[id].tcp || slots_[id].detached) return;
  if (detach_hook_) detach_hook_(id);
  Slot& s = slots_[id];
  close_fd(s);  // this worker's descriptor only: the claimer's duplicate lives on
  s.fd = -1;
  s.detached = true;
  ++s.generation;  // a read already queued for it does nothing
  open_count_.store(open_count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void RelaySockets::close_all() {
  for (core::RelayId id = 0; id < slots_.size(); ++id) close(id);
}

void RelaySockets::close_fd(Slot& s) {
  if (s.fd < 0 || s.released) return;
  // close(2) ends the registration only with the socket's last descriptor (epoll(7)).
  if (s.polled && s.duplicated) ::epoll_ctl(epoll_fd(), EPOLL_CTL_DEL, s.fd, nullptr);
  s.polled = false;
  ::close(s.fd);
}

std::span<const RelaySockets::Ready> RelaySockets::ready() {
  const int n = ::epoll_wait(epoll_fd(), events_.data(), static_cast<int>(events_.size()), 0);
  if (n <= 0) return {};  // EINTR: nothing this time; the caller waits again
  for (int i = 0; i < n; ++i) {
    const uint64_t data = events_[i].data.u64;
    ready_[i] = Ready{static_cast<core::RelayId>(data & 0xffffffffu),
                      static_cast<uint32_t>(data >> 32)};
  }
  return {ready_.data(), static_cast<size_t>(n)};
}

int RelaySockets::release(core::RelayId id) {
  if (id >= slots_.size() || !slots_[id].open || slots_[id].tcp || slots_[id].released) return -1;
  Slot& s = slots_[id];
  if (s.fd < 0) return -1;
  if (s.polled) ::epoll_ctl(epoll_fd(), EPOLL_CTL_DEL, s.fd, nullptr);
  s.polled = false;
  s.released = true;
  return s.fd;
}

int RelaySockets::fd(core::RelayId id) const {
  if (id >= slots_.size() || !slots_[id].open) return -1;
  return slots_[id].fd;
}

bool RelaySockets::is_open(core::RelayId id, uint32_t generation) const {
  return id < slots_.size() && slots_[id].open && slots_[id].generation == generation;
}

}  // namespace callrelay::net
