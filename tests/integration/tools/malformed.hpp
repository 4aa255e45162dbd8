// The malformed-datagram battery of the integration tests.
#pragma once

#include <cstdint>
#include <string>

namespace callrelay::integ {

/// Sends truncated, garbage, length-overrunning and 64 KiB datagrams to host:port, checks that
/// no malformed request was answered with a success response, then checks that a well-formed
/// Binding request still gets a correct success response. Returns 0 on success (exit code).
int run_malformed(const std::string& host, uint16_t port);

}  // namespace callrelay::integ
