// TurnServer: entry points, demultiplexing, the allocation lifecycle and housekeeping.
// The per-method handlers live in request.cpp, allocate.cpp, permissions.cpp and data_path.cpp.
#include "relay/core/turn_server.hpp"

#include "base/limits.hpp"
#include "relay/core/server_impl.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::core {

TurnServer::Impl::Impl(CoreConfig c, const Authenticator& a, const NonceCodec& n, const PeerPolicy& p,
                       RelayPorts& r, Observer* o, UserLimits* u)
    : cfg(std::move(c)),
      auth(a),
      nonces(n),
      policy(p),
      ports(r),
      observer(o),
      own_users(u == nullptr ? std::make_unique<UserLimits>(cfg.bandwidth) : nullptr),
      users(u == nullptr ? *own_users : *u) {}

TurnServer::TurnServer(CoreConfig cfg, const Authenticator& auth, const NonceCodec& nonces,
                       const PeerPolicy& policy, RelayPorts& ports, Observer* observer, UserLimits* users)
    : impl_(std::make_unique<Impl>(std::move(cfg), auth, nonces, policy, ports, observer, users)) {}

TurnServer::~TurnServer() = default;

Output TurnServer::on_client_packet(const FiveTuple& from, std::span<const uint8_t> bytes, TimeMs now,
                                    int64_t now_us) {
  // RFC 8656 section 12: the first two bits tell STUN (0b00) from ChannelData (0b01).
  if (stun::looks_like_channel_data(bytes)) return impl_->handle_channel_data(from, bytes, now, now_us);
  if (!stun::looks_like_stun(bytes)) {
    impl_->drop(DropReason::kMalformed);
    return {};
  }
  stun::ParseError err{};
  const auto msg = stun::MessageView::parse(bytes, &err);
  if (!msg) return impl_->budget_answer(from, bytes.size(), impl_->on_malformed(from, bytes, err, now), now);
  switch (msg->cls()) {
    case stun::Class::kRequest:
      return impl_->budget_answer(from, bytes.size(), impl_->on_request(from, *msg, now), now);
    case stun::Class::kIndication:
      if (msg->method() == stun::Method::kSend) return impl_->checked_send(from, *msg, now, now_us);
      // RFC 8489 section 6.3.2: other indications (Binding keepalives) need no answer.
      return {};
    default:
      // A server sends no requests, so responses from clients are stray: drop them.
      impl_->drop(DropReason::kMalformed);
      return {};
  }
}

Output TurnServer::on_peer_packet(RelayId relay, const Endpoint& peer, std::span<uint8_t> buffer, size_t len,
                                  TimeMs now, int64_t now_us) {
  return impl_->handle_peer(relay, peer, buffer, len, now, now_us);
}

void TurnServer::on_client_closed(const FiveTuple& from, TimeMs now) {
  impl_->end_allocation(from, EndReason::kTransportClosed, now);
}

Output TurnServer::on_peer_connected(ConnectionId cid, bool ok, TimeMs now) {
  return impl_->on_peer_connected(cid, ok, now);
}

Output TurnServer::on_peer_connection(RelayId relay, const Endpoint& peer, TimeMs now,
                                      std::optional<ConnectionId>* cid) {
  return impl_->on_peer_connection(relay, peer, now, cid);
}

void TurnServer::on_peer_closed(ConnectionId cid, TimeMs /*now*/) { impl_->on_peer_closed(cid); }

void TurnServer::end_call(std::string_view call_id, TimeMs now) {
  Impl& s = *impl_;
  if (const auto it = s.by_call.find(call_id); it != s.by_call.end()) {
    // end_allocation shrinks (and finally erases) this entry: work on a copy of the tuples.
    const std::vector<FiveTuple> tuples = it->second;
    for (const FiveTuple& t : tuples) s.end_allocation(t, EndReason::kCallEnded, now);
  }
  // Every allocation of the call is gone: nothing points at its payload map any more.
  if (const auto p = s.payloads_by_call.find(call_id); p != s.payloads_by_call.end()) {
    s.payloads_by_call.erase(p);
  }
}

size_t TurnServer::call_count() const { return impl_->by_call.size(); }

void TurnServer::set_payload_types(std::string_view call_id,
                                   std::shared_ptr<const media::PayloadMap> map, TimeMs now) {
  impl_->set_payload_types(call_id, std::move(map), now);
}

size_t TurnServer::payload_map_count() const { return impl_->payloads_by_call.size(); }

size_t TurnServer::allocation_count() const { return impl_->by_tuple.size(); }

bool TurnServer::has_allocation(const FiveTuple& tuple) const { return impl_->by_tuple.contains(tuple); }

bool TurnServer::permits(RelayId relay, const Endpoint& peer, TimeMs now) const {
  const Allocation* a = relay < impl_->by_relay.size() ? impl_->by_relay[relay] : nullptr;
  if (a == nullptr) return false;
  const FamilyRelay* own = a->relay_for(peer.family, now);
  return own != nullptr && own->relay.id == relay && a->permitted(peer, now);
}

void TurnServer::note_drop(DropReason why) const { impl_->drop(why); }

void TurnServer::set_limit_counters(base::LimitCounters* counters) { impl_->limits = counters; }

void TurnServer::visit(void (*fn)(const AllocationInfo&, void*), void* ctx) const {
  for (const auto& a : impl_->by_tuple) fn(a->info, ctx);
}

// ---------------------------------------------------------------------------------------------

void TurnServer::Impl::drop(DropReason why) const {
  if (observer != nullptr) observer->on_drop(why);
}

Output TurnServer::Impl::budget_answer(const FiveTuple& from, size_t request_bytes, Output out, TimeMs now) {
  // Over TCP and TLS the handshake proved the source address: nothing is reflected to a
  // spoofed victim there (relay/net limits those connections instead).
  if (from.transport != Transport::kUdp || !reflection.enabled()) return out;
  const size_t slot = reflection.credit(from.client, request_bytes, now);
  if (out.kind != Output::Kind::kToClient || answered_signed) return out;
  const bool challenge = answered_code == 401 || answered_code == 438;
  using Guard = ReflectionGuard;
  Guard::Refusal why = Guard::Refusal::kNone;
  if (reflection.allow(slot, out.data.size(), challenge ? Guard::Answer::kChallenge : Guard::Answer::kUnsigned,
                      now, &why)) {
    return out;
  }
  if (limits != nullptr) {
    limits->hit(why == Guard::Refusal::kChallengeRate ? base::Limit::kChallengeRate
                                                      : base::Limit::kUnauthReflection);
  }
  return {};
}

Output TurnServer::Impl::on_request(const FiveTuple& from, const stun::MessageView& msg, TimeMs now) {
  answered_code = 0;
  answered_signed = false;  // until a handler builds a signed response
  Request req{from, msg, now, false, std::nullopt};
  req.fingerprint = msg.find(stun::attr::kFingerprint).has_value();
  if (auto malformed = check_attribute_formats(req)) return *malformed;  // validate.cpp
  switch (msg.method()) {
    case stun::Method::kBinding: return handle_binding(req);
    case stun::Method::kAllocate: return draining ? refuse_allocate(req) : handle_allocate(req);
    case stun::Method::kRefresh: return handle_refresh(req);
    case stun::Method::kCreatePermission: return handle_create_permission(req);
    case stun::Method::kChannelBind: return handle_channel_bind(req);
    case stun::Method::kConnect: return handle_connect(req);
    case stun::Method::kConnectionBind: return handle_connection_bind(req);
    default:
      // RFC 8489 section 6.3.1: a request for a method the server does not implement gets 400.
      return respond_error(req, 400, "Unsupported method");
  }
}

Output TurnServer::Impl::on_malformed(const FiveTuple& from, std::span<const uint8_t> bytes, stun::ParseError e,
                                      TimeMs now) {
  drop(DropReason::kMalformed);
  // RFC 8489 section 6.3: a message with a bad FINGERPRINT (or that is not STUN at all) is
  // silently discarded. A request whose header is sound but whose attributes are broken is
  // answered with 400 so that a buggy client learns why.
  const bool header_ok = bytes.size() >= stun::kHeaderSize && e != stun::ParseError::kNotStun &&
                         e != stun::ParseError::kBadFingerprint && e != stun::ParseError::kTooShort &&
                         e != stun::ParseError::kBadLength;
  if (!header_ok) return {};
  const auto type = static_cast<uint16_t>((bytes[0] << 8) | bytes[1]);
  const bool is_request = (type & 0x0110) == 0;
  if (!is_request) return {};
  const auto method = static_cast<uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
  stun::TransactionId tid{};
  std::copy(bytes.begin() + 8, bytes.begin() + 20, tid.begin());
  stun::MessageBuilder b(scratch, static_cast<stun::Method>(method), stun::Class::kError, tid);
  b.add_error(400, "Malformed attributes");
  if (!cfg.software.empty()) b.add_string(stun::attr::kSoftware, cfg.software);
  answered_code = 400;
  answered_signed = false;
  const size_t n = b.finish();
  if (n == 0) return {};
  if (observer != nullptr) observer->on_request(static_cast<stun::Method>(method), from.transport, 400);
  (void)now;
  Output out;
  out.kind = Output::Kind::kToClient;
  out.client = from;
  out.data = std::span<const uint8_t>(scratch.data(), n);
  return out;
}

const std::string& TurnServer::Impl::quota_key(const AllocationInfo& info) {
  return info.user_id.empty() ? info.username : info.user_id;
}

Allocation* TurnServer::Impl::find_live(const FiveTuple& tuple, TimeMs now) {
  Allocation* const a = by_tuple.find(tuple);
  if (a == nullptr) return nullptr;
  if (a->expires <= now) {
    end_allocation(tuple, EndReason::kExpired, now);
    return nullptr;
  }
  return a;
}

Allocation& TurnServer::Impl::add_allocation(std::unique_ptr<Allocation> a) {
  Allocation& ref = *a;
  index_relays(*a);
  if (!a->info.call_id.empty()) {
    by_call[a->info.call_id].push_back(a->info.client);
    attach_payloads(*a);
  }
  schedule(*a, a->expires);
  if (cfg.strict_expiry) track_credential(*a);
  by_tuple.insert(std::move(a));
  if (observer != nullptr) observer->on_allocation_created(ref.info);
  return ref;
}

void TurnServer::Impl::end_allocation(const FiveTuple& tuple, EndReason why, TimeMs now) {
  std::unique_ptr<Allocation> a = by_tuple.take(tuple);
  if (!a) return;
  allocation_timers.remove(*a);
  // The allocation's quota slot is given back when `a` goes (its BandwidthGate holds it).
  unindex_call(*a, now);
  // RFC 6062 section 5.5: "If the allocation associated with a data connection expires, the
  // data connection MUST be closed."
  if (a->tcp) close_tcp_peers(tuple);
  // RFC 8656 section 3.2: when an allocation ends its relayed transport address is released.
  release_relays(*a);
  if (observer != nullptr) observer->on_allocation_ended(a->info, why, now);
}

void TurnServer::Impl::unindex_call(const Allocation& a, TimeMs now) {
  if (a.info.call_id.empty()) return;
  const auto it = by_call.find(a.info.call_id);
  if (it == by_call.end()) return;
  std::erase(it->second, a.info.client);
  if (!it->second.empty()) return;
  by_call.erase(it);
  if (const auto p = payloads_by_call.find(a.info.call_id); p != payloads_by_call.end()) {
    idle_payloads(p->second, a.info.call_id, now);
  }
}

}  // namespace callrelay::core
