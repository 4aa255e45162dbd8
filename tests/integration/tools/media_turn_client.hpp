// A TURN-over-UDP client and the ICE-style STUN Binding messages for the media quality tests,
// independent of the project's codec: Allocate (with the relayed address), ChannelBind,
// Refresh, ChannelData in and out with its payload, and the connectivity checks two ICE agents
// exchange through a relay (RFC 8445 section 7.2), so that the relay can time them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {

/// An IPv4 transport address (the quality tests run on 127.0.0.0/8).
struct Ipv4Endpoint {
  std::string ip;
  uint16_t port = 0;
  std::string text() const { return ip + ":" + std::to_string(port); }
};

/// A 96-bit STUN transaction id (RFC 8489 section 5).
using TransactionId = std::array<uint8_t, 12>;

/// What a received datagram is, as far as these tests care.
struct StunInfo {
  enum class Kind : uint8_t { kBindingRequest, kBindingSuccess, kOther };
  Kind kind = Kind::kOther;
  TransactionId id{};
};

/// Parses a STUN header (RFC 8489 section 5: two zero bits, the magic cookie, a length that
/// matches the datagram and is a multiple of 4); nothing if it is not STUN.
std::optional<StunInfo> parse_stun(std::span<const uint8_t> datagram);

/// An ICE connectivity check (RFC 8445 section 7.2.2): Binding request with USERNAME
/// "remote:local", PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED, MESSAGE-INTEGRITY with the
/// short-term `password` (RFC 8489 section 9.1) and FINGERPRINT.
std::vector<uint8_t> ice_binding_request(const TransactionId& id, const std::string& username,
                                         const std::string& password, bool controlling);

/// The success response to a check: XOR-MAPPED-ADDRESS `mapped`, MESSAGE-INTEGRITY, FINGERPRINT.
std::vector<uint8_t> ice_binding_success(const TransactionId& id, const Ipv4Endpoint& mapped,
                                         const std::string& password);

/// One client 5-tuple talking to one TURN server over UDP. Blocking control exchanges (5 tries
/// of 500 ms); data calls never block longer than asked. Not thread-safe.
class MediaTurnClient {
 public:
  MediaTurnClient(std::string host, uint16_t port, std::string username, std::string password);

  bool ok() const { return sock_.ok(); }

  /// RFC 8656 section 7.2 Allocate of a UDP relay: the final code (200 on success, else the
  /// ERROR-CODE number, 0 for an error without one), nothing if no answer came.
  std::optional<int> allocate();
  /// XOR-RELAYED-ADDRESS of the successful Allocate.
  const Ipv4Endpoint& relayed() const { return relayed_; }
  /// XOR-MAPPED-ADDRESS of the successful Allocate: this client as the server sees it.
  const Ipv4Endpoint& mapped() const { return mapped_; }

  /// RFC 8656 section 11.1 ChannelBind (also installs the permission for the peer's address).
  std::optional<int> channel_bind(uint16_t channel, const Ipv4Endpoint& peer);
  /// RFC 8656 section 7.3 Refresh (LIFETIME 0 deletes the allocation).
  std::optional<int> refresh(uint32_t lifetime);

  /// Sends one ChannelData message (RFC 8656 section 12.4); false if the kernel refused it.
  bool send_channel_data(uint16_t channel, std::span<const uint8_t> payload);
  /// Waits up to timeout_ms for a ChannelData message and returns its payload (which stays
  /// valid until the next receive); nothing on timeout or for any other datagram.
  std::optional<std::span<const uint8_t>> receive_channel_data(int timeout_ms);

 private:
  using Bytes = std::vector<uint8_t>;
  struct Response {
    uint16_t type = 0;
    int code = 200;
    std::string realm, nonce;
    std::optional<Ipv4Endpoint> relayed, mapped;
  };

  Bytes new_request(uint16_t method);
  void sign(Bytes& request);
  std::optional<Response> exchange(const Bytes& request);
  std::optional<Response> authenticated(uint16_t method,
                                        const std::vector<std::pair<uint16_t, Bytes>>& attrs);

  std::string host_;
  uint16_t port_;
  std::string username_, password_;
  std::string realm_, nonce_;
  Bytes key_;
  Ipv4Endpoint relayed_, mapped_;
  UdpSocket sock_;
  std::mt19937 rng_;
  Bytes buf_;
};

}  // namespace callrelay::integ
