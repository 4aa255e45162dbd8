// The server's own addresses, so that peer policy can refuse them: no client may loop the relay
// into the server's own listeners (TURN over UDP, TCP, TLS, and the HTTP API).
#pragma once

#include <optional>

#include "relay/core/peer_policy.hpp"
#include "relay/net/server.hpp"

namespace callrelay::app {

/// The bound listeners of `server` (and `http`, when it listens), and this host's addresses:
/// every interface address (getifaddrs), the relay bind and external addresses, and the
/// listeners' own. A wildcard listener covers them all (core::OwnAddresses).
core::OwnAddresses own_addresses(const net::Server& server, const net::RelayNetSettings& relay,
                                 const std::optional<stun::Endpoint>& http);

}  // namespace callrelay::app
