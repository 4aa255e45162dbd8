// What every request shares: the long-term credential check, unknown attributes, building
// error responses; and the Binding method.
#include <algorithm>
#include <array>

#include "relay/core/server_impl.hpp"
#include "relay/stun/integrity.hpp"

namespace callrelay::core {

namespace {

/// Comprehension-required attributes this server understands in a request (RFC 8489 section 14,
/// RFC 8656 section 18, RFC 8445 section 16.1 for ICE attributes some clients add).
bool known_request_attribute(const stun::MessageView& msg, const stun::Attribute& a) {
  namespace at = stun::attr;
  switch (a.type) {
    case at::kUsername: case at::kMessageIntegrity: case at::kMessageIntegritySha256:
    case at::kRealm: case at::kNonce: case at::kPasswordAlgorithm: case at::kUserhash:
    case at::kChannelNumber: case at::kLifetime: case at::kXorPeerAddress: case at::kData:
    case at::kRequestedAddressFamily: case at::kEvenPort: case at::kRequestedTransport:
    case at::kDontFragment: case at::kReservationToken: case at::kPriority: case at::kUseCandidate:
    case at::kConnectionId:
      return true;
    case 0x0003: {
      // CHANGE-REQUEST (RFC 5780 section 7.2): without change flags it asks for nothing we
      // cannot do; with flags set it is refused with 420 as RFC 5780 asks of servers
      // without a second address.
      const auto v = msg.value(a);
      return std::all_of(v.begin(), v.end(), [](uint8_t x) { return x == 0; });
    }
    default:
      return !at::is_comprehension_required(a.type);
  }
}

}  // namespace

std::optional<Endpoint> decode_xor_address(const stun::MessageView& msg, const stun::Attribute& a) {
  // RFC 8489 section 14.2: 0x00, family, port ^ (cookie >> 16), address ^ (cookie | tid).
  const auto v = msg.value(a);
  if (v.size() < 4) return std::nullopt;
  const auto port = static_cast<uint16_t>(((v[2] << 8) | v[3]) ^ (stun::kMagicCookie >> 16));
  std::array<uint8_t, 16> mask{};
  for (size_t i = 0; i < 4; ++i) mask[i] = static_cast<uint8_t>(stun::kMagicCookie >> (24 - 8 * i));
  const auto& tid = msg.transaction_id();
  std::copy(tid.begin(), tid.end(), mask.begin() + 4);
  if (v[1] == static_cast<uint8_t>(Family::kIPv4) && v.size() == 8) {
    return Endpoint::v4({static_cast<uint8_t>(v[4] ^ mask[0]), static_cast<uint8_t>(v[5] ^ mask[1]),
                         static_cast<uint8_t>(v[6] ^ mask[2]), static_cast<uint8_t>(v[7] ^ mask[3])},
                        port);
  }
  if (v[1] == static_cast<uint8_t>(Family::kIPv6) && v.size() == 20) {
    std::array<uint8_t, 16> ip{};
    for (size_t i = 0; i < 16; ++i) ip[i] = static_cast<uint8_t>(v[4 + i] ^ mask[i]);
    return Endpoint::v6(ip, port);
  }
  return std::nullopt;
}

Output TurnServer::Impl::respond_error(Request& req, uint16_t code, std::string_view reason) {
  return respond(req, code, reason, [](stun::MessageBuilder&) {});
}

namespace {

/// The STUN Security Features this server's nonces advertise (RFC 8489 section 9.2): password
/// algorithms always; username anonymity when every user can be found by USERHASH.
uint32_t offered_features(const Authenticator& auth) {
  uint32_t f = kFeaturePasswordAlgorithms;
  if (auth.userhash_resolvable()) f |= kFeatureUsernameAnonymity;
  return f;
}

bool accepts(const AuthConfig& cfg, stun::PasswordAlgorithm a) {
  return std::find(cfg.password_algorithms.begin(), cfg.password_algorithms.end(), a) !=
         cfg.password_algorithms.end();
}

/// Whether the request's PASSWORD-ALGORITHMS is byte for byte the list this server sends.
bool same_algorithm_list(const stun::MessageView& msg, const stun::Attribute& list,
                         const AuthConfig& cfg) {
  std::array<uint8_t, stun::kMaxPasswordAlgorithms * stun::kPasswordAlgorithmEntrySize> ours{};
  const size_t n = stun::encode_password_algorithms(cfg.password_algorithms, ours);
  const auto theirs = msg.value(list);
  return n != 0 && theirs.size() == n && std::equal(theirs.begin(), theirs.end(), ours.begin());
}

}  // namespace

Output TurnServer::Impl::challenge(Request& req, uint16_t code, std::string_view reason) {
  // RFC 8489 section 9.2.4: 401 and 438 carry REALM and a fresh NONCE and are not signed; the
  // nonce has the password-algorithms feature bit, so PASSWORD-ALGORITHMS comes too.
  req.key.reset();
  const auto offer = auth.config();
  const std::string nonce = nonces.issue(req.from.client, req.now, offered_features(auth));
  return respond(req, code, reason, [&](stun::MessageBuilder& b) {
    b.add_string(stun::attr::kRealm, offer->realm);
    b.add_string(stun::attr::kNonce, nonce);
    b.add_password_algorithms(offer->password_algorithms);
  });
}

std::optional<Output> TurnServer::Impl::choose_password_algorithm(Request& req,
                                                                  std::string_view nonce,
                                                                  const AuthConfig& ac,
                                                                  stun::PasswordAlgorithm& alg) {
  const auto pa = stun::read_password_algorithm(req.msg);
  const auto list = req.msg.find(stun::attr::kPasswordAlgorithms);
  const bool cookie_bit =
      (NonceCodec::features(nonce).value_or(0) & kFeaturePasswordAlgorithms) != 0;
  if (!pa.present && !list) {
    // "If the request contains neither PASSWORD-ALGORITHMS nor PASSWORD-ALGORITHM, then the
    // request is processed as though PASSWORD-ALGORITHM were MD5": every RFC 5389 client.
    alg = stun::PasswordAlgorithm::kMd5;
  } else if (cookie_bit) {
    // Bid-down protection: "unless (1) PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS are both
    // present, (2) PASSWORD-ALGORITHMS matches the value sent in the response that sent this
    // NONCE, and (3) PASSWORD-ALGORITHM matches one of the entries in PASSWORD-ALGORITHMS, the
    // server MUST generate an error response with an error code of 400 (Bad Request)."
    if (!pa.present || !list) {
      return respond_error(req, 400, "PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS go together");
    }
    if (!same_algorithm_list(req.msg, *list, ac)) {
      return respond_error(req, 400, "PASSWORD-ALGORITHMS differs from the list this server sent");
    }
    if (!pa.valid || !accepts(ac, static_cast<stun::PasswordAlgorithm>(pa.algorithm))) {
      return respond_error(req, 400, "PASSWORD-ALGORITHM is not one of PASSWORD-ALGORITHMS");
    }
    alg = static_cast<stun::PasswordAlgorithm>(pa.algorithm);
  } else {
    // A nonce without the cookie (not one of ours: the 438 follows) with algorithm attributes.
    if (pa.present && !pa.valid) return respond_error(req, 400, "Malformed PASSWORD-ALGORITHM");
    alg = pa.present ? static_cast<stun::PasswordAlgorithm>(pa.algorithm)
                     : stun::PasswordAlgorithm::kMd5;
  }
  // An algorithm the operator turned off (auth.password_algorithms) is a request this server
  // cannot verify: a clear 400 rather than a 401 the client would answer the same way again.
  if (!accepts(ac, alg)) {
    return respond_error(req, 400,
                         alg == stun::PasswordAlgorithm::kMd5
                             ? "MD5 keys are not accepted here: send PASSWORD-ALGORITHM SHA-256"
                             : "SHA-256 keys are not accepted here: use the offered algorithm");
  }
  return std::nullopt;
}

std::optional<Output> TurnServer::Impl::authenticate(Request& req, Credential& cred) {
  const auto fail = [&](AuthFailure why, uint16_t code, std::string_view reason) {
    if (observer != nullptr) observer->on_auth_failure(why);
    return challenge(req, code, reason);
  };
  // RFC 8489 section 9.2.4: "If the message does not contain a MESSAGE-INTEGRITY or a
  // MESSAGE-INTEGRITY-SHA256 attribute, the server MUST generate an error response with an
  // error code of 401 (Unauthenticated)" with REALM and NONCE: the challenge, not a failure.
  const bool sha256 = req.msg.find(stun::attr::kMessageIntegritySha256).has_value();
  if (!req.msg.integrity() && !sha256) return challenge(req, 401, "Unauthenticated");
  // "If the message contains a MESSAGE-INTEGRITY or a MESSAGE-INTEGRITY-SHA256 attribute, but
  // is missing either the USERNAME or USERHASH, REALM, or NONCE attribute, the server MUST
  // generate an error response with an error code of 400 (Bad Request)".
  const auto username = req.msg.string(stun::attr::kUsername);
  const auto userhash = req.msg.find(stun::attr::kUserhash);
  const auto realm = req.msg.string(stun::attr::kRealm);
  const auto nonce = req.msg.string(stun::attr::kNonce);
  if ((!username && !userhash) || !realm || !nonce) {
    return respond_error(req, 400, "Missing USERNAME or USERHASH, REALM or NONCE");
  }
  // RFC 8489 section 14.4: USERHASH is a SHA-256 hash, 32 bytes.
  if (!username && userhash->length != 32) return respond_error(req, 400, "USERHASH must be 32 bytes");
  const auto ac = auth.config();
  stun::PasswordAlgorithm alg{};
  if (auto bad = choose_password_algorithm(req, *nonce, *ac, alg)) return bad;
  if (*realm != ac->realm) return fail(AuthFailure::kWrongRealm, 401, "Unauthenticated");
  // "If the NONCE is no longer valid, the server MUST generate an error response with an error
  // code of 438 (Stale Nonce)" with a new NONCE and REALM.
  if (!nonces.valid(*nonce, req.from.client, req.now)) return fail(AuthFailure::kStaleNonce, 438, "Stale Nonce");
  // "If the value of the USERNAME or USERHASH attribute is not valid, the server MUST generate
  // an error response with an error code of 401 (Unauthenticated)." Expired REST usernames and
  // revoked ones are not valid; the 401 carries a fresh nonce so the client fails fast.
  auto found = username ? auth.lookup(*username, req.now)
                        : auth.lookup_userhash(req.msg.value(*userhash), req.now);
  if (found.failure && !username && *found.failure == AuthFailure::kUnknownUser) {
    // A REST username holds its expiry, so no table can map its hash back to it.
    return fail(*found.failure, 401, "Unauthenticated: USERHASH names no static user (REST credentials need USERNAME)");
  }
  if (found.failure) return fail(*found.failure, 401, "Unauthenticated");
  // "Using the password associated with the username in the REALM attribute, the server MUST
  // compute the value for the message integrity ... If the resulting value does not match ...
  // 401 (Unauthenticated)." MESSAGE-INTEGRITY-SHA256 is checked when present (section 14.6:
  // the stronger one decides); with several REST secrets each candidate key is tried.
  for (auto& c : found.candidates) {
    const auto key = c.key_for(alg);
    const auto result =
        sha256 ? stun::check_integrity_sha256(req.msg, key) : stun::check_integrity(req.msg, key);
    if (result == stun::Integrity::kOk) {
      req.key = stun::SigningKey::make(key, sha256);
      cred = std::move(c);
      return std::nullopt;
    }
  }
  return fail(AuthFailure::kBadIntegrity, 401, "Unauthenticated");
}

std::optional<Output> TurnServer::Impl::check_unknown_attributes(Request& req) {
  // RFC 8489 section 6.3.1.1: "If the request contains one or more unknown comprehension-
  // required attributes, the server replies with an error response with an error code of 420
  // (Unknown Attribute) and includes an UNKNOWN-ATTRIBUTES attribute in the response that lists
  // the unknown comprehension-required attributes."
  std::array<uint16_t, stun::kMaxAttributes> unknown{};
  size_t n = 0;
  for (const auto& a : req.msg.attributes()) {
    if (!known_request_attribute(req.msg, a)) unknown[n++] = a.type;
  }
  if (n == 0) return std::nullopt;
  return respond(req, 420, "Unknown Attribute", [&](stun::MessageBuilder& b) {
    b.add_unknown_attributes(std::span<const uint16_t>(unknown.data(), n));
  });
}

Allocation* TurnServer::Impl::authenticate_for_allocation(Request& req, Output* reply) {
  Credential cred;
  if (auto rejected = authenticate(req, cred)) {
    *reply = *rejected;
    return nullptr;
  }
  if (auto unknown = check_unknown_attributes(req)) {
    *reply = *unknown;
    return nullptr;
  }
  // RFC 8656 section 5: a request other than Allocate on a 5-tuple without an allocation is
  // rejected with 437 (Allocation Mismatch).
  Allocation* a = find_live(req.from, req.now);
  if (a == nullptr) {
    *reply = respond_error(req, 437, "Allocation Mismatch");
    return nullptr;
  }
  // RFC 8656 section 5: "the server MUST check that the USERNAME and REALM ... match those
  // used to create the allocation"; otherwise 441 (Wrong Credentials). The credential's
  // username, so a request naming the user by USERHASH matches too.
  if (cred.username != a->info.username) {
    *reply = respond_error(req, 441, "Wrong Credentials");
    return nullptr;
  }
  return a;
}

Output TurnServer::Impl::handle_binding(Request& req) {
  // RFC 8489 section 9: Binding needs no credentials unless the operator asks for them.
  if (cfg.require_auth_for_binding) {
    Credential cred;
    if (auto rejected = authenticate(req, cred)) return *rejected;
  }
  if (auto unknown = check_unknown_attributes(req)) return *unknown;
  // RFC 8489 section 6.3.1.1: the success response carries XOR-MAPPED-ADDRESS, the source
  // transport address the request came from.
  return respond(req, 0, {}, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorMappedAddress, req.from.client);
  });
}

}  // namespace callrelay::core
