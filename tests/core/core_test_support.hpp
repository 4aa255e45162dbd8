// Test doubles and a small TURN client for the relay/core tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/stun/builder.hpp"
#include "relay/stun/channel_data.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::core::testing {

/// The fake clock: a fixed Unix time in ms (REST usernames compare against it).
inline constexpr TimeMs kT0 = 1'700'000'000'000;
inline constexpr TimeMs kSecond = 1000;
inline constexpr char kRealm[] = "relay.example";
inline constexpr char kSecret[] = "first-secret";

inline Endpoint ep(const char* text) {
  auto e = Endpoint::parse(text);
  EXPECT_TRUE(e.has_value()) << text;
  return e.value_or(Endpoint{});
}

/// Hands out relay ports from 61000 upwards with dense ids; `capacity` open sockets at most.
class FakeRelayPorts : public RelayPorts {
 public:
  std::optional<Opened> open(Family family, const Endpoint& /*server*/, bool even, bool reserve_next) override {
    ++open_calls;
    opened_families.push_back(family);
    if (no_port_for == family) return std::nullopt;
    if (open_ids.size() + (reserve_next ? 2 : 1) > capacity) return std::nullopt;
    if (even && next_port % 2 != 0) ++next_port;
    Opened o;
    o.relay = make(family);
    if (reserve_next) o.reserved_next = make(family);
    return o;
  }
  void close(RelayId id) override {
    EXPECT_TRUE(open_ids.erase(id) == 1) << "closing relay " << id << " that is not open";
    closed.push_back(id);
  }
  bool supports(Family family) const override { return family == Family::kIPv4 ? ipv4 : ipv6; }

  // --- RFC 6062 TCP relays: recorded calls. TCP relays share ids, ports and `capacity` with
  // the UDP ones (close() closes either kind). ---
  std::optional<RelayAddress> open_tcp(Family family, const Endpoint& server) override {
    open_tcp_calls.push_back({family, server});
    if (!tcp_port_free || open_ids.size() + 1 > capacity) return std::nullopt;
    const RelayAddress r = make(family);
    tcp_opened.push_back(r);
    return r;
  }
  bool connect_peer(RelayId relay, ConnectionId cid, const Endpoint& peer) override {
    connects.push_back({relay, cid, peer});
    return connect_result;
  }
  void bind_peer(ConnectionId cid, const FiveTuple& client, TrafficCounters& traffic) override {
    binds.push_back({cid, client, &traffic});
  }
  void close_peer(ConnectionId cid) override { closed_peers.push_back(cid); }

  struct OpenTcpCall { Family family; Endpoint server; };
  struct ConnectCall { RelayId relay; ConnectionId cid; Endpoint peer; };
  struct BindCall { ConnectionId cid; FiveTuple client; TrafficCounters* traffic; };

  bool tcp_port_free = true;     ///< open_tcp() fails when false (508)
  bool connect_result = true;    ///< what connect_peer() returns (false: 447 at once)
  std::vector<OpenTcpCall> open_tcp_calls;
  std::vector<RelayAddress> tcp_opened;  ///< what open_tcp() returned, in order
  std::vector<ConnectCall> connects;
  std::vector<BindCall> binds;
  std::vector<ConnectionId> closed_peers;  ///< close_peer() calls, in order

  size_t capacity = 1000;
  bool ipv4 = true;
  bool ipv6 = true;
  std::optional<Family> no_port_for;     ///< open() of this family fails (508 / ADDRESS-ERROR-CODE)
  std::vector<Family> opened_families;  ///< every open() call's family, in order
  uint16_t next_port = 61000;
  RelayId next_id = 0;
  int open_calls = 0;
  std::set<RelayId> open_ids;
  std::vector<RelayId> closed;

 private:
  RelayAddress make(Family family) {
    RelayAddress r;
    r.id = next_id++;
    r.address = family == Family::kIPv4 ? ep("192.0.2.1:0") : ep("[2001:db8::1]:0");
    r.address.port = next_port++;
    open_ids.insert(r.id);
    return r;
  }
};

struct RecordingObserver : Observer {
  struct Ended { uint64_t id; EndReason why; TimeMs now; };
  struct Req { stun::Method method; uint16_t code; };
  void on_allocation_created(const AllocationInfo& a) override { created.push_back(&a); created_ids.push_back(a.id); }
  void on_allocation_ended(const AllocationInfo& a, EndReason why, TimeMs now) override {
    ended.push_back({a.id, why, now});
  }
  void on_request(stun::Method m, Transport, uint16_t code) override { requests.push_back({m, code}); }
  void on_auth_failure(AuthFailure f) override { auth_failures.push_back(f); }
  void on_peer_denied(PeerDenyReason r) override { peer_denied.push_back(r); }
  void on_drop(DropReason r) override { drops.push_back(r); }

  std::vector<const AllocationInfo*> created;
  std::vector<uint64_t> created_ids;
  std::vector<Ended> ended;
  std::vector<Req> requests;
  std::vector<AuthFailure> auth_failures;
  std::vector<PeerDenyReason> peer_denied;
  std::vector<DropReason> drops;
};

/// A response copied out of the server's scratch buffer, parsed on demand.
struct Response {
  std::vector<uint8_t> bytes;
  stun::MessageView view() const {
    auto m = stun::MessageView::parse(bytes);
    EXPECT_TRUE(m.has_value()) << "response does not parse";
    return *m;
  }
  /// 0 for a success response, else the ERROR-CODE.
  uint16_t code() const {
    const auto m = view();
    if (m.cls() == stun::Class::kSuccess) return 0;
    const auto e = m.error_code();
    EXPECT_TRUE(e.has_value());
    return e ? e->code : 0;
  }
  bool has(uint16_t type) const { return view().find(type).has_value(); }
};

using AttrFn = std::function<void(stun::MessageBuilder&)>;

/// A TURN client speaking through the server: builds requests with the codec, signs them with
/// its long-term key once it has a nonce.
struct Client {
  FiveTuple tuple;
  std::string username;
  std::string password;
  std::string realm = kRealm;
  std::string nonce;
  bool fingerprint = false;
  uint32_t serial = 0;

  stun::TransactionId next_tid() {
    stun::TransactionId t{};
    ++serial;
    std::memcpy(t.data(), &serial, sizeof serial);
    t[11] = static_cast<uint8_t>(tuple.client.port);
    return t;
  }

  /// A request; signed when `sign` (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY).
  std::vector<uint8_t> build(stun::Method m, const AttrFn& attrs, bool sign, const stun::TransactionId& tid,
                             stun::Class cls = stun::Class::kRequest) const {
    std::vector<uint8_t> buf(2048);
    stun::MessageBuilder b(buf, m, cls, tid);
    if (attrs) attrs(b);
    if (sign) {
      b.add_string(stun::attr::kUsername, username);
      b.add_string(stun::attr::kRealm, realm);
      b.add_string(stun::attr::kNonce, nonce);
      const auto key = stun::long_term_key(username, realm, password);
      b.add_integrity(key);
    }
    if (fingerprint) b.add_fingerprint();
    EXPECT_TRUE(b.ok());
    buf.resize(b.finish());
    return buf;
  }

  stun::Sha1Key key() const { return stun::long_term_key(username, realm, password); }
};

/// One TurnServer with its collaborators, and helpers to drive it.
struct Harness {
  /// `wall`: the Authenticator's wall clock (null: the core's `now` is taken as wall time).
  explicit Harness(CoreConfig cfg = {}, AuthConfig acfg = default_auth(), PeerPolicyConfig pcfg = {},
                   const WallClock* wall = nullptr)
      : auth(std::move(acfg), wall), nonces(nonce_key(), 600), policy(std::move(pcfg)) {
    server = std::make_unique<TurnServer>(std::move(cfg), auth, nonces, policy, ports, &observer);
  }

  static AuthConfig default_auth() {
    AuthConfig a;
    a.realm = kRealm;
    a.rest_secrets = {kSecret};
    a.static_users = {{"alice", "alice-password"}};
    return a;
  }
  static std::array<uint8_t, 32> nonce_key() {
    std::array<uint8_t, 32> k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 7 + 1);
    return k;
  }

  /// A REST client valid for an hour from kT0, at client address `addr`.
  Client rest_client(const char* addr = "198.51.100.7:40000", const std::string& user = "bob",
                     const std::string& secret = kSecret) const {
    Client c;
    c.tuple.client = ep(addr);
    c.tuple.server = c.tuple.client.is_v4() ? ep("192.0.2.1:3478") : ep("[2001:db8::1]:3478");
    c.username = std::to_string(kT0 / 1000 + 3600) + ":" + user;
    c.password = Authenticator::rest_password(secret, c.username);
    return c;
  }

  std::optional<Response> send(const std::vector<uint8_t>& bytes, const FiveTuple& from, TimeMs now) {
    last = server->on_client_packet(from, bytes, now);
    if (last.kind != Output::Kind::kToClient) return std::nullopt;
    EXPECT_EQ(last.client, from);
    return Response{std::vector<uint8_t>(last.data.begin(), last.data.end())};
  }

  /// Sends a request and expects a response.
  Response request(Client& c, stun::Method m, const AttrFn& attrs, TimeMs now, bool sign = true,
                   std::optional<stun::TransactionId> tid = std::nullopt) {
    const auto t = tid ? *tid : c.next_tid();
    auto r = send(c.build(m, attrs, sign, t), c.tuple, now);
    EXPECT_TRUE(r.has_value()) << "no response";
    if (!r) return Response{};
    const auto v = r->view();
    EXPECT_EQ(v.transaction_id(), t);
    EXPECT_EQ(v.method(), m);
    return *r;
  }

  /// The unauthenticated first Allocate: 401 with REALM and NONCE, which the client keeps.
  void challenge(Client& c, TimeMs now) {
    const auto r = request(c, stun::Method::kAllocate, udp_transport(), now, false);
    ASSERT_EQ(r.code(), 401);
    const auto v = r.view();
    ASSERT_TRUE(v.string(stun::attr::kNonce));
    EXPECT_EQ(*v.string(stun::attr::kRealm), kRealm);
    c.nonce = std::string(*v.string(stun::attr::kNonce));
  }

  /// The 401 round then an authenticated Allocate; returns the relayed address.
  Endpoint allocate(Client& c, TimeMs now, const AttrFn& extra = {}) {
    challenge(c, now);
    const auto r = request(c, stun::Method::kAllocate, [&](stun::MessageBuilder& b) {
      b.add_requested_transport(17);
      if (extra) extra(b);
    }, now);
    EXPECT_EQ(r.code(), 0);
    const auto relayed = r.view().xor_address(stun::attr::kXorRelayedAddress);
    EXPECT_TRUE(relayed.has_value());
    return relayed.value_or(Endpoint{});
  }

  Response create_permission(Client& c, const Endpoint& peer, TimeMs now) {
    return request(c, stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
      b.add_xor_address(stun::attr::kXorPeerAddress, peer);
    }, now);
  }
  Response channel_bind(Client& c, uint16_t number, const Endpoint& peer, TimeMs now) {
    return request(c, stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
      b.add_channel_number(number);
      b.add_xor_address(stun::attr::kXorPeerAddress, peer);
    }, now);
  }
  Response refresh(Client& c, std::optional<uint32_t> lifetime, TimeMs now) {
    return request(c, stun::Method::kRefresh, [&](stun::MessageBuilder& b) {
      if (lifetime) b.add_u32(stun::attr::kLifetime, *lifetime);
    }, now);
  }

  /// Delivers `payload` from `peer` at relay `relay` the way relay/net does (headroom/tailroom).
  Output from_peer(RelayId relay, const Endpoint& peer, const std::vector<uint8_t>& payload, TimeMs now) {
    peer_buffer.assign(kPeerHeadroom + payload.size() + kPeerTailroom, 0xEE);
    std::copy(payload.begin(), payload.end(), peer_buffer.begin() + kPeerHeadroom);
    return server->on_peer_packet(relay, peer, peer_buffer, payload.size(), now);
  }

  static AttrFn udp_transport() {
    return [](stun::MessageBuilder& b) { b.add_requested_transport(17); };
  }

  Authenticator auth;
  NonceCodec nonces;
  PeerPolicy policy;
  FakeRelayPorts ports;
  RecordingObserver observer;
  std::unique_ptr<TurnServer> server;
  Output last;
  std::vector<uint8_t> peer_buffer;
};

inline std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

}  // namespace callrelay::core::testing
