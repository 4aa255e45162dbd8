#include "relay/net/relay_sockets.hpp"

#include <unistd.h>

#include <cerrno>

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

}  // namespace

RelaySockets::RelaySockets(asio::io_context& ctx, const RelayNetSettings& settings, unsigned index,
                           unsigned count, const std::vector<stun::Endpoint>& listen)
    : ctx_(ctx), settings_(settings), ports_(settings.port_min, settings.port_max, index, count) {
  for (const auto& ep : listen) {
    (ep.is_v4() ? listens_v4_ : listens_v6_) = true;
    if (is_loopback(ep)) (ep.is_v4() ? loopback_v4_ : loopback_v6_) = true;
    if (!is_unspecified(ep)) fallback_.push_back(ep);
  }
}

bool RelaySockets::supports(stun::Family family) const {
  if (family == stun::Family::kIPv4) {
    return settings_.bind_ipv4.has_value() || listens_v4_ || loopback_v6_;
  }
  return settings_.bind_ipv6.has_value() || listens_v6_ || loopback_v4_;
}

std::optional<stun::Endpoint> RelaySockets::bind_address(stun::Family family,
                                                         const stun::Endpoint& server) const {
  const auto& configured =
      family == stun::Family::kIPv4 ? settings_.bind_ipv4 : settings_.bind_ipv6;
  if (configured) return configured;
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

int RelaySockets::bind_port(const stun::Endpoint& ip, uint16_t port) {
  stun::Endpoint ep = ip;
  ep.port = port;
  const OpenResult r = open_udp(ep, UdpOptions{});
  return r.fd >= 0 ? r.fd : -r.error;
}

std::optional<core::RelayAddress> RelaySockets::install(int fd, const stun::Endpoint& bound) {
  core::RelayId id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<core::RelayId>(slots_.size());
    slots_.emplace_back(ctx_);
  }
  Slot& s = slots_[id];
  asio::error_code ec;
  s.socket.assign(bound.is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), fd, ec);
  if (ec) {  // the reactor could not register it (out of memory)
    log::warn("relay_socket.register_failed", {{"port", bound.port}, {"error", ec.message()}},
              "relay socket on port ", bound.port, ": ", ec.message());
    ::close(fd);
    free_ids_.push_back(id);
    return std::nullopt;
  }
  s.fd = fd;
  s.port = bound.port;
  s.open = true;
  open_count_.store(open_count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return core::RelayAddress{id, advertised(bound)};
}

std::optional<core::RelayPorts::Opened> RelaySockets::open(stun::Family family,
                                                           const stun::Endpoint& server, bool even,
                                                           bool reserve_next) {
  const auto ip = bind_address(family, server);
  if (!ip) {
    log::debug("relay_socket.no_address", {{"server", server.to_string()}},
               "no relay address of the requested family for a client on ", server.to_string());
    return std::nullopt;
  }
  for (int attempt = 0; attempt < kMaxBindAttempts; ++attempt) {
    const auto port = ports_.take(even, reserve_next);
    if (!port) {
      log::debug("relay_socket.no_free_port", {{"free_ports", ports_.free_count()}},
                 "no free relay port (", ports_.free_count(), " free in this worker's slice)");
      return std::nullopt;
    }
    const int fd = bind_port(*ip, *port);
    int fd_next = -1;
    if (fd >= 0 && reserve_next) {
      fd_next = bind_port(*ip, static_cast<uint16_t>(*port + 1));
      if (fd_next < 0) ::close(fd);
    }
    const int err = fd < 0 ? -fd : (reserve_next && fd_next < 0 ? -fd_next : 0);
    if (err != 0) {
      ports_.release(*port);  // to the back of the ring: tried again only after the others
      if (reserve_next) ports_.release(static_cast<uint16_t>(*port + 1));
      if (err == EADDRINUSE || err == EACCES) continue;
      log::warn("relay_socket.bind_failed",
                {{"ip", ip->ip_string()}, {"port", *port}, {"error", error_text(err)}},
                "relay socket on ", ip->ip_string(), " port ", *port, ": ", error_text(err));
      return std::nullopt;
    }
    return install_opened(*ip, *port, fd, fd_next);
  }
  return std::nullopt;
}

std::optional<core::RelayPorts::Opened> RelaySockets::install_opened(const stun::Endpoint& ip,
                                                                     uint16_t port, int fd,
                                                                     int fd_next) {
  stun::Endpoint bound = ip;
  bound.port = port;
  const auto relay = install(fd, bound);
  if (!relay) {
    if (fd_next >= 0) ::close(fd_next);
    ports_.release(port);
    if (fd_next >= 0) ports_.release(static_cast<uint16_t>(port + 1));
    return std::nullopt;
  }
  core::RelayPorts::Opened opened{*relay, std::nullopt};
  if (fd_next >= 0) {
    bound.port = static_cast<uint16_t>(port + 1);
    opened.reserved_next = install(fd_next, bound);
    if (!opened.reserved_next) {
      ports_.release(bound.port);
      close(relay->id);
      return std::nullopt;
    }
  }
  return opened;
}

std::optional<RelaySockets::OpenedTcp> RelaySockets::open_tcp(stun::Family family,
                                                              const stun::Endpoint& server) {
  const auto ip = bind_address(family, server);
  if (!ip) return std::nullopt;
  // A short backlog: peers connect one at a time, and each needs a permission anyway.
  constexpr int kBacklog = 16;
  for (int attempt = 0; attempt < kMaxBindAttempts; ++attempt) {
    const auto port = ports_.take(false, false);
    if (!port) return std::nullopt;
    stun::Endpoint bound = *ip;
    bound.port = *port;
    const OpenResult r = net::open_tcp(bound, kBacklog);
    if (r.fd < 0) {
      ports_.release(*port);
      if (r.error == EADDRINUSE || r.error == EACCES) continue;
      log::warn("relay_socket.tcp_failed",
                {{"address", bound.to_string()}, {"step", r.step}, {"error", error_text(r.error)}},
                "tcp relay socket on ", bound.to_string(), ": ", r.step, ": ",
                error_text(r.error));
      return std::nullopt;
    }
    core::RelayId id;
    if (!free_ids_.empty()) {
      id = free_ids_.back();
      free_ids_.pop_back();
    } else {
      id = static_cast<core::RelayId>(slots_.size());
      slots_.emplace_back(ctx_);
    }
    Slot& s = slots_[id];
    s.fd = -1;  // fd() is for UDP sends: never hand out the listening socket
    s.port = *port;
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
  asio::error_code ec;
  if (!s.tcp) s.socket.close(ec);
  s.tcp = false;
  s.fd = -1;
  s.open = false;
  ++s.generation;
  ports_.release(s.port);
  free_ids_.push_back(id);
  open_count_.store(open_count_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

void RelaySockets::close_all() {
  for (core::RelayId id = 0; id < slots_.size(); ++id) close(id);
}

int RelaySockets::fd(core::RelayId id) const {
  if (id >= slots_.size() || !slots_[id].open) return -1;
  return slots_[id].fd;
}

bool RelaySockets::is_open(core::RelayId id, uint32_t generation) const {
  return id < slots_.size() && slots_[id].open && slots_[id].generation == generation;
}

}  // namespace callrelay::net
