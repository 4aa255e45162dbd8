// relay.bind_ipv4 / relay.bind_ipv6: the relay addresses of a family, one or a list (several
// addresses lift the cap of one port range per family), and their checks against
// external_ipv4 / external_ipv6. Kept apart from config.cpp; called from its Loader.
#pragma once

#include <optional>
#include <vector>

#include "config/yaml_reader.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::config::detail {

/// Why `ip` cannot be a relay address (a wildcard, multicast, broadcast or IPv4-mapped one),
/// or nullptr when it can.
const char* relay_address_problem(const stun::Endpoint& ip);

/// Reads one address or a list of them into `out`: each a concrete unicast address of
/// `family` (no wildcard, multicast or broadcast: a relay socket binds it and a peer sends to
/// it), no port, none twice. "~" or an empty list leaves `out` empty.
void read_relay_addresses(Reader& r, const Field& f, stun::Family family,
                          std::vector<stun::Endpoint>& out);

/// external_ipv4/6 (`external`, read from field `f`) with more than one bind address of its
/// family is refused: each address has its own port range, so two relays could share a port,
/// and behind one public address they would collide.
void check_relay_external(Reader& r, const Field& f, const std::optional<stun::Endpoint>& external,
                          const std::vector<stun::Endpoint>& bind, stun::Family family);

}  // namespace callrelay::config::detail
