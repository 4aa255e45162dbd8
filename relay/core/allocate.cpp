// Allocate (RFC 8656 section 7) and Refresh (RFC 8656 section 8).
#include <openssl/rand.h>

#include "relay/core/server_impl.hpp"

namespace callrelay::core {

namespace {

constexpr uint8_t kProtocolUdp = 17;  // RFC 8656 section 18.8: IANA protocol number

/// RFC 8656 sections 7.2 and 8.2: "If the request contains a LIFETIME attribute, the server
/// computes the minimum of the client's requested lifetime and the server's maximum allowed
/// lifetime. If this computed value is greater than the default lifetime, then the 'desired
/// lifetime' is the computed value. Otherwise, the 'desired lifetime' is the default lifetime."
uint32_t desired_lifetime(const CoreConfig& cfg, std::optional<uint32_t> requested) {
  if (!requested) return cfg.default_lifetime_s;
  const uint32_t capped = std::min(*requested, cfg.max_lifetime_s);
  return std::max(capped, cfg.default_lifetime_s);
}


/// REQUESTED-/ADDITIONAL-ADDRESS-FAMILY as sent: a well-formed attribute with an unknown
/// family earns 440 (RFC 8656 section 7.2), a wrong length 400, so the raw byte is needed.
struct RawFamily {
  std::optional<uint8_t> value;
  bool malformed = false;
};
RawFamily raw_family(const stun::MessageView& msg, uint16_t type) {
  const auto a = msg.find(type);
  if (!a) return {};
  if (a->length != 4) return {std::nullopt, true};
  return {msg.value(*a)[0], false};
}

}  // namespace

uint64_t TurnServer::Impl::new_token() {
  // RFC 8656 section 18.9: the token is opaque to the client; make it unguessable so that no
  // other client can claim a reserved port.
  uint64_t t = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&t), sizeof t) != 1) t = ++indication_counter ^ 0x5bd1e995ULL;
  return t;
}

std::optional<Reservation> TurnServer::Impl::take_reservation(uint64_t token, TimeMs now) {
  for (auto it = reservations.begin(); it != reservations.end(); ++it) {
    if (it->token == token && it->expires > now) {
      Reservation r = *it;
      reservations.erase(it);
      return r;
    }
  }
  return std::nullopt;
}

Output TurnServer::Impl::allocate_success(Request& req, const Allocation& a) {
  // RFC 8656 section 7.2: the success response carries XOR-RELAYED-ADDRESS, LIFETIME,
  // RESERVATION-TOKEN (when a port was reserved) and XOR-MAPPED-ADDRESS.
  return respond(req, 0, {}, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorRelayedAddress, a.info.relayed);
    b.add_u32(stun::attr::kLifetime, a.granted_lifetime_s);
    if (a.reservation_token) b.add_u64(stun::attr::kReservationToken, *a.reservation_token);
    b.add_xor_address(stun::attr::kXorMappedAddress, req.from.client);
  });
}

std::optional<Output> TurnServer::Impl::parse_allocate(Request& req, AllocateParams& out) {
  const auto& msg = req.msg;
  // RFC 8656 section 7.2, step 3: "The server checks if the request contains a
  // REQUESTED-TRANSPORT attribute. If the REQUESTED-TRANSPORT attribute is not included or is
  // malformed, the server rejects the request with a 400 (Bad Request) error. Otherwise, if the
  // attribute indicates an unsupported transport protocol, the server rejects the request with
  // a 442 (Unsupported Transport Protocol) error." (TCP relays arrive with RFC 6062 support.)
  const auto transport = msg.requested_transport();
  if (!transport) return respond_error(req, 400, "Missing REQUESTED-TRANSPORT");
  if (*transport != kProtocolUdp) return respond_error(req, 442, "Unsupported Transport Protocol");

  // Step 4: DONT-FRAGMENT is understood (relay/net may set DF on the relay socket).
  out.dont_fragment = msg.find(stun::attr::kDontFragment).has_value();

  // Step 5: "If the request contains both a RESERVATION-TOKEN and an EVEN-PORT attribute, then
  // the server rejects the request with a 400 (Bad Request) error." Likewise with
  // REQUESTED-ADDRESS-FAMILY (section 7.2, step 7).
  const bool has_token = msg.find(stun::attr::kReservationToken).has_value();
  const bool has_even = msg.find(stun::attr::kEvenPort).has_value();
  const bool has_family = msg.find(stun::attr::kRequestedAddressFamily).has_value();
  if (has_token && (has_even || has_family)) {
    return respond_error(req, 400, "RESERVATION-TOKEN with EVEN-PORT or REQUESTED-ADDRESS-FAMILY");
  }
  out.token = msg.reservation_token();
  if (has_token && !out.token) return respond_error(req, 400, "Malformed RESERVATION-TOKEN");
  // Step 6: EVEN-PORT asks for an even port, and with R set, for port+1 to be reserved.
  const auto even = msg.even_port_reserve();
  if (has_even && !even) return respond_error(req, 400, "Malformed EVEN-PORT");
  out.even = has_even;
  out.reserve_next = even.value_or(false);

  // Step 7: REQUESTED-ADDRESS-FAMILY picks the relayed address family (440 if unsupported);
  // with ADDITIONAL-ADDRESS-FAMILY as well it is a 400. ADDITIONAL-ADDRESS-FAMILY may only ask
  // for IPv6 (400 otherwise); dual allocation is not offered, so the IPv6 half is refused in
  // ADDRESS-ERROR-CODE of the success response (the server "MAY" refuse the second family).
  const RawFamily requested = raw_family(msg, stun::attr::kRequestedAddressFamily);
  const RawFamily additional = raw_family(msg, stun::attr::kAdditionalAddressFamily);
  if (requested.malformed || additional.malformed) return respond_error(req, 400, "Malformed address family");
  if (requested.value && additional.value) {
    return respond_error(req, 400, "REQUESTED-ADDRESS-FAMILY with ADDITIONAL-ADDRESS-FAMILY");
  }
  if (additional.value && *additional.value != static_cast<uint8_t>(Family::kIPv6)) {
    return respond_error(req, 400, "ADDITIONAL-ADDRESS-FAMILY must be IPv6");
  }
  out.refuse_additional_v6 = additional.value.has_value();
  if (requested.value) {
    const uint8_t f = *requested.value;
    if (f != static_cast<uint8_t>(Family::kIPv4) && f != static_cast<uint8_t>(Family::kIPv6)) {
      return respond_error(req, 440, "Address Family not Supported");
    }
    out.family = static_cast<Family>(f);
  }
  if (!ports.supports(out.family)) return respond_error(req, 440, "Address Family not Supported");
  out.lifetime_s = desired_lifetime(cfg, msg.u32(stun::attr::kLifetime));
  return std::nullopt;
}

std::optional<Output> TurnServer::Impl::check_quota(Request& req, const std::string& user_key) {
  // RFC 8656 section 7.2, step 8: "At any point, the server MAY choose to reject the request
  // with a 486 (Allocation Quota Reached) error if it feels the client is trying to exceed some
  // locally defined allocation quota." Quotas are per user (REST user part) and per shard.
  bool over = cfg.max_allocations != 0 && by_tuple.size() >= cfg.max_allocations;
  if (!over && cfg.max_allocations_per_user != 0) {
    const auto it = per_user.find(user_key);
    over = it != per_user.end() && it->second >= cfg.max_allocations_per_user;
  }
  if (!over) return std::nullopt;
  drop(DropReason::kOverQuota);
  return respond_error(req, 486, "Allocation Quota Reached");
}

std::optional<Output> TurnServer::Impl::obtain_relay(Request& req, AllocateParams& p) {
  // RFC 8656 section 7.2, step 5: "If the token is not valid for some reason, the server
  // rejects the request with a 508 (Insufficient Capacity) error."
  if (p.token) {
    auto r = take_reservation(*p.token, req.now);
    if (!r) return respond_error(req, 508, "Insufficient Capacity");
    p.relay = r->relay;
    p.family = r->relay.address.family;
    return std::nullopt;
  }
  // Step 6: "If the server cannot satisfy the request, then the server rejects the request with
  // a 508 (Insufficient Capacity) error." Also when no relay port is free at all.
  auto opened = ports.open(p.family, req.from.server, p.even, p.reserve_next);
  if (!opened || (p.reserve_next && !opened->reserved_next)) {
    if (opened) ports.close(opened->relay.id);
    return respond_error(req, 508, "Insufficient Capacity");
  }
  p.relay = opened->relay;
  if (opened->reserved_next) {
    // Step 6, R bit set: port+1 is reserved for a later Allocate with the token (30 s).
    const Reservation r{new_token(), *opened->reserved_next, req.now + ms_from_seconds(cfg.reservation_lifetime_s)};
    reservations.push_back(r);
    note_deadline(r.expires);
    p.new_reservation = r.token;
  }
  return std::nullopt;
}

Output TurnServer::Impl::handle_allocate(Request& req) {
  const auto& msg = req.msg;
  // RFC 8656 section 7.2, step 1: "The server MUST require that the request be authenticated."
  Credential cred;
  if (auto rejected = authenticate(req, cred)) return *rejected;
  if (auto unknown = check_unknown_attributes(req)) return *unknown;
  const std::string username(*msg.string(stun::attr::kUsername));

  // Step 2: "The server checks if the 5-tuple is currently in use by an existing allocation.
  // If yes, the server rejects the request with a 437 (Allocation Mismatch) error." A
  // retransmission of the request that created it (same transaction ID) is not a new request:
  // it gets the original success response again (RFC 8489 section 6.3.1, retransmissions).
  if (Allocation* existing = find_live(req.from, req.now)) {
    if (existing->allocate_tid == msg.transaction_id() && existing->info.username == username) {
      return allocate_success(req, *existing);
    }
    return respond_error(req, 437, "Allocation Mismatch");
  }
  AllocateParams p;
  if (auto bad = parse_allocate(req, p)) return *bad;
  if (auto over = check_quota(req, cred.user_id.empty() ? username : cred.user_id)) return *over;
  if (auto no_port = obtain_relay(req, p)) return *no_port;

  auto a = std::make_unique<Allocation>();
  a->info.id = next_allocation_id++;
  a->info.username = username;
  a->info.user_id = cred.user_id;
  a->info.realm = auth.realm();
  a->info.client = req.from;
  a->info.relayed = p.relay.address;
  a->info.started = req.now;
  a->info.secret_index = cred.secret_index;
  a->relay = p.relay.id;
  a->family = p.family;
  a->expires = req.now + ms_from_seconds(p.lifetime_s);
  a->granted_lifetime_s = p.lifetime_s;
  a->allocate_tid = msg.transaction_id();
  a->reservation_token = p.new_reservation;
  a->dont_fragment = p.dont_fragment;
  Allocation& created = add_allocation(std::move(a));
  if (!p.refuse_additional_v6) return allocate_success(req, created);
  return respond(req, 0, {}, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorRelayedAddress, created.info.relayed);
    b.add_u32(stun::attr::kLifetime, created.granted_lifetime_s);
    if (created.reservation_token) b.add_u64(stun::attr::kReservationToken, *created.reservation_token);
    b.add_xor_address(stun::attr::kXorMappedAddress, req.from.client);
    // RFC 8656 section 18.13 ADDRESS-ERROR-CODE: family, 13 reserved bits, class, number, reason.
    constexpr std::string_view kReason = "Address Family not Supported";
    std::array<uint8_t, 4 + kReason.size()> v{static_cast<uint8_t>(Family::kIPv6), 0, 4, 40};
    std::copy(kReason.begin(), kReason.end(), v.begin() + 4);
    b.add_bytes(stun::attr::kAddressErrorCode, v);
  });
}

Output TurnServer::Impl::handle_refresh(Request& req) {
  Output reply;
  Allocation* a = authenticate_for_allocation(req, &reply);
  if (a == nullptr) return reply;
  // RFC 8656 section 8.2: "If the server receives a Refresh Request with a
  // REQUESTED-ADDRESS-FAMILY attribute and the attribute value does not match the address
  // family of the allocation, the server MUST reply with a 443 (Peer Address Family Mismatch)".
  bool bad = false;
  const auto family = req.msg.family_attr(stun::attr::kRequestedAddressFamily, &bad);
  if (bad) return respond_error(req, 400, "Malformed REQUESTED-ADDRESS-FAMILY");
  if (family && *family != static_cast<uint8_t>(a->family)) {
    return respond_error(req, 443, "Peer Address Family Mismatch");
  }
  // "If the 'desired lifetime' is zero, then the request succeeds and the allocation is deleted."
  const auto requested = req.msg.u32(stun::attr::kLifetime);
  if (requested && *requested == 0) {
    end_allocation(req.from, EndReason::kRefreshZero, req.now);
    return respond(req, 0, {}, [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 0); });
  }
  // "If the 'desired lifetime' is non-zero, then the request succeeds and the allocation's
  // time-to-expiry is set to the 'desired lifetime'."
  const uint32_t lifetime = desired_lifetime(cfg, requested);
  a->expires = req.now + ms_from_seconds(lifetime);
  note_deadline(a->expires);  // a refresh may shorten the lifetime
  return respond(req, 0, {}, [&](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, lifetime); });
}

}  // namespace callrelay::core
