// Command-line options of bench_loadgen, parsed into one struct the modes read.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/common/common.hpp"

namespace callrelay::bench {

/// What the load generator measures (see bench/README section in RESULTS.md).
enum class Mode { kMax, kRate, kAllocs, kHold, kStorm, kProbe };

/// How clients reach the relay. The relay always talks UDP to the echo peer.
enum class Transport { kUdp, kTcp, kTls };

struct Options {
  Mode mode = Mode::kMax;
  sockaddr_in server{};          ///< the relay (or the bare forwarder with --raw)
  sockaddr_in peer{};            ///< the echo peer every client relays to
  /// Client i relays to peer's address + (i mod peer_addresses), same port: each client its
  /// own peer, as each browser's remote party is, so a relay socket shared by allocations can
  /// tell whose answer a datagram is (bench_echo --listen 0.0.0.0:PORT answers them all).
  size_t peer_addresses = 1;
  bool raw = false;              ///< no TURN control: ChannelData straight to a bare forwarder
  size_t clients = 50;           ///< client sockets (each its own 5-tuple, so its own allocation)
  size_t payload = 160;          ///< application bytes per ChannelData packet
  size_t window = 8;             ///< max mode: packets in flight per client
  double pps = 50;               ///< rate mode: packets per second per client
  /// max mode over TCP/TLS: each client sends this many frames a second, one per write (at
  /// most `window` in flight), instead of refilling its window as answers come: an open-loop
  /// load that both servers carry below saturation, so they see the same segments. 0: off.
  double pace = 0;
  double warmup_s = 1;           ///< time before the measurement window opens
  double duration_s = 5;         ///< measurement window
  double timeout_s = 60;         ///< hard bound on the whole run, whatever happens
  std::vector<uint64_t> counts;  ///< hold: allocation counts to stop at; storm: Allocates to send
  size_t concurrency = 256;      ///< control transactions in flight at once
  std::string secret = "benchsecret";
  std::string user = "bench";
  int server_pid = 0;      ///< to read the server's RSS and CPU time
  int server_cpu = 0;      ///< the CPU the server is pinned to
  int gen_cpu = -1;        ///< the CPU the generator runs on (-1: not reported)
  std::string echo_stats;  ///< bench_echo's counter file
  /// Max mode: UDP sockets, or one TCP or TLS connection per client (the relay's leg to the
  /// echo peer is UDP either way).
  Transport transport = Transport::kUdp;
  /// TLS clients: a record per frame, as browsers and libwebrtc write them (true), or one
  /// record for all the frames of a write (false, --client-records packed).
  bool client_record_per_frame = true;
  /// Max mode over UDP: each payload starts with an RTP header (RFC 3550 section 5.1: Opus
  /// payload type 111, one SSRC per client, sequence numbers and 20 ms timestamps counting up),
  /// so that a relay measuring media parses every packet as it would a call's.
  bool rtp = false;
  /// UDP control and data sockets bind 127.0.0.1 .. 127.0.0.<sources> in turn: 1 puts every
  /// client behind one address (as behind a NAT), 50 gives 50 clients 50 addresses.
  size_t sources = 1;
  /// Hold mode: 0, one socket per client (as above); N, each socket serves N clients, client
  /// k of a socket sending from source_base + k (IP_PKTINFO), so 100k clients need 100k / N
  /// descriptors.
  size_t source_addresses = 0;
  uint32_t source_base = 0x7f010001;  ///< 127.1.0.1, host order: clear of 127.0.0.x
  /// Hold mode: held allocations are refreshed as browsers do: CreatePermission every
  /// refresh_permission_s, ChannelBind then Refresh every refresh_allocation_s (0: never).
  double refresh_permission_s = 240;
  double refresh_allocation_s = 540;
  /// Hold mode: after the last stage, keep holding (and refreshing) this long, then read the
  /// server's RSS once more.
  double hold_s = 0;
};

/// The echo peer client `index` relays to (see Options::peer_addresses).
sockaddr_in peer_of(const Options& o, size_t index);

/// "udp", "tcp" or "tls".
const char* transport_name(Transport t);

/// Reads every option; throws std::invalid_argument naming a bad or unknown one.
Options parse_options(Args& args);

/// Usage text printed on a bad command line.
const char* usage();

}  // namespace callrelay::bench
