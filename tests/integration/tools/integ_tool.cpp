// Small command-line helper for the integration test scripts: finds free loopback UDP ports,
// mints TURN REST passwords, waits for a UDP echo peer, throws malformed datagrams at a
// server, streams ChannelData through allocations, and runs the RFC 6062 TCP relay cases.
// Written without the project's codec on purpose, so the tests stay an independent check of
// the server. Every network operation targets the address given on the command line (the
// scripts only ever pass loopback addresses) and is bounded in time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/tools/allocate.hpp"
#include "tests/integration/tools/dual_stack.hpp"
#include "tests/integration/tools/malformed.hpp"
#include "tests/integration/tools/rtp_stream.hpp"
#include "tests/integration/tools/stream.hpp"
#include "tests/integration/tools/tcp_relay.hpp"
#include "tests/integration/tools/udp.hpp"

namespace {

using callrelay::integ::UdpSocket;

int usage() {
  std::fprintf(stderr,
               "usage: integ_tool free-port [--pair]\n"
               "       integ_tool mint SECRET USERNAME\n"
               "       integ_tool wait-echo HOST PORT TIMEOUT_MS\n"
               "       integ_tool malformed HOST PORT\n"
               "       integ_tool allocate HOST PORT USERNAME PASSWORD\n"
               "       integ_tool sha256-relay HOST PORT USERNAME PASSWORD\n"
               "       integ_tool dual HOST PORT PEER4_PORT PEER6_PORT USERNAME PASSWORD\n"
               "       integ_tool stream HOST PORT PEER_IP PEER_PORT MAX_SECONDS USERNAME PASSWORD"
               " [USERNAME PASSWORD]...\n"
               "       integ_tool tcp-relay CASE tcp|tls|udp HOST PORT USERNAME PASSWORD"
               " [OTHER_USERNAME OTHER_PASSWORD]\n"
               "         CASE: outbound close connect-errors inbound bind-errors control-close"
               " (tcp, tls) udp-allocate (udp)\n"
               "       integ_tool rtp-stream HOST PORT USERNAME PASSWORD SECONDS SKIP_EVERY"
               " JITTER_MS PEER_DELAY_MS CLIENT_DELAY_MS HOLD_SECONDS\n");
  return 2;
}

/// Whether nothing is bound to TCP 127.0.0.1:port now.
bool tcp_port_free(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// Prints a UDP port on 127.0.0.1 that was free a moment ago (with --pair, port+1 too, as
/// turnutils_peer binds both). Ports come from the kernel so they never collide with the
/// relay range 61000-65000 the tests configure. The same TCP ports must be free too: a peer on
/// a port where the server under test listens (its HTTP listener on an ephemeral port) is one
/// the server's peer policy refuses.
int free_port(bool pair) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    UdpSocket first("127.0.0.1", 0);
    if (!first.ok()) return 1;
    const uint16_t port = first.local_port();
    if (!tcp_port_free(port) || (pair && port < 65535 && !tcp_port_free(port + 1))) continue;
    if (!pair) {
      std::printf("%u\n", port);
      return 0;
    }
    if (port == 65535) continue;
    UdpSocket second("127.0.0.1", static_cast<uint16_t>(port + 1));
    if (second.ok()) {
      std::printf("%u\n", port);
      return 0;
    }
  }
  std::fprintf(stderr, "integ_tool: no free port pair found\n");
  return 1;
}

/// TURN REST API password: base64(HMAC-SHA1(secret, username)).
int mint(const std::string& secret, const std::string& username) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac.data(),
       &mac_len);
  std::array<unsigned char, 64> b64{};
  EVP_EncodeBlock(b64.data(), mac.data(), static_cast<int>(mac_len));
  std::printf("%s\n", reinterpret_cast<const char*>(b64.data()));
  return 0;
}

/// Sends a probe to an echo peer every 100 ms until it comes back or the timeout passes.
int wait_echo(const std::string& host, uint16_t port, int timeout_ms) {
  UdpSocket sock(host.find(':') == std::string::npos ? "127.0.0.1" : "::1", 0);
  if (!sock.ok()) return 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string probe = "integ-tool-echo-probe";
  std::vector<uint8_t> buf(2048);
  while (std::chrono::steady_clock::now() < deadline) {
    sock.send_to(host, port, reinterpret_cast<const uint8_t*>(probe.data()), probe.size());
    const auto got = sock.receive(buf, 100);
    if (got && std::string(buf.begin(), buf.begin() + static_cast<long>(*got)) == probe) {
      return 0;
    }
  }
  std::fprintf(stderr, "integ_tool: no echo from %s:%u within %d ms\n", host.c_str(), port,
               timeout_ms);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage();
  const std::string& cmd = args[0];
  if (cmd == "free-port") return free_port(args.size() > 1 && args[1] == "--pair");
  if (cmd == "mint" && args.size() == 3) return mint(args[1], args[2]);
  if (cmd == "wait-echo" && args.size() == 4) {
    return wait_echo(args[1], static_cast<uint16_t>(std::stoi(args[2])), std::stoi(args[3]));
  }
  if (cmd == "malformed" && args.size() == 3) {
    return callrelay::integ::run_malformed(args[1], static_cast<uint16_t>(std::stoi(args[2])));
  }
  if (cmd == "dual" && args.size() == 7) {  // IPv6 tests: a dual-stack allocation
    return callrelay::integ::run_dual(args[1], static_cast<uint16_t>(std::stoi(args[2])),
                                      static_cast<uint16_t>(std::stoi(args[3])),
                                      static_cast<uint16_t>(std::stoi(args[4])), args[5], args[6]);
  }
  if (cmd == "allocate" && args.size() == 5) {
    return callrelay::integ::run_allocate(args[1], static_cast<uint16_t>(std::stoi(args[2])),
                                          args[3], args[4]);
  }
  if (cmd == "sha256-relay" && args.size() == 5) {  // an RFC 8489 client choosing SHA-256
    return callrelay::integ::run_sha256_relay(args[1], static_cast<uint16_t>(std::stoi(args[2])),
                                              args[3], args[4]);
  }
  if (cmd == "tcp-relay" && (args.size() == 7 || args.size() == 9)) {  // RFC 6062 cases
    callrelay::integ::TcpRelayTarget target{
        args[2], args[3], static_cast<uint16_t>(std::stoi(args[4])), args[5], args[6], {}, {}};
    if (args.size() == 9) {
      target.other_username = args[7];
      target.other_password = args[8];
    }
    const int rc = callrelay::integ::run_tcp_relay(args[1], target);
    return rc == 2 ? usage() : rc;
  }
  if (cmd == "stream" && args.size() >= 8 && args.size() % 2 == 0) {
    std::vector<std::pair<std::string, std::string>> credentials;
    for (size_t i = 6; i + 1 < args.size(); i += 2) credentials.emplace_back(args[i], args[i + 1]);
    return callrelay::integ::run_stream(args[1], static_cast<uint16_t>(std::stoi(args[2])), args[3],
                                        static_cast<uint16_t>(std::stoi(args[4])),
                                        std::stoi(args[5]), credentials);
  }
  if (cmd == "rtp-stream" && args.size() == 11) {  // call quality: known loss, jitter, RTT
    const int rc = callrelay::integ::run_rtp_stream(
        {args[1], static_cast<uint16_t>(std::stoi(args[2])), args[3], args[4], std::stoi(args[5]),
         std::stoi(args[6]), std::stoi(args[7]), std::stoi(args[8]), std::stoi(args[9]),
         std::stoi(args[10])});
    return rc == 2 ? usage() : rc;
  }
  return usage();
}
