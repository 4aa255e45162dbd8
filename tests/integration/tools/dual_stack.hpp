// A raw dual-stack (RFC 8656 ADDITIONAL-ADDRESS-FAMILY) TURN exchange for the IPv6 tests.
#pragma once

#include <cstdint>
#include <string>

namespace callrelay::integ {

/// Allocates an IPv4 and an IPv6 relayed address at host:port, relays to the echo peers on
/// 127.0.0.1:peer4_port and [::1]:peer6_port and back, deletes the IPv6 half with a Refresh and
/// checks that an IPv6 permission then gets 443. Prints what it saw; 0 when every check passed.
int run_dual(const std::string& host, uint16_t port, uint16_t peer4_port, uint16_t peer6_port,
             const std::string& user, const std::string& pass);

}  // namespace callrelay::integ
