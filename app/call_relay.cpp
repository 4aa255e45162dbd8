// RelayForCalls: call-scoped REST credentials minted, remembered per call and revoked when the
// call ends; per-call traffic and media from telemetry::CallTraffic; payload types to the relay.
#include "app/call_relay.hpp"

#include <algorithm>
#include <memory>

namespace callrelay::app {
namespace {

/// RFC 8489 section 14.3: USERNAME is under 513 bytes. A call-scoped username adds at most 43
/// (expiry, two separators, "call=", the call id) to the user id; longer user ids get nothing.
constexpr size_t kMaxUserBytes = 256;
/// How often expired credentials are forgotten.
constexpr core::TimeMs kPruneEveryMs = 60'000;

/// Microseconds as milliseconds; negative ("none") as -1.
double ms_from_us(int64_t us) { return us < 0 ? -1.0 : static_cast<double>(us) / 1000.0; }

calls::RelayLeg leg_from(const telemetry::UserMediaTotals& t) {
  const auto stream = [](const telemetry::MediaKindTotals& k) {
    return calls::RelayStream{k.expected, k.received, ms_from_us(k.jitter_us)};
  };
  calls::RelayLeg leg;
  leg.audio = stream(t.kind[static_cast<size_t>(media::Kind::kAudio)]);
  leg.video = stream(t.kind[static_cast<size_t>(media::Kind::kVideo)]);
  leg.rtt_client_ms = ms_from_us(t.rtt_client_us);
  leg.rtt_peer_ms = ms_from_us(t.rtt_peer_us);
  return leg;
}

/// The secret new credentials are signed with: the first REST secret now in force (a
/// configuration reload may have rotated it since the start), "" when there is none.
std::string minting_secret(const core::Authenticator& auth) {
  const auto cfg = auth.config();
  return cfg->rest_secrets.empty() ? std::string() : cfg->rest_secrets.front();
}

}  // namespace

RelayForCalls::RelayForCalls(core::Authenticator& auth, net::Server& server,
                             telemetry::CallTraffic& traffic, CallCredentialSettings settings)
    : auth_(auth),
      server_(server),
      traffic_(traffic),
      settings_(std::move(settings)),
      uris_(settings_.uris) {}

nlohmann::json RelayForCalls::ice_servers(std::string_view user, std::string_view call_id,
                                          calls::TimeMs now) {
  const std::string secret = settings_.rest_secret.empty() ? std::string() : minting_secret(auth_);
  if (secret.empty() || settings_.uris.empty() || settings_.ttl_s == 0 ||
      user.empty() || user.size() > kMaxUserBytes || !core::looks_like_call_id(call_id) ||
      now < 0) {
    return nlohmann::json::array();
  }
  std::string username;
  {
    const std::lock_guard lock(mu_);
    prune(now);
    username = username_for(user, call_id, now).username;
  }
  // TURN REST API: password = base64(HMAC-SHA1(secret, username)).
  nlohmann::json server = nlohmann::json::object();
  server["urls"] = settings_.uri_source ? nlohmann::json(settings_.uri_source()) : uris_;
  server["credential"] = core::Authenticator::rest_password(secret, username);
  server["username"] = std::move(username);
  nlohmann::json list = nlohmann::json::array();
  list.push_back(std::move(server));
  return list;
}

const RelayForCalls::Minted& RelayForCalls::username_for(std::string_view user,
                                                         std::string_view call_id,
                                                         core::TimeMs now) {
  auto it = minted_.find(call_id);
  if (it == minted_.end()) it = minted_.emplace(std::string(call_id), std::vector<Minted>{}).first;
  std::vector<Minted>& list = it->second;
  // Reuse while more than half the lifetime is left: a call's renegotiations get the same
  // credentials, and the list stays short (one entry per user per half lifetime).
  const core::TimeMs half = core::ms_from_seconds(settings_.ttl_s) / 2;
  for (const Minted& m : list) {
    if (m.user == user && m.expires - now > half) return m;
  }
  const int64_t expiry_s = now / 1000 + static_cast<int64_t>(settings_.ttl_s);
  list.push_back(Minted{std::string(user),
                        core::Authenticator::call_username(expiry_s, user, call_id,
                                                           settings_.separator),
                        expiry_s * 1000});
  return list.back();
}

void RelayForCalls::prune(core::TimeMs now) {
  if (now < next_prune_) return;
  next_prune_ = now + kPruneEveryMs;
  for (auto it = minted_.begin(); it != minted_.end();) {
    std::erase_if(it->second, [now](const Minted& m) { return m.expires <= now; });
    it = it->second.empty() ? minted_.erase(it) : std::next(it);
  }
}

calls::CallTraffic RelayForCalls::traffic(std::string_view call_id, std::string_view caller,
                                          std::string_view callee) {
  const telemetry::CallTrafficTotals t = traffic_.traffic(call_id, caller, callee);
  calls::CallTraffic out;
  out.caller_to_peer = t.caller_to_peer;
  out.caller_to_client = t.caller_to_client;
  out.callee_to_peer = t.callee_to_peer;
  out.callee_to_client = t.callee_to_client;
  out.allocations = t.allocations;
  return out;
}

calls::RelayMedia RelayForCalls::media(std::string_view call_id, std::string_view caller,
                                       std::string_view callee) {
  const telemetry::CallMediaTotals t = traffic_.media(call_id, caller, callee);
  return calls::RelayMedia{leg_from(t.caller), leg_from(t.callee)};
}

void RelayForCalls::set_payload_types(std::string_view call_id,
                                      std::vector<calls::RtpPayloadType> types) {
  if (!core::looks_like_call_id(call_id)) return;
  auto map = std::make_shared<media::PayloadMap>();
  for (const calls::RtpPayloadType& t : types) {
    if (t.pt >= map->size()) continue;  // RTP payload types are 7 bits (RFC 3550 section 5.1)
    media::PayloadType& p = (*map)[t.pt];
    if (p.role != media::PayloadType::Role::kUnknown) continue;  // the first one wins
    using Role = media::PayloadType::Role;
    p.role = t.repair ? Role::kRepair : (t.video ? Role::kVideo : Role::kAudio);
    p.clock_rate = t.clock_rate;
  }
  server_.set_payload_types(std::string(call_id), std::move(map));
}

void RelayForCalls::end_call(std::string_view call_id) {
  std::vector<Minted> minted;
  {
    const std::lock_guard lock(mu_);
    if (const auto it = minted_.find(call_id); it != minted_.end()) {
      minted = std::move(it->second);
      minted_.erase(it);
    }
  }
  // Revoked first, so that no new allocation of the call starts once the workers end its
  // allocations (an Allocate is checked against revocations on the worker's thread).
  for (Minted& m : minted) auth_.revoke(std::move(m.username), m.expires);
  server_.end_call(std::string(call_id));
  traffic_.forget(call_id);
}

size_t RelayForCalls::minted_call_count() const {
  const std::lock_guard lock(mu_);
  return minted_.size();
}

}  // namespace callrelay::app
