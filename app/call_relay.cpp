// RelayForCalls: call-scoped REST credentials minted, remembered per call and revoked when the
// call ends; per-call traffic from telemetry::CallTraffic.
#include "app/call_relay.hpp"

#include <algorithm>

namespace callrelay::app {
namespace {

/// RFC 8489 section 14.3: USERNAME is under 513 bytes. A call-scoped username adds at most 43
/// (expiry, two separators, "call=", the call id) to the user id; longer user ids get nothing.
constexpr size_t kMaxUserBytes = 256;
/// How often expired credentials are forgotten.
constexpr core::TimeMs kPruneEveryMs = 60'000;

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
  if (settings_.rest_secret.empty() || settings_.uris.empty() || settings_.ttl_s == 0 ||
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
  server["urls"] = uris_;
  server["credential"] = core::Authenticator::rest_password(settings_.rest_secret, username);
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
