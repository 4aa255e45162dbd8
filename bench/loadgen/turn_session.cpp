#include "bench/loadgen/turn_session.hpp"

#include "relay/stun/builder.hpp"

namespace callrelay::bench {

namespace {

constexpr uint8_t kUdpProtocol = 17;  // REQUESTED-TRANSPORT value (RFC 8656 section 18.7)

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

stun::Method method_of(Step step) {
  switch (step) {
    case Step::kPermission:
      return stun::Method::kCreatePermission;
    case Step::kChannel:
      return stun::Method::kChannelBind;
    case Step::kRelease:
    case Step::kRefresh:
      return stun::Method::kRefresh;
    default:
      return stun::Method::kAllocate;
  }
}

}  // namespace

RestCredential make_rest_credential(const std::string& secret, const std::string& user,
                                    uint64_t expiry_unix_s) {
  RestCredential c;
  c.username = std::to_string(expiry_unix_s) + ":" + user;
  c.password = stun::base64(stun::hmac_sha1(as_bytes(secret), as_bytes(c.username)));
  return c;
}

bool build_request(Session& s, Step step, const stun::Endpoint& peer, std::mt19937_64& rng) {
  for (auto& b : s.tid) b = static_cast<uint8_t>(rng());
  s.step = step;
  s.attempts = 0;
  stun::MessageBuilder b(s.request, method_of(step), stun::Class::kRequest, s.tid);
  switch (step) {
    case Step::kChallenge:
    case Step::kAllocate:
      b.add_requested_transport(kUdpProtocol);
      break;
    case Step::kPermission:
      b.add_xor_address(stun::attr::kXorPeerAddress, peer);
      break;
    case Step::kChannel:
      b.add_channel_number(kBenchChannel);
      b.add_xor_address(stun::attr::kXorPeerAddress, peer);
      break;
    case Step::kRelease:
      b.add_u32(stun::attr::kLifetime, 0);
      break;
    case Step::kRefresh:
      b.add_u32(stun::attr::kLifetime, kRefreshLifetimeS);
      break;
    default:
      return false;
  }
  if (step != Step::kChallenge) {
    b.add_string(stun::attr::kUsername, s.credential.username);
    b.add_string(stun::attr::kRealm, s.realm);
    b.add_string(stun::attr::kNonce, s.nonce);
    b.add_integrity(s.key);
  }
  b.add_fingerprint();
  s.request_len = b.finish();
  return s.request_len != 0;
}

Reply interpret_reply(Session& s, std::span<const uint8_t> bytes) {
  if (!stun::looks_like_stun(bytes) || s.request_len == 0) return Reply::kIgnore;
  const auto msg = stun::MessageView::parse(bytes);
  if (!msg || msg->transaction_id() != s.tid || msg->method() != method_of(s.step)) {
    return Reply::kIgnore;
  }
  if (msg->cls() == stun::Class::kSuccess) {
    if (s.step != Step::kChallenge) {
      const auto integrity = stun::check_integrity(*msg, s.key);
      if (integrity == stun::Integrity::kBad) return Reply::kBadIntegrity;
      s.response_had_integrity = integrity == stun::Integrity::kOk;
    }
    if (s.step == Step::kChallenge || s.step == Step::kAllocate) {
      const auto relayed = msg->xor_address(stun::attr::kXorRelayedAddress);
      if (!relayed) return Reply::kBadIntegrity;  // a success without a relayed address is broken
      s.relayed = *relayed;
    }
    return Reply::kSuccess;
  }
  if (msg->cls() != stun::Class::kError) return Reply::kIgnore;
  const auto error = msg->error_code();
  s.last_error = error ? error->code : 0;
  const auto realm = msg->string(stun::attr::kRealm);
  const auto nonce = msg->string(stun::attr::kNonce);
  // RFC 8489 section 9.2.5: a 401 (or 438 stale nonce) with REALM and NONCE means "retry with
  // credentials computed for this realm and the new nonce".
  if ((s.last_error == 401 || s.last_error == 438) && nonce) {
    if (realm && (s.realm != *realm || s.step == Step::kChallenge)) {
      s.realm = std::string(*realm);
      s.key = stun::long_term_key(s.credential.username, s.realm, s.credential.password);
    }
    s.nonce = std::string(*nonce);
    return Reply::kNewNonce;
  }
  return Reply::kError;
}

}  // namespace callrelay::bench
