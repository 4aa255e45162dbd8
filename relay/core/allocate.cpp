// Allocate (RFC 8656 section 7) and Refresh (RFC 8656 section 8).
#include <atomic>
#include <cstring>

#include "relay/core/server_impl.hpp"

namespace callrelay::core {

namespace {

/// Allocation ids are unique per process (observers key on them across shards). Allocate is
/// the control path, so one shared atomic costs nothing on relayed packets.
uint64_t next_allocation_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

constexpr uint8_t kProtocolUdp = 17;  // RFC 8656 section 18.8: IANA protocol number
constexpr uint8_t kProtocolTcp = 6;   // RFC 6062 section 6.1

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

std::optional<uint64_t> TurnServer::Impl::new_token() {
  // RFC 8656 section 18.9: the token is opaque to the client; make it unguessable so that no
  // other client can claim a reserved port. Without randomness there is no token at all.
  std::array<uint8_t, sizeof(uint64_t)> bytes{};
  if (!random(bytes.data(), bytes.size())) return std::nullopt;
  uint64_t t = 0;
  std::memcpy(&t, bytes.data(), sizeof t);
  return t;
}

std::optional<Reservation> TurnServer::Impl::take_reservation(uint64_t token, TimeMs now) {
  // One past its 30 s is not handed out even before the timer closes it.
  const auto it = reservations.find(token);
  if (it == reservations.end() || it->second.expires <= now) return std::nullopt;
  Reservation r = it->second;
  reservations.erase(it);
  return r;
}

Output TurnServer::Impl::allocate_success(Request& req, const Allocation& a) {
  // RFC 8656 section 7.2: the success response carries XOR-RELAYED-ADDRESS (two of them for a
  // dual allocation: IPv4 first, then IPv6), LIFETIME, RESERVATION-TOKEN (when a port was
  // reserved), XOR-MAPPED-ADDRESS, and ADDRESS-ERROR-CODE when one family of a dual allocation
  // could not be allocated.
  return respond(req, 0, {}, [&](stun::MessageBuilder& b) {
    for (const auto& r : a.relays) {
      if (r.open) b.add_xor_address(stun::attr::kXorRelayedAddress, r.relay.address);
    }
    b.add_u32(stun::attr::kLifetime, a.granted_lifetime_s);
    if (a.reservation_token) b.add_u64(stun::attr::kReservationToken, *a.reservation_token);
    b.add_xor_address(stun::attr::kXorMappedAddress, req.from.client);
    if (a.address_error) {
      // RFC 8656 section 18.13 ADDRESS-ERROR-CODE: family (8 bits), 13 reserved bits, class
      // (3 bits), number (8 bits), then the reason phrase.
      const uint16_t code = a.address_error->code;
      const std::string_view reason = code == 440 ? "Address Family not Supported" : "Insufficient Capacity";
      std::array<uint8_t, 4 + 32> v{static_cast<uint8_t>(a.address_error->family), 0,
                                    static_cast<uint8_t>(code / 100), static_cast<uint8_t>(code % 100)};
      std::copy(reason.begin(), reason.end(), v.begin() + 4);
      b.add_bytes(stun::attr::kAddressErrorCode, std::span<const uint8_t>(v.data(), 4 + reason.size()));
    }
  });
}

std::optional<Output> TurnServer::Impl::parse_allocate(Request& req, AllocateParams& out) {
  const auto& msg = req.msg;
  // RFC 8656 section 7.2, step 3: "The server checks if the request contains a
  // REQUESTED-TRANSPORT attribute. If the REQUESTED-TRANSPORT attribute is not included or is
  // malformed, the server rejects the request with a 400 (Bad Request) error. Otherwise, if the
  // attribute indicates an unsupported transport protocol, the server rejects the request with
  // a 442 (Unsupported Transport Protocol) error."
  const auto transport = msg.requested_transport();
  if (!transport) return respond_error(req, 400, "Missing REQUESTED-TRANSPORT");
  out.tcp = *transport == kProtocolTcp && cfg.tcp_relay;
  if (*transport != kProtocolUdp && !out.tcp) return respond_error(req, 442, "Unsupported Transport Protocol");
  if (out.tcp) {
    // RFC 6062 section 5.1: "If the client connection transport is not TCP or TLS, the server
    // MUST reject the request with a 400 (Bad Request) error." and "If the request contains
    // the DONT-FRAGMENT, EVEN-PORT, or RESERVATION-TOKEN attribute, the server MUST reject the
    // request with a 400 (Bad Request) error."
    if (req.from.transport == Transport::kUdp) {
      return respond_error(req, 400, "TCP allocations need a TCP or TLS connection");
    }
    if (msg.find(stun::attr::kDontFragment) || msg.find(stun::attr::kEvenPort) ||
        msg.find(stun::attr::kReservationToken)) {
      return respond_error(req, 400, "DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN in a TCP Allocate");
    }
  }

  // Step 4: DONT-FRAGMENT is understood (relay/net may set DF on the relay socket).
  out.dont_fragment = msg.find(stun::attr::kDontFragment).has_value();

  // Step 5: "The server checks if the request contains a RESERVATION-TOKEN attribute. If yes,
  // and the request also contains an EVEN-PORT or REQUESTED-ADDRESS-FAMILY or
  // ADDITIONAL-ADDRESS-FAMILY attribute, the server rejects the request with a 400 (Bad
  // Request) error."
  const bool has_token = msg.find(stun::attr::kReservationToken).has_value();
  const bool has_even = msg.find(stun::attr::kEvenPort).has_value();
  const bool has_family = msg.find(stun::attr::kRequestedAddressFamily).has_value();
  const bool has_additional = msg.find(stun::attr::kAdditionalAddressFamily).has_value();
  if (has_token && (has_even || has_family || has_additional)) {
    return respond_error(req, 400, "RESERVATION-TOKEN with EVEN-PORT or an address family");
  }
  out.token = msg.reservation_token();
  if (has_token && !out.token) return respond_error(req, 400, "Malformed RESERVATION-TOKEN");
  // Step 6: EVEN-PORT asks for an even port, and with R set, for port+1 to be reserved. "If
  // yes [R bit set], and the request also contains an ADDITIONAL-ADDRESS-FAMILY attribute, the
  // server rejects the request with a 400 (Bad Request) error."
  const auto even = msg.even_port_reserve();
  if (has_even && !even) return respond_error(req, 400, "Malformed EVEN-PORT");
  out.even = has_even;
  out.reserve_next = even.value_or(false);
  if (out.reserve_next && has_additional) {
    return respond_error(req, 400, "EVEN-PORT R=1 with ADDITIONAL-ADDRESS-FAMILY");
  }
  if (auto bad = parse_families(req, out)) return bad;
  out.lifetime_s = desired_lifetime(cfg, msg.u32(stun::attr::kLifetime));
  return std::nullopt;
}

std::optional<Output> TurnServer::Impl::parse_families(Request& req, AllocateParams& out) {
  const RawFamily requested = raw_family(req.msg, stun::attr::kRequestedAddressFamily);
  const RawFamily additional = raw_family(req.msg, stun::attr::kAdditionalAddressFamily);
  if (requested.malformed || additional.malformed) return respond_error(req, 400, "Malformed address family");
  // Step 7: "The server checks if the request contains both REQUESTED-ADDRESS-FAMILY and
  // ADDITIONAL-ADDRESS-FAMILY attributes. If yes, then the server rejects the request with a
  // 400 (Bad Request) error."
  if (requested.value && additional.value) {
    return respond_error(req, 400, "REQUESTED-ADDRESS-FAMILY with ADDITIONAL-ADDRESS-FAMILY");
  }
  constexpr auto kV4 = static_cast<uint8_t>(Family::kIPv4);
  constexpr auto kV6 = static_cast<uint8_t>(Family::kIPv6);
  if (!additional.value) {
    // Step 8: "If the server does not support the address family requested by the client in
    // REQUESTED-ADDRESS-FAMILY, or if the allocation of the requested address family is
    // disabled by local policy, it MUST generate an Allocate error response, and it MUST
    // include an ERROR-CODE attribute with the 440 (Address Family not Supported) response
    // code. If the REQUESTED-ADDRESS-FAMILY attribute is absent and the server does not support
    // the IPv4 address family, the server MUST include an ERROR-CODE attribute with the 440
    // ... If the REQUESTED-ADDRESS-FAMILY attribute is absent and the server supports the IPv4
    // address family, the server MUST allocate an IPv4 relayed transport address".
    const uint8_t f = requested.value.value_or(kV4);
    if ((f != kV4 && f != kV6) || !ports.supports(static_cast<Family>(f))) {
      return respond_error(req, 440, "Address Family not Supported");
    }
    out.wanted[family_index(static_cast<Family>(f))] = true;
    return std::nullopt;
  }
  // Step 9: ADDITIONAL-ADDRESS-FAMILY asks for a dual allocation, an IPv4 and an IPv6 relayed
  // address; "If the ADDITIONAL-ADDRESS-FAMILY attribute is included and the value is 0x01
  // (IPv4 address family), the server MUST reject the request with a 400 (Bad Request) error."
  if (*additional.value != kV6) return respond_error(req, 400, "ADDITIONAL-ADDRESS-FAMILY must be IPv6");
  // A family the server cannot relay fails the whole request only when neither is possible;
  // otherwise the other is allocated and the refused one named in ADDRESS-ERROR-CODE (440).
  for (const Family f : kFamilies) {
    if (ports.supports(f)) {
      out.wanted[family_index(f)] = true;
    } else {
      out.address_error = AddressError{f, 440};
    }
  }
  if (!out.wanted[0] && !out.wanted[1]) return respond_error(req, 440, "Address Family not Supported");
  return std::nullopt;
}

std::optional<Output> TurnServer::Impl::check_quota(Request& req, const std::string& user_key, UserSlot* slot) {
  // RFC 8656 section 7.2, step 8: "At any point, the server MAY choose to reject the request
  // with a 486 (Allocation Quota Reached) error if it feels the client is trying to exceed some
  // locally defined allocation quota." Quotas are per user (REST user part) and for the whole
  // server, counted across every worker (UserLimits).
  QuotaRefusal why = QuotaRefusal::kNone;
  *slot = users.acquire(user_key, cfg.max_allocations_per_user, cfg.max_allocations, &why);
  if (*slot) return std::nullopt;
  drop(DropReason::kOverQuota);
  return respond_error(req, 486, "Allocation Quota Reached");
}

std::optional<Output> TurnServer::Impl::obtain_relay(Request& req, AllocateParams& p) {
  // RFC 8656 section 7.2, step 5: "If the token is not valid for some reason, the server
  // rejects the request with a 508 (Insufficient Capacity) error."
  if (p.token) {
    std::optional<RelayAddress> relay;
    if (ports.shares_reservations()) {
      // The token may be another shard's: the client may send this Allocate from another
      // 5-tuple (its RTCP port) than the one that reserved the port.
      relay = ports.claim_reservation(*p.token, req.now);
      if (relay) reservations.erase(*p.token);  // this shard's own: no longer to expire here
    } else if (auto r = take_reservation(*p.token, req.now)) {
      relay = r->relay;
    }
    if (!relay) return respond_error(req, 508, "Insufficient Capacity");
    p.relays[family_index(relay->address.family)] = *relay;
    return std::nullopt;
  }
  // Step 6: "If the server cannot satisfy the request, then the server rejects the request with
  // a 508 (Insufficient Capacity) error." Also when no relay port is free at all. One relay
  // socket per wanted family (RelayPorts::open is called once for each).
  for (const Family f : kFamilies) {
    if (!p.wanted[family_index(f)]) continue;
    if (p.tcp) {
      // RFC 6062 section 5.1: a TCP relayed transport address, listening for peers.
      if (auto relay = ports.open_tcp(f, req.from.server)) {
        p.relays[family_index(f)] = *relay;
      } else {
        p.address_error = AddressError{f, 508};
      }
      continue;
    }
    auto opened = ports.open(f, req.from.server, p.even, p.reserve_next);
    if (!opened || (p.reserve_next && !opened->reserved_next)) {
      if (opened) ports.close(opened->relay.id);
      p.address_error = AddressError{f, 508};  // a dual allocation goes on with the other
      continue;
    }
    p.relays[family_index(f)] = opened->relay;
    if (opened->reserved_next) {
      // Step 6, R bit set: port+1 is reserved for a later Allocate with the token (30 s).
      // (Never in a dual allocation: R=1 with ADDITIONAL-ADDRESS-FAMILY is a 400.)
      auto token = new_token();
      // A token in use (one chance in 2^64 per reservation held) is drawn again.
      while (token && reservations.contains(*token)) token = new_token();
      if (!token) {
        ports.close(opened->reserved_next->id);
        ports.close(opened->relay.id);
        return respond_error(req, 500, "Server Error: no random source for a RESERVATION-TOKEN");
      }
      const Reservation r{*token, *opened->reserved_next,
                          req.now + ms_from_seconds(cfg.reservation_lifetime_s)};
      reservations.emplace(r.token, r);
      reservation_timers.push(r.expires, r.token);
      ports.share_reservation(r.token, r.relay.id, r.expires);
      p.new_reservation = r.token;
    }
  }
  if (!p.relays[0] && !p.relays[1]) return respond_error(req, 508, "Insufficient Capacity");
  return std::nullopt;
}

Output TurnServer::Impl::handle_allocate(Request& req) {
  const auto& msg = req.msg;
  // RFC 8656 section 7.2, step 1: "The server MUST require that the request be authenticated."
  Credential cred;
  if (auto rejected = authenticate(req, cred)) return *rejected;
  if (auto unknown = check_unknown_attributes(req)) return *unknown;
  // The credential's username: the USERNAME, or the user a USERHASH named (RFC 8489 14.4).
  const std::string username = cred.username;

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
  UserSlot slot;
  if (auto over = check_quota(req, cred.user_id.empty() ? username : cred.user_id, &slot)) return *over;
  if (auto no_port = obtain_relay(req, p)) return *no_port;

  auto a = std::make_unique<Allocation>();
  a->info.id = next_allocation_id();
  a->info.username = username;
  a->info.user_id = cred.user_id;
  a->info.call_id = std::move(cred.call_id);
  a->info.realm = intern_realm(auth.realm());
  a->info.client = req.from;
  a->info.started = req.now;
  a->info.secret_index = cred.secret_index;
  const TimeMs expires = req.now + ms_from_seconds(p.lifetime_s);
  for (size_t fi = 0; fi < p.relays.size(); ++fi) {
    if (!p.relays[fi]) continue;
    a->relays[fi] = FamilyRelay{*p.relays[fi], expires, true};
    // The first relayed address (IPv4 in a dual allocation) is the one observers log first.
    if (fi == 0 || !p.relays[0]) {
      a->info.relayed = p.relays[fi]->address;
    } else {
      a->info.relayed_additional = p.relays[fi]->address;
    }
  }
  a->expires = expires;
  a->granted_lifetime_s = p.lifetime_s;
  a->allocate_tid = msg.transaction_id();
  a->reservation_token = p.new_reservation;
  a->dont_fragment = p.dont_fragment;
  a->tcp = p.tcp;
  a->address_error = p.address_error;
  a->gate = BandwidthGate(&cfg.bandwidth, &users, std::move(slot));
  a->monitor.attach(&monitors);
  return allocate_success(req, add_allocation(std::move(a)));
}

void TurnServer::Impl::index_relays(Allocation& a) {
  for (const auto& r : a.relays) {
    if (!r.open) continue;
    if (by_relay.size() <= r.relay.id) by_relay.resize(r.relay.id + 1, nullptr);
    by_relay[r.relay.id] = &a;
  }
}

void TurnServer::Impl::release_relay(Allocation& a, size_t fi) {
  FamilyRelay& r = a.relays[fi];
  if (!r.open) return;
  r.open = false;
  if (r.relay.id < by_relay.size() && by_relay[r.relay.id] == &a) by_relay[r.relay.id] = nullptr;
  ports.close(r.relay.id);
  // Permissions of that family can no longer be used (a CreatePermission for it gets 443);
  // channels stay until their cooldown ends so that their numbers are not rebound too early.
  const Family f = kFamilies[fi];
  a.permissions.remove_if([f](const Permission& p) { return p.ip.family == f; });
  // RFC 6062: a TCP relay's peer connections were made from (or to) its address.
  if (a.tcp) close_tcp_peers(a.info.client, f);
}

void TurnServer::Impl::release_relays(Allocation& a) {
  for (size_t fi = 0; fi < a.relays.size(); ++fi) release_relay(a, fi);
}

TimeMs TurnServer::Impl::expire_relays(Allocation& a, TimeMs now) {
  // RFC 8656 section 8.1: the relays of a dual allocation are refreshed per family, so one
  // may expire before the other; its port is released then, the allocation lives on.
  for (size_t fi = 0; fi < a.relays.size(); ++fi) {
    if (a.relays[fi].open && a.relays[fi].expires <= now) release_relay(a, fi);
  }
  return a.prune(now);
}

Output TurnServer::Impl::handle_refresh(Request& req) {
  Output reply;
  Allocation* a = authenticate_for_allocation(req, &reply);
  if (a == nullptr) return reply;
  // RFC 8656 section 8.2: "If the server receives a Refresh Request with a
  // REQUESTED-ADDRESS-FAMILY attribute and the attribute value does not match the address
  // family of the allocation, the server MUST reply with a 443 (Peer Address Family Mismatch)
  // error response." Section 8.1: "When refreshing a dual allocation, the client includes a
  // REQUESTED-ADDRESS-FAMILY attribute indicating the address family type that should be
  // refreshed. If no REQUESTED-ADDRESS-FAMILY is included, then the request should be treated
  // as applying to all current allocations."
  bool bad = false;
  const auto family = req.msg.family_attr(stun::attr::kRequestedAddressFamily, &bad);
  if (bad) return respond_error(req, 400, "Malformed REQUESTED-ADDRESS-FAMILY");
  std::array<bool, 2> applies{a->relays[0].open, a->relays[1].open};
  if (family) {
    const auto v4 = static_cast<uint8_t>(Family::kIPv4);
    const auto v6 = static_cast<uint8_t>(Family::kIPv6);
    if ((*family != v4 && *family != v6) || !a->relay_for(static_cast<Family>(*family), req.now)) {
      return respond_error(req, 443, "Peer Address Family Mismatch");
    }
    applies = {false, false};
    applies[family_index(static_cast<Family>(*family))] = true;
  }
  // "If the 'desired lifetime' is zero, then the request succeeds and the allocation is deleted."
  // With a family named, only that family's relayed address is (the allocation ends with its
  // last one).
  const auto requested = req.msg.u32(stun::attr::kLifetime);
  if (requested && *requested == 0) {
    for (size_t fi = 0; fi < applies.size(); ++fi) {
      if (applies[fi]) release_relay(*a, fi);
    }
    a->update_expiry();
    if (!a->relays[0].open && !a->relays[1].open) end_allocation(req.from, EndReason::kRefreshZero, req.now);
    return respond(req, 0, {}, [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 0); });
  }
  // "If the 'desired lifetime' is non-zero, then the request succeeds and the allocation's
  // time-to-expiry is set to the 'desired lifetime'."
  const uint32_t lifetime = desired_lifetime(cfg, requested);
  for (size_t fi = 0; fi < applies.size(); ++fi) {
    if (applies[fi]) a->relays[fi].expires = req.now + ms_from_seconds(lifetime);
  }
  a->update_expiry();
  schedule(*a, req.now + ms_from_seconds(lifetime));  // a refresh may shorten a lifetime
  return respond(req, 0, {}, [&](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, lifetime); });
}

}  // namespace callrelay::core
