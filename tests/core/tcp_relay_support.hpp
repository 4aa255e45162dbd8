// Shared helpers of the RFC 6062 core tests (tcp_connect_test.cpp, tcp_bind_test.cpp).
#pragma once
// FakeRelayPorts records open_tcp, connect_peer, bind_peer and close_peer; relay/net's reports
// are played by calling on_peer_connected, on_peer_connection and on_peer_closed.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {

using stun::Method;
namespace at = stun::attr;

inline constexpr uint8_t kProtocolTcp = 6;
inline constexpr uint8_t kProtocolUdp = 17;
inline const Endpoint kPeer = ep("93.184.216.34:7000");
inline const Endpoint kPeer2 = ep("93.184.216.35:7001");

/// A REST client on a stream connection: the control connection of its allocation.
inline Client stream_client(const Harness& h, Transport t = Transport::kTcp, const char* addr = "198.51.100.7:40000",
                     const std::string& user = "bob") {
  Client c = h.rest_client(addr, user);
  c.tuple.transport = t;
  c.tuple.listener = 1;
  return c;
}

/// Another connection from the client's host (same IP: its nonce is valid there too), as a
/// client opens one for each ConnectionBind.
inline Client data_connection(const Client& control, uint16_t port, uint32_t listener, Transport t = Transport::kTcp) {
  Client d = control;
  d.tuple.transport = t;
  d.tuple.client.port = port;
  d.tuple.listener = listener;
  return d;
}

/// An authenticated Allocate with REQUESTED-TRANSPORT `protocol` (after the 401 round when
/// the client has no nonce yet) and `extra` attributes.
inline Response allocate_with(Harness& h, Client& c, uint8_t protocol, const AttrFn& extra = {}, TimeMs now = kT0) {
  if (c.nonce.empty()) h.challenge(c, now);
  return h.request(c, Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(protocol);
    if (extra) extra(b);
  }, now);
}

/// A TCP allocation; returns its relay as open_tcp returned it.
inline RelayAddress allocate_tcp(Harness& h, Client& c, TimeMs now = kT0) {
  const size_t before = h.ports.tcp_opened.size();
  const auto r = allocate_with(h, c, kProtocolTcp, {}, now);
  EXPECT_EQ(r.code(), 0);
  EXPECT_EQ(h.ports.tcp_opened.size(), before + 1);
  return h.ports.tcp_opened.size() == before + 1 ? h.ports.tcp_opened.back() : RelayAddress{};
}

/// A copy of an output to the client (the server's scratch buffer is reused by the next call).
inline std::optional<Response> response_of(const Output& out) {
  if (out.kind != Output::Kind::kToClient) return std::nullopt;
  return Response{std::vector<uint8_t>(out.data.begin(), out.data.end())};
}

inline uint16_t message_type(const Response& r) {
  return r.bytes.size() >= 2 ? static_cast<uint16_t>((r.bytes[0] << 8) | r.bytes[1]) : 0;
}

inline AttrFn peer_attr(const Endpoint& peer) {
  return [peer](stun::MessageBuilder& b) { b.add_xor_address(at::kXorPeerAddress, peer); };
}

/// Sends a signed Connect for `peer` with transaction id `tid`; the raw output (kNone while
/// relay/net connects).
inline Output send_connect(Harness& h, Client& c, const Endpoint& peer, TimeMs now, const stun::TransactionId& tid) {
  return h.server->on_client_packet(c.tuple, c.build(Method::kConnect, peer_attr(peer), true, tid), now);
}
inline Output send_connect(Harness& h, Client& c, const Endpoint& peer, TimeMs now) {
  return send_connect(h, c, peer, now, c.next_tid());
}

/// A Connect that relay/net accepts to start: kNone, and the connection id it was given.
inline std::optional<ConnectionId> connect_started(Harness& h, Client& c, const Endpoint& peer, TimeMs now) {
  const size_t before = h.ports.connects.size();
  const Output out = send_connect(h, c, peer, now);
  EXPECT_EQ(out.kind, Output::Kind::kNone) << "no answer until the peer connection is made";
  EXPECT_EQ(h.ports.connects.size(), before + 1);
  if (out.kind != Output::Kind::kNone || h.ports.connects.size() != before + 1) return std::nullopt;
  return h.ports.connects.back().cid;
}

/// Connect, then relay/net reports the connection made: the Connect success. Returns the cid.
inline ConnectionId connect_ok(Harness& h, Client& c, const Endpoint& peer, TimeMs now) {
  const auto cid = connect_started(h, c, peer, now);
  if (!cid) return 0;
  const auto r = response_of(h.server->on_peer_connected(*cid, true, now));
  EXPECT_TRUE(r.has_value()) << "Connect answered when the peer connection is made";
  if (!r) return 0;
  EXPECT_EQ(r->code(), 0);
  EXPECT_EQ(r->view().u32(at::kConnectionId), *cid);
  return *cid;
}

inline Response connection_bind(Harness& h, Client& d, std::optional<ConnectionId> cid, TimeMs now, bool sign = true) {
  return h.request(d, Method::kConnectionBind, [&](stun::MessageBuilder& b) {
    if (cid) b.add_u32(at::kConnectionId, *cid);
  }, now, sign);
}

/// relay/net reports a peer connecting to TCP relay `relay`; the ConnectionAttempt (if any).
inline std::optional<Response> peer_connects(Harness& h, RelayId relay, const Endpoint& peer, TimeMs now,
                                      std::optional<ConnectionId>* cid) {
  *cid = 0xDEADBEEF;  // the core must reset it when it refuses
  return response_of(h.server->on_peer_connection(relay, peer, now, cid));
}

inline std::vector<ConnectionId> sorted(std::vector<ConnectionId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace callrelay::core::testing
