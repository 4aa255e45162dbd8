// libFuzzer target: a real TurnServer (fake relay ports, fake clocks) driven by a script of
// events. Input layout (all integers big-endian):
//   header:  1 byte of settings (bit 0 Binding needs auth, bit 1 RFC 5766 channels,
//            bit 2 media measurement)
//   events:  kind (1), length (2), payload (length bytes), repeated to the end
//     kind & 3 == 0  a client packet: payload bytes from client (kind >> 2) & 3 over UDP, or
//                    over TCP when bit 4 is set; with bit 5 the harness re-signs the payload
//                    (a STUN request) with a valid USERNAME/REALM/NONCE/MESSAGE-INTEGRITY, so
//                    captured requests reach the authenticated handlers
//     kind & 3 == 1  a peer packet: payload[0] picks the relay socket, payload[1] the peer,
//                    the rest is the datagram
//     kind & 3 == 2  the timer: the monotonic clock advances by the first 2 payload bytes x
//                    16 ms, the wall clock steps by the next 2 bytes (signed) x 1 minute
//     kind & 3 == 3  RFC 6062 events: connected / failed / closed / inbound, on payload ids
// Every event also advances the monotonic clock by (kind >> 6) x 100 ms. Invariants checked:
// an answer to a client parses as STUN or ChannelData; a packet to a peer leaves an open relay
// socket; the clock handed back by on_timer never lies in the past.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/stun/builder.hpp"
#include "relay/stun/channel_data.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace {

using namespace callrelay;
using core::Endpoint;

void require(bool condition) {
  if (!condition) std::abort();
}

constexpr char kRealm[] = "fuzz.example";
constexpr char kUser[] = "fuzzer";
constexpr char kPassword[] = "fuzz-password";

/// Relay ports with dense ids; records which are open so outputs can be checked.
class FakePorts final : public core::RelayPorts {
 public:
  std::optional<Opened> open(core::Family family, const Endpoint&, bool,
                             bool reserve_next) override {
    if (open_.size() > 64) return std::nullopt;
    Opened o{make(family), std::nullopt};
    if (reserve_next) o.reserved_next = make(family);
    return o;
  }
  void close(core::RelayId id) override { require(open_.erase(id) == 1); }
  std::optional<core::RelayAddress> open_tcp(core::Family family, const Endpoint&) override {
    return make(family);
  }
  bool connect_peer(core::RelayId, core::ConnectionId, const Endpoint&) override { return true; }
  bool is_open(core::RelayId id) const { return open_.count(id) != 0; }
  core::RelayId pick(uint8_t b) const {
    if (open_.empty()) return b;
    auto it = open_.begin();
    std::advance(it, b % open_.size());
    return *it;
  }

 private:
  core::RelayAddress make(core::Family family) {
    core::RelayAddress r;
    r.id = next_++;
    r.address =
        *Endpoint::parse(family == core::Family::kIPv4 ? "203.0.113.1:0" : "[2001:db8::1]:0");
    r.address.port = static_cast<uint16_t>(50000 + r.id % 10000);
    open_.insert(r.id);
    return r;
  }
  std::set<core::RelayId> open_;
  core::RelayId next_ = 0;
};

class FakeWall final : public core::WallClock {
 public:
  core::TimeMs unix_ms() const override { return now; }
  core::TimeMs now = 1'700'000'000'000;
};

core::AuthConfig auth_config() {
  core::AuthConfig a;
  a.realm = kRealm;
  a.rest_secrets = {"fuzz-secret"};
  a.static_users = {{kUser, kPassword}};
  return a;
}

core::PeerPolicyConfig policy_config() {
  core::PeerPolicyConfig p;
  p.allow = {*core::Cidr::parse("10.0.0.0/8")};
  return p;
}

const std::array<Endpoint, 4> kClients = {
    *Endpoint::parse("198.51.100.1:40000"), *Endpoint::parse("198.51.100.2:40001"),
    *Endpoint::parse("[2001:db8:1::2]:40002"), *Endpoint::parse("10.1.2.3:40003")};
const std::array<Endpoint, 4> kPeers = {
    *Endpoint::parse("93.184.216.34:7000"), *Endpoint::parse("10.9.9.9:9"),
    *Endpoint::parse("[2606:4700::1111]:443"), *Endpoint::parse("127.0.0.1:3478")};

struct Harness {
  explicit Harness(uint8_t settings)
      : auth(auth_config(), &wall),
        nonces(std::array<uint8_t, 32>{7}, 600),
        policy(policy_config()),
        server(config(settings), auth, nonces, policy, ports, nullptr) {
    core::OwnAddresses own;
    own.listeners = {*Endpoint::parse("192.0.2.1:3478")};
    policy.set_own_addresses(own);
  }
  static core::CoreConfig config(uint8_t settings) {
    core::CoreConfig c;
    c.require_auth_for_binding = (settings & 1) != 0;
    c.accept_rfc5766_channels = (settings & 2) != 0;
    c.media_quality = (settings & 4) != 0;
    return c;
  }
  FakeWall wall;
  core::Authenticator auth;
  core::NonceCodec nonces;
  core::PeerPolicy policy;
  FakePorts ports;
  core::TurnServer server;
  core::TimeMs now = 5'000;
};

/// The request in `bytes` with its credentials replaced by valid ones (static user, fresh
/// nonce); the bytes unchanged when they do not parse as STUN.
std::vector<uint8_t> resign(Harness& h, const Endpoint& client, std::span<const uint8_t> bytes) {
  const auto msg = stun::MessageView::parse(bytes);
  if (!msg) return {bytes.begin(), bytes.end()};
  std::vector<uint8_t> out(2048);
  stun::MessageBuilder b(out, msg->method(), msg->cls(), msg->transaction_id());
  namespace at = stun::attr;
  for (const auto& a : msg->attributes()) {
    switch (a.type) {
      case at::kMessageIntegrity:
      case at::kMessageIntegritySha256:
      case at::kFingerprint:
      case at::kUsername:
      case at::kRealm:
      case at::kNonce:
      case at::kUserhash:
        continue;
      default:
        b.add_bytes(a.type, msg->value(a));
    }
  }
  b.add_string(at::kUsername, kUser);
  b.add_string(at::kRealm, kRealm);
  b.add_string(at::kNonce, h.nonces.issue(client, h.now, 0));
  b.add_integrity(stun::long_term_key(kUser, kRealm, kPassword));
  if (!b.ok()) return {bytes.begin(), bytes.end()};
  out.resize(b.finish());
  return out;
}

void check_output(const Harness& h, const core::Output& out) {
  switch (out.kind) {
    case core::Output::Kind::kNone:
      return;
    case core::Output::Kind::kToClient:
      require(!out.data.empty());
      if (stun::looks_like_channel_data(out.data)) {
        require(stun::parse_channel_data(out.data).has_value());
      } else {
        require(stun::MessageView::parse(out.data).has_value());
      }
      return;
    case core::Output::Kind::kToPeer:
      require(h.ports.is_open(out.relay));
      return;
  }
}

uint16_t u16(std::span<const uint8_t> p, size_t at) {
  return p.size() >= at + 2 ? static_cast<uint16_t>((p[at] << 8) | p[at + 1]) : 0;
}

void client_event(Harness& h, uint8_t kind, std::span<const uint8_t> payload) {
  core::FiveTuple from;
  from.transport = (kind & 0x10) != 0 ? core::Transport::kTcp : core::Transport::kUdp;
  from.client = kClients[(kind >> 2) & 3];
  from.server = *Endpoint::parse(from.client.is_v4() ? "192.0.2.1:3478" : "[2001:db8::1]:3478");
  const std::vector<uint8_t> bytes = (kind & 0x20) != 0
                                         ? resign(h, from.client, payload)
                                         : std::vector<uint8_t>(payload.begin(), payload.end());
  check_output(h, h.server.on_client_packet(from, bytes, h.now));
}

void peer_event(Harness& h, std::span<const uint8_t> payload) {
  if (payload.size() < 2) return;
  const core::RelayId relay = h.ports.pick(payload[0]);
  const Endpoint& peer = kPeers[payload[1] & 3];
  const auto data = payload.subspan(2);
  std::vector<uint8_t> buffer(core::kPeerHeadroom + data.size() + core::kPeerTailroom);
  std::copy(data.begin(), data.end(), buffer.begin() + core::kPeerHeadroom);
  check_output(h, h.server.on_peer_packet(relay, peer, buffer, data.size(), h.now));
}

void timer_event(Harness& h, std::span<const uint8_t> payload) {
  h.now += core::TimeMs{u16(payload, 0)} * 16;
  h.wall.now += core::TimeMs{static_cast<int16_t>(u16(payload, 2))} * 60'000;
  const core::TimeMs next = h.server.on_timer(h.now);
  require(next > h.now);
}

void tcp_event(Harness& h, std::span<const uint8_t> payload) {
  if (payload.size() < 5) return;
  const core::ConnectionId cid =
      (core::ConnectionId{payload[1]} << 24) | (payload[2] << 16) | (payload[3] << 8) | payload[4];
  switch (payload[0] & 3) {
    case 0:
      check_output(h, h.server.on_peer_connected(cid, true, h.now));
      return;
    case 1:
      check_output(h, h.server.on_peer_connected(cid, false, h.now));
      return;
    case 2:
      h.server.on_peer_closed(cid, h.now);
      return;
    default: {
      std::optional<core::ConnectionId> got;
      check_output(h, h.server.on_peer_connection(h.ports.pick(payload[1]), kPeers[payload[2] & 3],
                                                  h.now, &got));
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Harness h(data[0]);
  std::span<const uint8_t> rest(data + 1, size - 1);
  while (rest.size() >= 3) {
    const uint8_t kind = rest[0];
    const size_t len = std::min<size_t>(u16(rest, 1), rest.size() - 3);
    const auto payload = rest.subspan(3, len);
    rest = rest.subspan(3 + len);
    h.now += core::TimeMs{kind >> 6} * 100;
    switch (kind & 3) {
      case 0:
        client_event(h, kind, payload);
        break;
      case 1:
        peer_event(h, payload);
        break;
      case 2:
        timer_event(h, payload);
        break;
      default:
        tcp_event(h, payload);
        break;
    }
  }
  h.server.shutdown(h.now);
  return 0;
}
