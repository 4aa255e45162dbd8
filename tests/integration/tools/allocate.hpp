// A raw TURN Allocate with long-term credentials, to see the exact final response code.
#pragma once

#include <cstdint>
#include <string>

namespace callrelay::integ {

/// Runs the RFC 8656 section 7.2 Allocate exchange (unauthenticated request, 401 challenge,
/// authenticated retry) against host:port and prints the final result on stdout: 200 for a
/// success response, else the ERROR-CODE number. Returns 0 if a final answer came, 1 if not.
int run_allocate(const std::string& host, uint16_t port, const std::string& username,
                 const std::string& password);

/// RFC 8489 SHA-256 client against host:port: Allocate (PASSWORD-ALGORITHM SHA-256,
/// MESSAGE-INTEGRITY-SHA256), CreatePermission and ChannelBind for a local UDP peer, one packet
/// relayed each way. Every success response must verify with MESSAGE-INTEGRITY-SHA256. Prints
/// what it did; returns 0 only if all of it worked.
int run_sha256_relay(const std::string& host, uint16_t port, const std::string& username,
                     const std::string& password);

}  // namespace callrelay::integ
