// RFC 6062 TCP allocations at the socket level, for the cases turnutils_uclient -T does not
// exercise: where the relay's outgoing connection comes from, peer bytes buffered before the
// ConnectionBind, close propagation each way, the Connect and ConnectionBind error codes,
// inbound peers with and without a permission, and what closing the control connection ends.
#pragma once

#include <cstdint>
#include <string>

namespace callrelay::integ {

/// What one `integ_tool tcp-relay` run talks to. `other_username`/`other_password`: a second
/// valid REST credential (the `bind-errors` case needs it; empty otherwise).
struct TcpRelayTarget {
  std::string transport;  ///< "tcp" or "tls" (client connections); "udp" for udp-allocate
  std::string host;
  uint16_t port = 0;
  std::string username, password;
  std::string other_username, other_password;
};

/// Runs one case against the server (each case makes its own allocation and peers on
/// 127.0.0.1, and every wait is bounded by a few seconds):
///   outbound       Connect to a local listener: success with CONNECTION-ID, the peer sees the
///                  relayed address as source, 3000 peer bytes sent before the ConnectionBind
///                  arrive first, then 1 MiB each way at once, both streams compared
///   close          peer closes -> client reads every pending byte then EOF; client closes ->
///                  peer reads every byte then EOF; neither ends the allocation or leaves
///                  state behind (Connect to the same peer again succeeds, Refresh succeeds)
///   connect-errors 447 for a port nothing listens on (twice), 400 without XOR-PEER-ADDRESS,
///                  446 for a second Connect to a connected peer (and no second connection),
///                  success again once that peer connection closed
///   inbound        a peer without a permission is closed and announced nowhere; with one, a
///                  ConnectionAttempt names it; the 100 KiB it sends before the ConnectionBind
///                  (more than the 64 KiB the server keeps: the rest waits in TCP flow control)
///                  arrive first, then 256 KiB each way at once
///   bind-errors    ConnectionBind: unknown CONNECTION-ID 400, another user 441 (the
///                  connection stays bindable), on the control connection 400, bound twice 400
///   control-close  closing the control connection closes the bound data connection, its
///                  peer, a peer connection still waiting for its bind, and the relay port
///   udp-allocate   Allocate with REQUESTED-TRANSPORT TCP over UDP gets 400
/// Outbound binds while the server still reads into its pre-bind buffer, inbound once that
/// buffer is full: the two ways a ConnectionBind meets buffered peer bytes.
/// Prints progress, "connection-id ID buffered N" for each connection whose early bytes the
/// server must have held (N of them) at the bind, and a final "PASS tcp-relay CASE over
/// TRANSPORT" line on stdout; on a failed check prints "FAIL ..." on stderr. Returns 0 on
/// success, 1 on failure, 2 for an unknown case or transport.
int run_tcp_relay(const std::string& test_case, const TcpRelayTarget& target);

}  // namespace callrelay::integ
