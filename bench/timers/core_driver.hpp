// The worker's side of the timers bench: one relay/core TurnServer driven in process the way a
// worker drives it (client requests, relayed packets, on_timer at the deadlines it returns),
// with relay ports that need no sockets. TURN clients sign their requests with REST credentials
// and answer a stale nonce (438) as real clients do.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/core/turn_server.hpp"

namespace callrelay::bench {

/// Relay ports without sockets: dense ids, reused after close (as relay/net's are).
class FreeListPorts : public core::RelayPorts {
 public:
  /// The free list never grows while the bench measures: a fake's reallocation is no cost of
  /// the core's (relay/net sizes its port table once, at start).
  FreeListPorts() { free_.reserve(1u << 18); }
  std::optional<Opened> open(core::Family family, const core::Endpoint& server, bool even,
                             bool reserve_next) override;
  void close(core::RelayId id) override;
  size_t open_count() const { return open_; }
  core::RelayId last_opened() const { return last_; }

 private:
  std::vector<core::RelayId> free_;
  core::RelayId next_ = 0;
  core::RelayId last_ = 0;
  size_t open_ = 0;
};

/// One TURN client of the bench: its 5-tuple, REST credentials and the nonce it holds.
struct BenchClient {
  core::FiveTuple tuple;
  std::string username;
  std::string password;
  std::string nonce;
  uint32_t serial = 0;
  core::RelayId relay = 0;  ///< its relay socket's id
};

/// A TurnServer with its collaborators, and the requests the bench's clients make.
class CoreDriver {
 public:
  /// `epoch`: the core's time at construction, in ms (REST usernames are judged against it).
  /// `observer`: what the core tells of allocations and requests (null: nothing), as a worker
  /// tells its telemetry and log.
  explicit CoreDriver(core::TimeMs epoch, core::Observer* observer = nullptr);

  /// A client at 10.a.b.c:40000 (`index` picks a, b, c), valid for a day from `epoch`.
  BenchClient client(uint32_t index) const;

  /// 401 round, Allocate (lifetime `lifetime_s`) and ChannelBind 0x4000 to `peer`. False when
  /// any answer was not a success.
  bool allocate(BenchClient& c, uint32_t lifetime_s, const core::Endpoint& peer,
                core::TimeMs now);
  /// CreatePermission for `peer`, ChannelBind 0x4000 to `peer`, Refresh: what clients send to
  /// keep an allocation (true when answered with success).
  bool create_permission(BenchClient& c, const core::Endpoint& peer, core::TimeMs now);
  bool channel_bind(BenchClient& c, const core::Endpoint& peer, core::TimeMs now);
  bool refresh(BenchClient& c, uint32_t lifetime_s, core::TimeMs now);

  /// A ChannelData of `size` bytes from `c` to its channel's peer, then the peer's answer at
  /// the relay: true when both were relayed (a round trip through the core).
  bool round_trip(const BenchClient& c, const core::Endpoint& peer, size_t size,
                  core::TimeMs now);

  core::TurnServer& server() { return *server_; }
  const FreeListPorts& ports() const { return ports_; }

 private:
  /// Sends request `method` with `attrs` signed by `c`; on a 438 takes the new nonce and sends
  /// it once more. The response's error code (0: success), or -1 when unanswered.
  template <typename F>
  int request(BenchClient& c, uint16_t method, F&& attrs, core::TimeMs now);

  core::TimeMs epoch_;
  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  FreeListPorts ports_;
  std::unique_ptr<core::TurnServer> server_;
  std::vector<uint8_t> request_buf_;
  std::vector<uint8_t> peer_buf_;
};

}  // namespace callrelay::bench
