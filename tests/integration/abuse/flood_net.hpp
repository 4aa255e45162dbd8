// Sockets for the abuse tests' client (flood.cpp): loopback sources, many held connections,
// one TURN Allocate.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace callrelay::integ {

/// A numeric IPv4 destination.
struct Target {
  sockaddr_in sin{};
  socklen_t len = sizeof(sockaddr_in);
  const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&sin); }
};
/// Throws std::invalid_argument for a non-numeric or non-IPv4 address.
Target target(const std::string& host, uint16_t port);

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
uint64_t raise_nofile();

/// A non-blocking UDP socket bound to `source`:0; -1 (reported) on failure.
int udp_socket(const std::string& source);

/// Opens `count` TCP connections from `source` to host:port and keeps them open (`http`: each
/// sends the start of a request head and never finishes it); re-opens those the server closes,
/// five seconds later. Prints "held N of COUNT ..." once the number open is settled, then runs
/// until SIGTERM or SIGINT and prints "final ...". Exit 77 when the descriptor limit is too low.
int hold(const std::string& host, uint16_t port, const std::string& source, unsigned count,
         bool http);

/// A TURN Allocate over UDP or TCP from `source`: the 401 round, then the signed request.
/// Prints "allocated PROTO RELAYED in MS ms"; 0 on success, 1 on failure (reported).
int allocate(bool tcp, const std::string& host, uint16_t port, const std::string& source,
             const std::string& username, const std::string& password);

}  // namespace callrelay::integ
