// UDP sockets that speak for many client addresses at once: bound to 0.0.0.0:port, they pick
// each datagram's source address with IP_PKTINFO (ipi_spec_dst) and learn from IP_PKTINFO on
// receive which local address an answer was sent to. One descriptor thus carries as many
// client 5-tuples as there are loopback addresses, which is how the hold mode reaches 100k
// allocations under a 20k descriptor limit.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace callrelay::bench {

/// Opens a non-blocking UDP socket bound to 0.0.0.0:`port` with IP_PKTINFO on. Returns -1
/// (errno set) when the port is taken or the socket cannot be made.
int open_source_socket(uint16_t port);

/// Sends `bytes` to `to` from local address `source` (host order), which must be local (any
/// 127.x.y.z is). Returns what sendmsg returns.
ssize_t send_from(int fd, uint32_t source, const sockaddr_in& to, std::span<const uint8_t> bytes);

/// One datagram read by recv_to: its length, sender and the local address it was sent to.
struct Received {
  size_t len = 0;
  sockaddr_in from{};
  uint32_t to = 0;  ///< host order; 0 when the kernel gave no IP_PKTINFO
};

/// Reads one datagram without blocking into `buf`. False when none is waiting (or on error).
bool recv_to(int fd, std::span<uint8_t> buf, Received& out);

}  // namespace callrelay::bench
