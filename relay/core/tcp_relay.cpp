// RFC 6062 TCP allocations: Connect, ConnectionBind, ConnectionAttempt and the peer data
// connections' lifecycle. The core decides and keeps the state; relay/net makes the
// connections and splices the bytes (RelayPorts::connect_peer, bind_peer, close_peer).
#include <array>
#include <cstring>

#include "relay/core/server_impl.hpp"

namespace callrelay::core {

std::optional<ConnectionId> TurnServer::Impl::new_connection_id() {
  // RFC 6062 section 6.2.1: the value "uniquely identifies a peer data connection". Random
  // rather than sequential so that one client cannot guess another's (ConnectionBind is
  // authenticated too, and must come with the allocation's own username). A failing source
  // gives none: nothing predictable is ever handed out.
  for (;;) {
    std::array<uint8_t, sizeof(ConnectionId)> bytes{};
    if (!random(bytes.data(), bytes.size())) return std::nullopt;
    ConnectionId id = 0;
    std::memcpy(&id, bytes.data(), sizeof id);
    if (id != 0 && tcp_peers.count(id) == 0) return id;
  }
}

void TurnServer::Impl::add_tcp_peer(ConnectionId cid, const TcpPeer& p) {
  tcp_peers.emplace(cid, p);
  tcp_peers_by_control[p.control].push_back(cid);
  if (p.state == TcpPeer::State::kPendingBind) bind_timers.push(p.bind_deadline, cid);
}

void TurnServer::Impl::erase_tcp_peer(ConnectionId cid) {
  const auto it = tcp_peers.find(cid);
  if (it == tcp_peers.end()) return;
  const auto idx = tcp_peers_by_control.find(it->second.control);
  if (idx != tcp_peers_by_control.end()) {
    std::erase(idx->second, cid);
    if (idx->second.empty()) tcp_peers_by_control.erase(idx);
  }
  tcp_peers.erase(it);
}

size_t TurnServer::Impl::tcp_peer_count(const FiveTuple& control, const Endpoint* peer,
                                        bool* same_peer) const {
  const auto idx = tcp_peers_by_control.find(control);
  if (idx == tcp_peers_by_control.end()) return 0;
  if (peer != nullptr) {
    for (const ConnectionId cid : idx->second) {
      if (const auto it = tcp_peers.find(cid); it != tcp_peers.end() && it->second.peer == *peer) {
        *same_peer = true;
      }
    }
  }
  return idx->second.size();
}

void TurnServer::Impl::close_tcp_peers(FiveTuple control, std::optional<Family> family) {
  const auto idx = tcp_peers_by_control.find(control);
  if (idx == tcp_peers_by_control.end()) return;
  // erase_tcp_peer edits the index entry: work on a copy (at most the per-allocation limit).
  const std::vector<ConnectionId> cids = idx->second;
  for (const ConnectionId cid : cids) {
    const auto it = tcp_peers.find(cid);
    if (it == tcp_peers.end() || (family && it->second.peer.family != *family)) continue;
    ports.close_peer(cid);
    erase_tcp_peer(cid);
  }
}

Output TurnServer::Impl::handle_connect(Request& req) {
  // RFC 6062 section 5.2: "If the request is received on a TCP connection for which no
  // allocation exists, the server MUST return a 437 (Allocation Mismatch) error."
  Output reply;
  Allocation* a = authenticate_for_allocation(req, &reply);
  if (a == nullptr) return reply;
  if (!a->tcp) return respond_error(req, 400, "Connect on a UDP allocation");
  // "If the request does not contain an XOR-PEER-ADDRESS attribute, or if such attribute is
  // invalid, the server MUST return a 400 (Bad Request) error."
  const auto attr = req.msg.find(stun::attr::kXorPeerAddress);
  const auto peer = attr ? decode_xor_address(req.msg, *attr) : std::nullopt;
  if (!peer) return respond_error(req, 400, "Missing or malformed XOR-PEER-ADDRESS");
  const FamilyRelay* relay = a->relay_for(peer->family, req.now);
  if (relay == nullptr) {
    if (observer != nullptr) observer->on_peer_denied(PeerDenyReason::kFamilyMismatch);
    return respond_error(req, 443, "Peer Address Family Mismatch");
  }
  // The same policy as for permissions (RFC 8656 section 21.1.4): no connections into the
  // server's own networks unless the operator allows them.
  if (const auto denied = policy.check(*peer)) {
    if (observer != nullptr) observer->on_peer_denied(*denied);
    return respond_error(req, 403, "Forbidden");
  }
  // "If the server is currently processing a Connect request for this allocation with the
  // same XOR-PEER-ADDRESS, it MUST return a 446 (Connection Already Exists) error. If the
  // server has already successfully processed a Connect request for this allocation with the
  // same XOR-PEER-ADDRESS, and the resulting client and peer data connections are either
  // pending or active, it MUST return a 446 (Connection Already Exists) error."
  bool same_peer = false;
  const size_t open = tcp_peer_count(req.from, &*peer, &same_peer);
  if (same_peer) return respond_error(req, 446, "Connection Already Exists");
  // "If the new connection would exceed the capacity or violate the policy of the server" it
  // is refused; a bounded number per allocation keeps one client from holding every socket.
  if (open >= cfg.max_tcp_connections_per_allocation) return respond_error(req, 508, "Insufficient Capacity");

  // "Otherwise, the server MUST initiate an outgoing TCP connection. The local endpoint is the
  // relayed transport address associated with the allocation. The remote endpoint is the one
  // indicated by the XOR-PEER-ADDRESS attribute. If the connection attempt fails or times out,
  // the server MUST return a 447 (Connection Timeout or Failure) error. The timeout value MUST
  // be at least 30 seconds." The answer waits for relay/net: on_peer_connected.
  const auto new_cid = new_connection_id();
  if (!new_cid) return respond_error(req, 500, "Server Error: no random source for a CONNECTION-ID");
  const ConnectionId cid = *new_cid;
  if (!ports.connect_peer(relay->relay.id, cid, *peer)) {
    return respond_error(req, 447, "Connection Timeout or Failure");
  }
  TcpPeer p;
  p.control = req.from;
  p.peer = *peer;
  p.state = TcpPeer::State::kConnecting;
  p.connect_tid = req.msg.transaction_id();
  p.connect_key = req.key;
  p.connect_fingerprint = req.fingerprint;
  add_tcp_peer(cid, p);
  return {};
}

Output TurnServer::Impl::on_peer_connected(ConnectionId cid, bool ok, TimeMs now) {
  const auto it = tcp_peers.find(cid);
  if (it == tcp_peers.end() || it->second.state != TcpPeer::State::kConnecting) {
    if (ok) ports.close_peer(cid);  // its allocation ended meanwhile
    return {};
  }
  // An allocation past its lifetime ends here, closing its peer connections, this one too.
  const FiveTuple control = it->second.control;
  if (find_live(control, now) == nullptr) return {};
  TcpPeer& p = it->second;
  if (!ok) {
    const TcpPeer failed = p;
    erase_tcp_peer(cid);
    return respond_to(failed.control, stun::Method::kConnect, failed.connect_tid, failed.connect_key,
                      failed.connect_fingerprint, 447, "Connection Timeout or Failure",
                      [](stun::MessageBuilder&) {});
  }
  // "If the connection is successful, it is now called a peer data connection. The server
  // MUST buffer any data received from the client [peer]" (relay/net does) and answers with
  // the CONNECTION-ID that the ConnectionBind will name, within 30 seconds.
  p.state = TcpPeer::State::kPendingBind;
  p.bind_deadline = now + kConnectionBindTimeoutMs;
  bind_timers.push(p.bind_deadline, cid);
  return respond_to(p.control, stun::Method::kConnect, p.connect_tid, p.connect_key, p.connect_fingerprint, 0, {},
                    [cid](stun::MessageBuilder& b) { b.add_u32(stun::attr::kConnectionId, cid); });
}

Output TurnServer::Impl::on_peer_connection(RelayId relay, const Endpoint& peer, TimeMs now,
                                            std::optional<ConnectionId>* cid) {
  cid->reset();
  Allocation* a = relay < by_relay.size() ? by_relay[relay] : nullptr;
  if (a == nullptr || !a->tcp || a->relay_for(peer.family, now) == nullptr) return {};
  // RFC 6062 section 5.3: "If there is no permission installed for the IP address of the
  // peer, the server MUST immediately close the connection."
  if (!a->permitted(peer, now)) {
    drop(DropReason::kNoPermission);
    return {};
  }
  bool same_peer = false;
  const FiveTuple control = a->info.client;
  if (tcp_peer_count(control, &peer, &same_peer) >= cfg.max_tcp_connections_per_allocation || same_peer) {
    drop(DropReason::kOverQuota);
    return {};
  }
  // "Otherwise, the server sends a ConnectionAttempt indication to the client over the control
  // connection. The indication MUST include an XOR-PEER-ADDRESS attribute containing the
  // peer's transport address, as well as a CONNECTION-ID attribute uniquely identifying the
  // peer data connection. If no ConnectionBind request associated with this peer data
  // connection is received after 30 seconds, the peer data connection MUST be closed."
  // The indication's transaction ID is random too (RFC 8489 section 6: it must be
  // unpredictable); without randomness the peer's connection is refused.
  stun::TransactionId tid{};
  const auto new_id = new_connection_id();
  if (!new_id || !random(tid.data(), tid.size())) return {};
  const ConnectionId id = *new_id;
  TcpPeer p;
  p.control = control;
  p.peer = peer;
  p.state = TcpPeer::State::kPendingBind;
  p.bind_deadline = now + kConnectionBindTimeoutMs;
  add_tcp_peer(id, p);
  *cid = id;

  stun::MessageBuilder b(scratch, stun::Method::kConnectionAttempt, stun::Class::kIndication, tid);
  b.add_u32(stun::attr::kConnectionId, id);
  b.add_xor_address(stun::attr::kXorPeerAddress, peer);
  if (!cfg.software.empty()) b.add_string(stun::attr::kSoftware, cfg.software);
  const size_t n = b.finish();
  Output out;
  if (n == 0) return out;
  out.kind = Output::Kind::kToClient;
  out.client = control;
  out.data = std::span<const uint8_t>(scratch.data(), n);
  return out;
}

void TurnServer::Impl::on_peer_closed(ConnectionId cid) { erase_tcp_peer(cid); }

Output TurnServer::Impl::handle_connection_bind(Request& req) {
  // RFC 6062 section 5.4: "If the client connection transport is not TCP or TLS, the server
  // MUST return a 400 (Bad Request) error."
  if (req.from.transport == Transport::kUdp) return respond_error(req, 400, "ConnectionBind needs TCP or TLS");
  // RFC 6062 section 4.4: the client authenticates "using the same method and credentials as
  // for the control connection".
  Credential cred;
  if (auto rejected = authenticate(req, cred)) return *rejected;
  if (auto unknown = check_unknown_attributes(req)) return *unknown;
  // A connection that carries an allocation is a control connection; it cannot also carry data.
  if (find_live(req.from, req.now) != nullptr) return respond_error(req, 400, "ConnectionBind on a control connection");
  // "If the request does not contain the CONNECTION-ID attribute, or if this attribute does
  // not refer to an existing pending connection, the server MUST return a 400 (Bad Request)
  // error."
  const auto cid = req.msg.u32(stun::attr::kConnectionId);
  const auto it = cid ? tcp_peers.find(*cid) : tcp_peers.end();
  if (it == tcp_peers.end() || it->second.state != TcpPeer::State::kPendingBind) {
    return respond_error(req, 400, "Unknown CONNECTION-ID");
  }
  // Past the 30 s the connection is gone, even if the timer has not run yet to close it.
  if (it->second.bind_deadline <= req.now) {
    ports.close_peer(it->first);
    erase_tcp_peer(it->first);
    return respond_error(req, 400, "Unknown CONNECTION-ID");
  }
  const FiveTuple control = it->second.control;
  Allocation* a = find_live(control, req.now);
  if (a == nullptr) return respond_error(req, 400, "Unknown CONNECTION-ID");  // ended meanwhile
  // The connection belongs to the allocation's user: another user's credentials get 441, as a
  // request on someone else's allocation would (RFC 8656 section 5).
  if (cred.username != a->info.username) return respond_error(req, 441, "Wrong Credentials");
  // "Otherwise, the client connection is now called a client data connection. Data received
  // on it MUST be sent as-is to the associated peer data connection. Data received on the
  // associated peer data connection MUST be sent as-is on this client data connection. This
  // includes data that was received after the associated Connect or request was successfully
  // processed and before this ConnectionBind request was received."
  it->second.state = TcpPeer::State::kBound;
  ports.bind_peer_paced(*cid, req.from, a->info.traffic, a->gate);
  return respond(req, 0, {}, [](stun::MessageBuilder&) {});
}

}  // namespace callrelay::core
