// IPv4 socket addresses for the stream TURN client's files (stream_conn.cpp opens and names
// sockets with them, stream_turn_client.cpp encodes and decodes XOR addresses).
#pragma once

#include <netinet/in.h>

#include "tests/integration/tools/stream_turn_client.hpp"

namespace callrelay::integ::detail {

Address to_address(const sockaddr_in& sa);
/// Throws Failure unless `a` is an IPv4 address.
sockaddr_in to_sockaddr(const Address& a);

}  // namespace callrelay::integ::detail
