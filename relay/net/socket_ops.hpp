// Thin, allocation-free helpers over the BSD socket API: Endpoint <-> sockaddr conversion,
// UDP socket creation with the options relay/net needs, and IP_PKTINFO control messages.
// Linux-specific (recvmmsg/sendmmsg, IPV6_RECVPKTINFO).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// A socket address big enough for IPv4 and IPv6, with its length.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

/// Converts an Endpoint to a sockaddr (AF_INET or AF_INET6).
SockAddr to_sockaddr(const stun::Endpoint& ep);
/// Writes `ep` into `out` (which must hold a sockaddr_in6) and returns its length.
socklen_t write_sockaddr(const stun::Endpoint& ep, sockaddr_storage& out);
/// Converts a received sockaddr to an Endpoint; nullopt for other families. IPv4-mapped IPv6
/// addresses are kept as IPv6 (listeners are IPV6_V6ONLY, so they do not occur).
std::optional<stun::Endpoint> from_sockaddr(const sockaddr* sa, socklen_t len);

/// True when the address part is 0.0.0.0 or ::.
bool is_unspecified(const stun::Endpoint& ep);

/// SO_RCVBUF/SO_SNDBUF request for a UDP socket that carries many parties' datagrams (a
/// listener's clients, a shared relay port's peers): bursts queue here while its worker is busy,
/// and the default (about 200 KiB, some 90 datagrams of 1200 bytes) overflows.
constexpr int kBusyUdpBufferBytes = 4 << 20;

/// Options for open_udp().
struct UdpOptions {
  bool reuse_port = false;  ///< SO_REUSEPORT before bind (listeners shared by workers)
  bool pktinfo = false;     ///< IP_PKTINFO / IPV6_RECVPKTINFO (learn the local destination)
  int buffer_bytes = 0;     ///< SO_RCVBUF/SO_SNDBUF request; 0 keeps the system default
};

/// Result of open_udp(): a non-blocking, close-on-exec bound socket, or the errno that failed.
struct OpenResult {
  int fd = -1;
  int error = 0;          ///< errno of the failing call when fd < 0
  const char* step = "";  ///< which call failed ("socket", "bind", ...)
};

/// Creates a UDP socket of `ep`'s family (IPv6 sockets are IPV6_V6ONLY) and binds it to `ep`.
OpenResult open_udp(const stun::Endpoint& ep, const UdpOptions& opts);

/// Creates a TCP socket of `ep`'s family bound to `ep` (IPv6 sockets are IPV6_V6ONLY) with
/// SO_REUSEADDR and SO_REUSEPORT, so that an RFC 6062 TCP relay can listen on its relayed
/// transport address and also connect out from it (section 5.2: "The local endpoint is the
/// relayed transport address"). `backlog` > 0: it listens too. Non-blocking, close-on-exec.
OpenResult open_tcp(const stun::Endpoint& ep, int backlog);

/// The address a socket is bound to (getsockname), nullopt on failure.
std::optional<stun::Endpoint> local_endpoint(int fd);

/// Bytes of control buffer for one IPv4 or IPv6 packet-info control message.
inline constexpr size_t kPktInfoSpace = 64;

/// Finds the local destination address in a received message's IP_PKTINFO / IPV6_PKTINFO
/// control message; `port` is the listener's port (the cmsg carries the address only).
std::optional<stun::Endpoint> pktinfo_destination(const msghdr& msg, uint16_t port);

/// Writes an IP_PKTINFO / IPV6_PKTINFO control message into `buf` (kPktInfoSpace bytes) so a
/// datagram leaves from `source`; returns the control length to store in msg_controllen
/// (0 when `source` is unspecified and the kernel should choose).
size_t write_pktinfo(const stun::Endpoint& source, uint8_t* buf);

/// strerror-like text for an errno, without touching global state.
std::string error_text(int err);

}  // namespace callrelay::net
