// Private to relay/core: the state behind TurnServer and the per-method handlers, which live
// in separate files (turn_server.cpp, request.cpp, allocate.cpp, permissions.cpp, data_path.cpp).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relay/core/abuse.hpp"
#include "relay/core/allocation.hpp"
#include "relay/core/allocation_table.hpp"
#include "relay/core/timers.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/stun/builder.hpp"
#include "relay/stun/message.hpp"

namespace callrelay::core {

/// A request being answered: where it came from, the parsed message, and once the long-term
/// credential check passed, the key that signs the response.
struct Request {
  const FiveTuple& from;
  const stun::MessageView& msg;
  TimeMs now;
  bool fingerprint = false;  ///< the request carried FINGERPRINT, so the response does too
  /// The key and integrity attribute the request was verified with (MESSAGE-INTEGRITY or
  /// MESSAGE-INTEGRITY-SHA256, MD5 or SHA-256 key): the response is signed the same way.
  std::optional<stun::SigningKey> key;
};

/// RFC 6062: one peer data connection of a TCP allocation, from Connect (or the peer's own
/// connection) until it closes. Kept in a per-shard table, not in the Allocation, so UDP
/// allocations (nearly all of them) pay nothing for it.
struct TcpPeer {
  enum class State : uint8_t {
    kConnecting,   ///< Connect in progress: relay/net reports with on_peer_connected
    kPendingBind,  ///< connected, waiting (at most 30 s) for the client's ConnectionBind
    kBound,        ///< spliced to a client data connection
  };
  FiveTuple control;  ///< the allocation's control connection (its key in by_tuple)
  Endpoint peer;
  State state = State::kConnecting;
  TimeMs bind_deadline = 0;  ///< kPendingBind: closed when no ConnectionBind came by then
  // The Connect request, to answer it once the connection is made (RFC 6062 section 5.2).
  stun::TransactionId connect_tid{};
  std::optional<stun::SigningKey> connect_key;
  bool connect_fingerprint = false;
};

/// RFC 6062 section 5.2 ("at least 30 seconds") and 5.3: how long a peer data connection
/// waits for its ConnectionBind.
inline constexpr TimeMs kConnectionBindTimeoutMs = 30'000;

/// A relay port opened with EVEN-PORT R=1 and kept for a later Allocate (RFC 8656 section 7.2).
struct Reservation {
  uint64_t token = 0;
  RelayAddress relay;
  TimeMs expires = 0;
};

/// Hashes call ids as std::string or std::string_view alike (lookups by view copy nothing).
struct CallIdHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// A call's payload map on this shard (TurnServer::set_payload_types). The shared_ptr keeps the
/// map alive while any allocation's monitor points at it.
struct CallPayloads {
  std::shared_ptr<const media::PayloadMap> map;
  TimeMs idle_since = -1;  ///< since when the call has no allocation here; -1: it has some
};

/// The media clock of one packet: the caller's microseconds, or `now` scaled when it gave none.
inline int64_t media_time_us(TimeMs now, int64_t now_us) { return now_us >= 0 ? now_us : now * 1000; }

struct TurnServer::Impl {
  Impl(CoreConfig c, const Authenticator& a, const NonceCodec& n, const PeerPolicy& p, RelayPorts& r,
       Observer* o, UserLimits* u);

  // Responses are built here; Output::data points into it until the next call.
  // The largest response is an error with REALM, NONCE, SOFTWARE, UNKNOWN-ATTRIBUTES, MI and
  // FINGERPRINT: well under 1 KiB with the bounded attribute count.
  static constexpr size_t kScratchSize = 1024;

  CoreConfig cfg;
  const Authenticator& auth;
  const NonceCodec& nonces;
  const PeerPolicy& policy;
  RelayPorts& ports;
  Observer* observer;
  /// Quotas and shared caps: the process's (relay/net's Server), or own_users when none given.
  std::unique_ptr<UserLimits> own_users;
  UserLimits& users;

  /// Spare media monitors for allocations' first datagrams. Declared before the allocations:
  /// they give their monitors back to it when destroyed.
  MonitorPool monitors;
  AllocationTable by_tuple;
  std::vector<Allocation*> by_relay;  ///< indexed by RelayId
  /// Client 5-tuples of the live allocations of each call (call-scoped credentials only).
  std::unordered_map<std::string, std::vector<FiveTuple>, CallIdHash, std::equal_to<>> by_call;
  /// Payload maps of calls (set_payload_types), with or without live allocations here.
  std::unordered_map<std::string, CallPayloads, CallIdHash, std::equal_to<>> payloads_by_call;
  std::unordered_map<uint64_t, Reservation> reservations;  ///< by RESERVATION-TOKEN
  std::unordered_map<ConnectionId, TcpPeer> tcp_peers;  ///< RFC 6062 peer data connections
  /// The peer connections of each TCP allocation, by its control connection (no scan of the
  /// shard's connections to count or close one allocation's).
  std::unordered_map<FiveTuple, std::vector<ConnectionId>, FiveTupleHash> tcp_peers_by_control;
  std::array<uint8_t, kScratchSize> scratch{};
  uint64_t indication_counter = 0;
  /// Answers to unauthenticated requests per source (abuse.hpp) and where refusals count.
  ReflectionGuard reflection{cfg.abuse};
  base::LimitCounters* limits = nullptr;
  /// The last response built: its code (0: success) and whether it carries MESSAGE-INTEGRITY
  /// (budget_answer holds back unsigned answers over their source's budget).
  uint16_t answered_code = 0;
  bool answered_signed = false;

  // --- housekeeping (timers.cpp): what falls due is found at a heap's top, never by a scan ---
  /// Every allocation, at (or before) the earliest of its deadlines: lifetime, relays,
  /// permissions, channels. Handling it there finds its next one.
  DeadlineHeap<Allocation, &Allocation::timer> allocation_timers;
  DeadlineQueue<uint64_t> reservation_timers;  ///< reservations' expiries, by token
  DeadlineQueue<ConnectionId> bind_timers;     ///< RFC 6062 ConnectionBind deadlines
  DeadlineQueue<std::string> payload_timers;   ///< idle payload maps' ends, by call id

  // --- operator actions (admin.cpp) ---
  bool draining = false;             ///< start_draining: new Allocates are refused
  std::vector<Endpoint> alternates;  ///< ALTERNATE-SERVERs offered while draining
  size_t next_alternate = 0;         ///< round robin over `alternates`
  /// CoreConfig::strict_expiry: the wall-clock expiry of each REST-credential allocation, a
  /// min-heap (std::greater) so the timer looks at its top only. Entries of allocations that
  /// ended otherwise stay until popped or compacted (the id tells a reused 5-tuple apart).
  struct CredentialDeadline {
    TimeMs wall_expires = 0;
    uint64_t id = 0;
    FiveTuple tuple;
    bool operator>(const CredentialDeadline& o) const { return wall_expires > o.wall_expires; }
  };
  std::vector<CredentialDeadline> credential_deadlines;

  // --- entry points (turn_server.cpp) ---
  Output on_request(const FiveTuple& from, const stun::MessageView& msg, TimeMs now);
  Output on_malformed(const FiveTuple& from, std::span<const uint8_t> bytes, stun::ParseError e, TimeMs now);

  // --- allocation lifecycle (turn_server.cpp) ---
  /// The allocation on `tuple`, or null; one past its lifetime is ended (kExpired) first.
  Allocation* find_live(const FiveTuple& tuple, TimeMs now);
  Allocation& add_allocation(std::unique_ptr<Allocation> a);
  void end_allocation(const FiveTuple& tuple, EndReason why, TimeMs now);
  /// Drops `a` from the by_call index (a no-op for allocations without a call); the call's
  /// payload map starts idling when that was its last allocation here.
  void unindex_call(const Allocation& a, TimeMs now);
  /// Gives a new allocation of a call its payload map, if the call has one.
  void attach_payloads(Allocation& a);
  void set_payload_types(std::string_view call_id, std::shared_ptr<const media::PayloadMap> map,
                         TimeMs now);
  /// Starts the idle time of call `call_id`'s payload map at `now`.
  void idle_payloads(CallPayloads& p, std::string_view call_id, TimeMs now);
  static const std::string& quota_key(const AllocationInfo& info);
  /// `a` has a deadline at `due`: its place in allocation_timers moves there if sooner.
  void schedule(Allocation& a, TimeMs due) { allocation_timers.schedule_by(a, due); }
  void drop(DropReason why) const;
  /// Credits a UDP request's bytes to its source and withholds `out` when it is an unsigned
  /// answer over the source's budget or a 401/438 over its rate (counted in `limits`).
  Output budget_answer(const FiveTuple& from, size_t request_bytes, Output out, TimeMs now);

  // --- operator actions (admin.cpp) ---
  /// An Allocate while draining: a retransmission or a 5-tuple in use goes on to
  /// handle_allocate; otherwise, once authenticated, 300 with ALTERNATE-SERVER or 403.
  Output refuse_allocate(Request& req);
  /// Ends the allocations `match` accepts with reason `why`; how many ended.
  size_t end_matching(const std::function<bool(const AllocationInfo&)>& match, EndReason why,
                      TimeMs now);
  /// CoreConfig::strict_expiry: remembers when `a`'s REST credential expires (wall time).
  void track_credential(const Allocation& a);
  /// Ends the allocations whose REST credential expired by wall_now(now) (kCredentialExpired),
  /// at most `*budget` of them (each one spends one). Looks at the heap's top only when nothing
  /// is due.
  void expire_credentials(TimeMs now, size_t* budget);

  // --- housekeeping (timers.cpp); each handles at most `*budget` due entries ---
  TimeMs on_timer(TimeMs now);
  void expire_allocations(TimeMs now, size_t* budget);
  void expire_reservations(TimeMs now, size_t* budget);
  /// RFC 6062 sections 5.2 and 5.3: closes peer connections left without a ConnectionBind.
  void expire_tcp_peers(TimeMs now, size_t* budget);
  /// Frees payload maps idle for kPayloadTypesIdleMs.
  void expire_payloads(TimeMs now, size_t* budget);
  /// Whether any queue has an entry due at `now`.
  bool anything_due(TimeMs now) const;

  // --- responses and the checks every request shares (request.cpp) ---
  /// Builds a response (success when code == 0) with `extra` adding method attributes, then
  /// SOFTWARE, MESSAGE-INTEGRITY when authenticated, and FINGERPRINT when the request had it.
  template <typename F>
  Output respond(Request& req, uint16_t code, std::string_view reason, F&& extra);
  /// What respond() builds, for a request answered later (RFC 6062 Connect): the response
  /// to `method`/`tid` sent to `to`, signed with `key` when set.
  template <typename F>
  Output respond_to(const FiveTuple& to, stun::Method method, const stun::TransactionId& tid,
                    const std::optional<stun::SigningKey>& key, bool fingerprint, uint16_t code,
                    std::string_view reason, F&& extra);
  Output respond_error(Request& req, uint16_t code, std::string_view reason);
  /// 401 or 438 with REALM, a fresh NONCE, PASSWORD-ALGORITHMS and no MESSAGE-INTEGRITY.
  Output challenge(Request& req, uint16_t code, std::string_view reason);
  /// RFC 8489 section 9.2.4: the long-term credential check. On success fills `cred` and
  /// req.key and returns nullopt; otherwise returns the response to send.
  std::optional<Output> authenticate(Request& req, Credential& cred);
  /// RFC 8489 section 9.2.4: the password algorithm the request's key is made with (MD5
  /// without PASSWORD-ALGORITHM(S)), or the 400 for a bid-down or an algorithm not accepted.
  std::optional<Output> choose_password_algorithm(Request& req, std::string_view nonce,
                                                  const AuthConfig& ac,
                                                  stun::PasswordAlgorithm& alg);
  /// RFC 8489 section 6.3.1: 420 listing unknown comprehension-required attributes.
  std::optional<Output> check_unknown_attributes(Request& req);
  /// Strict input (validate.cpp): the 400 for a request with an attribute of the wrong length
  /// or value for its type (counted kMalformed); nullopt when every attribute is well formed.
  std::optional<Output> check_attribute_formats(Request& req);
  /// handle_send for a Send indication whose attributes are well formed; others are dropped
  /// (kMalformed: indications are never answered). validate.cpp.
  Output checked_send(const FiveTuple& from, const stun::MessageView& msg, TimeMs now, int64_t now_us);
  /// Authenticates a request that needs an existing allocation (everything but Allocate and
  /// Binding), finds it, checks the username matches (441). Null with `*reply` set on failure.
  Allocation* authenticate_for_allocation(Request& req, Output* reply);

  // --- handlers, one per method ---
  Output handle_binding(Request& req);                  // request.cpp
  Output handle_allocate(Request& req);                 // allocate.cpp
  Output handle_refresh(Request& req);                  // allocate.cpp
  Output handle_create_permission(Request& req);        // permissions.cpp
  Output handle_channel_bind(Request& req);             // permissions.cpp
  Output handle_connect(Request& req);                  // tcp_relay.cpp (RFC 6062)
  Output handle_connection_bind(Request& req);          // tcp_relay.cpp
  // data_path.cpp; `now_us` is the media clock (media_time_us).
  Output handle_send(const FiveTuple& from, const stun::MessageView& msg, TimeMs now, int64_t now_us);
  Output handle_channel_data(const FiveTuple& from, std::span<const uint8_t> bytes, TimeMs now,
                             int64_t now_us);
  Output handle_peer(RelayId relay, const Endpoint& peer, std::span<uint8_t> buffer, size_t len, TimeMs now,
                     int64_t now_us);

  // --- Allocate helpers (allocate.cpp) ---
  /// What an Allocate asks for, once its attributes passed RFC 8656 section 7.2 steps 3-9.
  struct AllocateParams {
    bool dont_fragment = false;
    bool tcp = false;               ///< RFC 6062 REQUESTED-TRANSPORT TCP
    std::optional<uint64_t> token;  ///< RESERVATION-TOKEN to claim
    bool even = false;              ///< EVEN-PORT present
    bool reserve_next = false;      ///< EVEN-PORT R bit
    std::array<bool, 2> wanted{};   ///< families to relay, by family_index()
    std::optional<AddressError> address_error;  ///< a dual allocation's refused family
    uint32_t lifetime_s = 0;
    std::array<std::optional<RelayAddress>, 2> relays;  ///< filled by obtain_relay
    std::optional<uint64_t> new_reservation;  ///< token for the port+1 just reserved
  };
  std::optional<Output> parse_allocate(Request& req, AllocateParams& out);
  /// Steps 7-9: the families to allocate from REQUESTED-/ADDITIONAL-ADDRESS-FAMILY.
  std::optional<Output> parse_families(Request& req, AllocateParams& out);
  /// RFC 8656 section 7.2: 486 when the user (across every worker) or the server has its
  /// maximum of allocations; otherwise `*slot` holds the new allocation's place in the quota.
  std::optional<Output> check_quota(Request& req, const std::string& user_key, UserSlot* slot);
  std::optional<Output> obtain_relay(Request& req, AllocateParams& p);
  Output allocate_success(Request& req, const Allocation& a);
  /// Points by_relay at `a` for each of its open relays.
  void index_relays(Allocation& a);
  /// Closes the relay of family index `fi` (its port goes back to relay/net) and drops the
  /// permissions of that family; the allocation lives on if its other relay is open.
  void release_relay(Allocation& a, size_t fi);
  /// Closes every relay of `a` (the allocation ends).
  void release_relays(Allocation& a);
  /// Closes relays whose own lifetime ended while the other family's lives on, then prunes;
  /// returns the allocation's next deadline.
  TimeMs expire_relays(Allocation& a, TimeMs now);
  std::optional<Reservation> take_reservation(uint64_t token, TimeMs now);
  /// Unpredictable bytes from cfg.random_bytes (OpenSSL's by default); false when the source
  /// failed: the caller fails its request rather than use anything guessable.
  bool random(uint8_t* out, size_t n) const;
  /// RFC 8656 section 18.9: an unguessable RESERVATION-TOKEN; nullopt when randomness failed.
  std::optional<uint64_t> new_token();

  // --- RFC 6062 (tcp_relay.cpp) ---
  Output on_peer_connected(ConnectionId cid, bool ok, TimeMs now);
  Output on_peer_connection(RelayId relay, const Endpoint& peer, TimeMs now, std::optional<ConnectionId>* cid);
  void on_peer_closed(ConnectionId cid);
  /// Peer connections of the allocation on `control`, and whether one goes to exactly `peer`.
  size_t tcp_peer_count(const FiveTuple& control, const Endpoint* peer, bool* same_peer) const;
  /// Closes the peer connections of the allocation on `control` (all, when it ends; those of
  /// `family` when only that relay goes). By value: callers pass keys of erased entries.
  void close_tcp_peers(FiveTuple control, std::optional<Family> family = std::nullopt);
  /// Adds peer connection `cid` to tcp_peers and its allocation's index (and its ConnectionBind
  /// deadline to bind_timers when it waits for one).
  void add_tcp_peer(ConnectionId cid, const TcpPeer& p);
  /// Removes peer connection `cid` from tcp_peers and its allocation's index.
  void erase_tcp_peer(ConnectionId cid);
  /// RFC 6062 section 6.2.1: an unused, unguessable CONNECTION-ID; nullopt when randomness failed.
  std::optional<ConnectionId> new_connection_id();
};

/// An attribute that breaks its rule: its type and the 400's reason phrase.
struct MalformedAttribute {
  uint16_t type = 0;
  const char* reason = "";
};
/// Strict input (validate.cpp): the first attribute of `msg` whose length or value is wrong for
/// its type in `msg`'s method (RFC 8489 section 14, RFC 8656 section 18, RFC 6062 section 6.2,
/// RFC 8445 section 16.1), or nullopt when all are well formed. Attributes the method cannot
/// carry are not judged (they are ignored, as unknown optional ones are).
std::optional<MalformedAttribute> malformed_attribute(const stun::MessageView& msg,
                                                      const CoreConfig& cfg);

/// Decodes one XOR-PEER-ADDRESS-style attribute (the message accessor returns only the first;
/// CreatePermission may carry several). nullopt when malformed.
std::optional<Endpoint> decode_xor_address(const stun::MessageView& msg, const stun::Attribute& a);

template <typename F>
Output TurnServer::Impl::respond(Request& req, uint16_t code, std::string_view reason, F&& extra) {
  return respond_to(req.from, req.msg.method(), req.msg.transaction_id(), req.key, req.fingerprint,
                    code, reason, std::forward<F>(extra));
}

template <typename F>
Output TurnServer::Impl::respond_to(const FiveTuple& to, stun::Method method, const stun::TransactionId& tid,
                                    const std::optional<stun::SigningKey>& key, bool fingerprint, uint16_t code,
                                    std::string_view reason, F&& extra) {
  const auto cls = code == 0 ? stun::Class::kSuccess : stun::Class::kError;
  stun::MessageBuilder b(scratch, method, cls, tid);
  if (code != 0) b.add_error(code, reason);
  extra(b);
  // RFC 8489 section 14.14: SOFTWARE describes the server, in every response.
  if (!cfg.software.empty()) b.add_string(stun::attr::kSoftware, cfg.software);
  // RFC 8489 section 9.2.4: responses to authenticated requests carry the integrity attribute
  // the request used (MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256) computed with the same key.
  if (key) b.sign(*key);
  // RFC 8489 section 14.7: FINGERPRINT when the request had one.
  if (fingerprint) b.add_fingerprint();
  answered_code = code;
  answered_signed = key.has_value();
  if (observer != nullptr) observer->on_request(method, to.transport, code);
  Output out;
  const size_t n = b.finish();
  if (n == 0) return out;  // cannot happen with the bounded attributes above; drop rather than send junk
  out.kind = Output::Kind::kToClient;
  out.client = to;
  out.data = std::span<const uint8_t>(scratch.data(), n);
  return out;
}

}  // namespace callrelay::core
