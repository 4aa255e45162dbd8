// Long-term credentials: TURN REST API usernames ("expiry:user", password
// base64(HMAC-SHA1(secret, username))) with several secrets for rotation, plus static users;
// call-scoped REST usernames ("expiry:user:call=CALLID"); and the stateless nonce.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"
#include "relay/stun/integrity.hpp"

namespace callrelay::core {

struct AuthConfig {
  std::string realm = "callrelay";
  std::vector<std::string> rest_secrets;  ///< first mints; all validate (rotation)
  char rest_separator = ':';
  std::unordered_map<std::string, std::string> static_users;  ///< username -> password
};

/// Whether `id` has the shape of a call id: "c_" (a call) or "p_" (a preflight) followed by 22
/// base64url characters.
bool looks_like_call_id(std::string_view id);

/// The suffix a call-scoped REST username ends with: separator, "call=", call id.
inline constexpr std::string_view kCallTag = "call=";
inline constexpr size_t kCallIdSize = 24;

/// A successful key lookup.
struct Credential {
  stun::Sha1Key key{};
  std::string user_id;    ///< REST user part (without a call suffix), or the static username
  std::string call_id;    ///< the call of a call-scoped REST username; empty otherwise
  int secret_index = -1;  ///< REST secret that matched (-1 static user)
  TimeMs expires = 0;     ///< REST expiry in ms (0: never, static users)
};

/// Resolves usernames to long-term keys. Candidate keys for REST usernames are one per secret;
/// the caller checks integrity against each (HMAC decides which secret matched).
class Authenticator {
 public:
  /// `wall` (may be null) is the clock REST expiry and revocations are judged by; it must
  /// outlive the Authenticator. Null: the `now` callers pass is taken as wall time (tests and
  /// tools whose clock is the wall clock).
  explicit Authenticator(AuthConfig cfg, const WallClock* wall = nullptr);
  const std::string& realm() const { return cfg_.realm; }
  /// Wall time (Unix ms) at monotonic `now`: the WallClock's, or `now` itself without one.
  TimeMs wall_now(TimeMs now) const { return wall_ != nullptr ? wall_->unix_ms() : now; }

  /// All keys `username` could have (one per REST secret, or the static user's), or a failure
  /// reason (expired timestamp, unknown user, revoked). `now` is the core's monotonic time;
  /// expiry and revocation are judged at wall_now(now). Credential::expires is wall time.
  struct Lookup {
    std::vector<Credential> candidates;
    std::optional<AuthFailure> failure;
  };
  Lookup lookup(std::string_view username, TimeMs now) const;

  /// The REST username of `user`'s credentials for call `call_id`, valid until `expiry_s`:
  /// "<expiry_s><sep><user><sep>call=<call_id>". lookup() gives such a username the user_id
  /// `user` (one allocation quota per user, across calls) and the call_id `call_id`.
  static std::string call_username(int64_t expiry_s, std::string_view user,
                                   std::string_view call_id, char separator);

  /// Password a REST client would use: base64(HMAC-SHA1(secret, username)).
  static std::string rest_password(std::string_view secret, std::string_view username);

  /// Revocation (wired to the HTTP API): usernames refused until their expiry (wall time, as
  /// are prune_revocations' `now`). Thread-safe:
  /// relay workers call lookup() while the HTTP thread revokes and prunes. The lock guards
  /// only this map and is taken on Allocate/Refresh lookups (control path), never per packet.
  void revoke(std::string username, TimeMs until);
  void prune_revocations(TimeMs now);
  /// Usernames currently revoked (including ones past expiry not yet pruned).
  size_t revoked_count() const;

 private:
  bool is_revoked(const std::string& username, TimeMs now) const;

  AuthConfig cfg_;
  const WallClock* wall_ = nullptr;
  mutable std::shared_mutex revoked_mutex_;  ///< guards revoked_ only
  std::unordered_map<std::string, TimeMs> revoked_;
};

/// Stateless nonces: hex(expiry seconds) + hex(first 8 bytes of HMAC-SHA1(key, expiry | client ip)).
/// Valid until expiry, for the client address it was issued to. No per-client state.
class NonceCodec {
 public:
  NonceCodec(std::array<uint8_t, 32> key, uint32_t lifetime_s) : key_(key), lifetime_s_(lifetime_s) {}
  std::string issue(const Endpoint& client, TimeMs now) const;
  bool valid(std::string_view nonce, const Endpoint& client, TimeMs now) const;
 private:
  std::array<uint8_t, 32> key_;
  uint32_t lifetime_s_;
};

}  // namespace callrelay::core
