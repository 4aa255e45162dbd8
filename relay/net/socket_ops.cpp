#include "relay/net/socket_ops.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace callrelay::net {

socklen_t write_sockaddr(const stun::Endpoint& ep, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  if (ep.is_v4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(ep.port);
    std::memcpy(&sin.sin_addr, ep.addr.data(), 4);
    std::memcpy(&out, &sin, sizeof(sin));
    return sizeof(sin);
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(ep.port);
  std::memcpy(&sin6.sin6_addr, ep.addr.data(), 16);
  std::memcpy(&out, &sin6, sizeof(sin6));
  return sizeof(sin6);
}

SockAddr to_sockaddr(const stun::Endpoint& ep) {
  SockAddr sa;
  sa.len = write_sockaddr(ep, sa.storage);
  return sa;
}

std::optional<stun::Endpoint> from_sockaddr(const sockaddr* sa, socklen_t len) {
  stun::Endpoint ep;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof(sin));
    ep.family = stun::Family::kIPv4;
    ep.port = ntohs(sin.sin_port);
    std::memcpy(ep.addr.data(), &sin.sin_addr, 4);
    return ep;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof(sin6));
    ep.family = stun::Family::kIPv6;
    ep.port = ntohs(sin6.sin6_port);
    std::memcpy(ep.addr.data(), &sin6.sin6_addr, 16);
    return ep;
  }
  return std::nullopt;
}

bool is_unspecified(const stun::Endpoint& ep) {
  for (size_t i = 0; i < ep.addr_len(); ++i) {
    if (ep.addr[i] != 0) return false;
  }
  return true;
}

namespace {

OpenResult fail(int fd, const char* step) {
  const int err = errno;
  if (fd >= 0) ::close(fd);
  return {-1, err, step};
}

bool set_int(int fd, int level, int name, int value) {
  return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0;
}

}  // namespace

OpenResult open_udp(const stun::Endpoint& ep, const UdpOptions& opts) {
  const int family = ep.is_v4() ? AF_INET : AF_INET6;
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "socket");
  if (!ep.is_v4() && !set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) return fail(fd, "IPV6_V6ONLY");
  if (opts.reuse_port && !set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) return fail(fd, "SO_REUSEPORT");
  if (opts.pktinfo) {
    const bool ok = ep.is_v4() ? set_int(fd, IPPROTO_IP, IP_PKTINFO, 1)
                               : set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    if (!ok) return fail(fd, "IP_PKTINFO");
  }
  if (opts.buffer_bytes > 0) {
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    set_int(fd, SOL_SOCKET, SO_RCVBUF, opts.buffer_bytes);
    set_int(fd, SOL_SOCKET, SO_SNDBUF, opts.buffer_bytes);
  }
  const SockAddr sa = to_sockaddr(ep);
  if (::bind(fd, sa.get(), sa.len) != 0) return fail(fd, "bind");
  return {fd, 0, ""};
}

OpenResult open_tcp(const stun::Endpoint& ep, int backlog) {
  const SockAddr sa = to_sockaddr(ep);
  if (backlog > 0) {
    // SO_REUSEPORT would let another process of the same user (a second server on an
    // overlapping port range) bind and listen on this port too, and the kernel would then
    // share the peers' connections between the two. A probe bound without SO_REUSEPORT fails
    // on any port someone listens on, whatever their options: take only ports it gets.
    const int probe = ::socket(ep.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return fail(probe, "socket");
    if (!ep.is_v4() && !set_int(probe, IPPROTO_IPV6, IPV6_V6ONLY, 1)) return fail(probe, "IPV6_V6ONLY");
    if (!set_int(probe, SOL_SOCKET, SO_REUSEADDR, 1)) return fail(probe, "SO_REUSEADDR");
    if (::bind(probe, sa.get(), sa.len) != 0) return fail(probe, "bind");
    ::close(probe);
  }
  const int fd = ::socket(ep.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd, "socket");
  if (!ep.is_v4() && !set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) return fail(fd, "IPV6_V6ONLY");
  if (!set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) return fail(fd, "SO_REUSEADDR");
  if (!set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) return fail(fd, "SO_REUSEPORT");
  if (::bind(fd, sa.get(), sa.len) != 0) return fail(fd, "bind");
  if (backlog > 0 && ::listen(fd, backlog) != 0) return fail(fd, "listen");
  return {fd, 0, ""};
}

std::optional<stun::Endpoint> local_endpoint(int fd) {
  SockAddr sa;
  sa.len = sizeof(sa.storage);
  if (::getsockname(fd, sa.get(), &sa.len) != 0) return std::nullopt;
  return from_sockaddr(sa.get(), sa.len);
}

std::optional<stun::Endpoint> pktinfo_destination(const msghdr& msg, uint16_t port) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      stun::Endpoint ep;
      ep.family = stun::Family::kIPv4;
      ep.port = port;
      std::memcpy(ep.addr.data(), &info.ipi_addr, 4);
      return ep;
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      stun::Endpoint ep;
      ep.family = stun::Family::kIPv6;
      ep.port = port;
      std::memcpy(ep.addr.data(), &info.ipi6_addr, 16);
      return ep;
    }
  }
  return std::nullopt;
}

size_t write_pktinfo(const stun::Endpoint& source, uint8_t* buf) {
  if (is_unspecified(source)) return 0;
  std::memset(buf, 0, kPktInfoSpace);
  msghdr msg{};
  msg.msg_control = buf;
  msg.msg_controllen = kPktInfoSpace;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (source.is_v4()) {
    in_pktinfo info{};
    std::memcpy(&info.ipi_spec_dst, source.addr.data(), 4);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(info));
    std::memcpy(CMSG_DATA(c), &info, sizeof(info));
    return CMSG_SPACE(sizeof(info));
  }
  in6_pktinfo info{};
  std::memcpy(&info.ipi6_addr, source.addr.data(), 16);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(info));
  std::memcpy(CMSG_DATA(c), &info, sizeof(info));
  return CMSG_SPACE(sizeof(info));
}

std::string error_text(int err) {
  char buf[128];
  // GNU strerror_r returns the message pointer (possibly not buf).
  const char* s = ::strerror_r(err, buf, sizeof(buf));
  return std::string(s) + " (errno " + std::to_string(err) + ")";
}

}  // namespace callrelay::net
