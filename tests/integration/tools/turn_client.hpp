// A minimal TURN-over-UDP client for the integration test helpers, independent of the project's
// codec: Allocate with long-term credentials (and the addresses it returns), CreatePermission,
// ChannelBind, Refresh and ChannelData (IPv4 peers). By default it signs as RFC 5389 clients do
// (MD5 key, MESSAGE-INTEGRITY); in SHA-256 mode as an RFC 8489 client that picks SHA-256
// (PASSWORD-ALGORITHMS echoed, PASSWORD-ALGORITHM SHA-256, MESSAGE-INTEGRITY-SHA256).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {

/// An IPv4 transport address (the tools' peers are on 127.0.0.0/8).
struct Ipv4Endpoint {
  std::string ip;
  uint16_t port = 0;
  std::string text() const { return ip + ":" + std::to_string(port); }
};

/// One client 5-tuple talking to one TURN server. Blocking; every exchange is bounded in time
/// (5 tries of 500 ms). Not thread-safe.
class TurnClient {
 public:
  /// Binds a local UDP socket of the server address's family on an ephemeral port.
  TurnClient(std::string host, uint16_t port, std::string username, std::string password);

  /// True if the local socket was bound.
  bool ok() const { return sock_.ok(); }
  /// RFC 8489 SHA-256 mode (before allocate()): the 401 must offer SHA-256; every success
  /// response must carry a MESSAGE-INTEGRITY-SHA256 that verifies, or its code reads 0.
  void use_sha256(bool on) { sha256_ = on; }
  /// Success responses whose MESSAGE-INTEGRITY-SHA256 verified, and those that lacked one or
  /// failed (SHA-256 mode).
  int signed_sha256() const { return signed_sha256_; }
  int unsigned_or_bad() const { return unsigned_or_bad_; }

  /// RFC 8656 section 7.2 Allocate: unauthenticated request, 401 challenge, authenticated
  /// retry (and once more on 438 stale nonce). The final code: 200 on success, else the
  /// ERROR-CODE number, 0 for an error without a code, nullopt if no answer came.
  /// `transport` is the REQUESTED-TRANSPORT protocol: 17 (UDP relay), or 6 (TCP, RFC 6062),
  /// which a UDP client must be refused.
  std::optional<int> allocate(uint8_t transport = 17);
  /// XOR-RELAYED-ADDRESS and XOR-MAPPED-ADDRESS of the successful Allocate, if IPv4 (port 0
  /// otherwise or before it).
  const Ipv4Endpoint& relayed() const { return relayed_; }
  const Ipv4Endpoint& mapped() const { return mapped_; }

  /// RFC 8656 section 9.1 CreatePermission for an IPv4 peer.
  std::optional<int> create_permission(const std::string& peer_ip, uint16_t peer_port);
  /// RFC 8656 section 11.1 ChannelBind of `channel` (0x4000-0x4FFF) to an IPv4 peer.
  std::optional<int> channel_bind(uint16_t channel, const std::string& peer_ip, uint16_t peer_port);

  /// RFC 8656 section 7.3 Refresh with LIFETIME `lifetime` seconds (0 deletes the allocation).
  std::optional<int> refresh(uint32_t lifetime);

  /// Sends `payload` as one ChannelData message on `channel`; false if the kernel refused it.
  bool send_channel_data(uint16_t channel, std::span<const uint8_t> payload);

  /// Waits up to timeout_ms for a ChannelData message and returns its payload (valid until the
  /// next receive); nothing on timeout or for any other datagram.
  std::optional<std::span<const uint8_t>> receive_channel_data(int timeout_ms);

 private:
  using Bytes = std::vector<uint8_t>;
  struct Response {
    uint16_t type = 0;
    int code = 200;
    std::string realm, nonce;
    std::vector<uint8_t> password_algorithms;  ///< PASSWORD-ALGORITHMS value, as sent
    bool integrity_sha256_ok = false;          ///< MESSAGE-INTEGRITY-SHA256 present and verified
    std::optional<Ipv4Endpoint> relayed, mapped;
  };

  Bytes new_request(uint16_t method);
  void sign(Bytes& request);
  std::optional<Response> exchange(const Bytes& request);
  std::optional<Response> authenticated(uint16_t method,
                                        const std::vector<std::pair<uint16_t, Bytes>>& attrs);
  std::optional<int> authenticated_code(uint16_t method,
                                        const std::vector<std::pair<uint16_t, Bytes>>& attrs);

  std::string host_;
  uint16_t port_;
  std::string username_, password_;
  std::string realm_, nonce_;
  Bytes key_;
  bool sha256_ = false;
  Bytes offered_algorithms_;  ///< the 401's PASSWORD-ALGORITHMS, echoed in SHA-256 mode
  int signed_sha256_ = 0;
  int unsigned_or_bad_ = 0;
  Ipv4Endpoint relayed_, mapped_;
  UdpSocket sock_;
  std::mt19937 rng_;
  Bytes buf_;
};

}  // namespace callrelay::integ
