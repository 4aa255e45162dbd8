// Long-term credentials: TURN REST API usernames ("expiry:user", password
// base64(HMAC-SHA1(secret, username))) with several secrets for rotation, plus static users;
// call-scoped REST usernames ("expiry:user:call=CALLID"); USERHASH; the password algorithms
// offered (RFC 8489 section 9.2); and the stateless nonce with its security feature cookie.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/limits.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"
#include "relay/stun/integrity.hpp"

namespace callrelay::core {

struct AuthConfig {
  std::string realm = "callrelay";
  std::vector<std::string> rest_secrets;  ///< first mints; all validate (rotation)
  char rest_separator = ':';
  std::unordered_map<std::string, std::string> static_users;  ///< username -> password
  /// auth.password_algorithms: the long-term key hashes accepted, in order of preference, as
  /// the PASSWORD-ALGORITHMS of every 401/438 lists them (RFC 8489 section 9.2.1). MD5 is what
  /// RFC 5389 clients (no PASSWORD-ALGORITHM) use: without it they get a 400 saying so.
  std::vector<stun::PasswordAlgorithm> password_algorithms = {stun::PasswordAlgorithm::kSha256,
                                                              stun::PasswordAlgorithm::kMd5};
  /// auth.max_revocations: revoked usernames held at most; further revocations are refused.
  uint32_t max_revocations = 100'000;
  /// The longest lifetime of a credential this server mints (seconds): a revocation is kept
  /// until the credential's expiry but never longer than this from the moment of revoking.
  uint32_t max_credential_lifetime_s = 86'400;
};

/// Whether `id` has the shape of a call id: "c_" (a call) or "p_" (a preflight) followed by 22
/// base64url characters.
bool looks_like_call_id(std::string_view id);

/// The suffix a call-scoped REST username ends with: separator, "call=", call id.
inline constexpr std::string_view kCallTag = "call=";
inline constexpr size_t kCallIdSize = 24;

/// A successful key lookup.
struct Credential {
  stun::Sha1Key key{};           ///< MD5 long-term key (PASSWORD-ALGORITHM MD5, RFC 5389)
  stun::Sha256Key key_sha256{};  ///< SHA-256 long-term key (PASSWORD-ALGORITHM SHA-256)
  std::string username;   ///< the USERNAME (also when the request named it by USERHASH)
  std::string user_id;    ///< REST user part (without a call suffix), or the static username
  std::string call_id;    ///< the call of a call-scoped REST username; empty otherwise
  int secret_index = -1;  ///< REST secret that matched (-1 static user)
  TimeMs expires = 0;     ///< REST expiry in ms (0: never, static users)

  /// The long-term key made with `algorithm`.
  std::span<const uint8_t> key_for(stun::PasswordAlgorithm algorithm) const {
    if (algorithm == stun::PasswordAlgorithm::kSha256) return key_sha256;
    return key;
  }
};

/// Resolves usernames to long-term keys. Candidate keys for REST usernames are one per secret;
/// the caller checks integrity against each (HMAC decides which secret matched).
///
/// Thread-safe: relay workers call lookup() while the HTTP thread revokes and the reload thread
/// calls reconfigure(). The configuration is an immutable snapshot swapped whole, so a lookup
/// sees either the old or the new one, never a mix.
class Authenticator {
 public:
  /// `wall` (may be null) is the clock REST expiry and revocations are judged by; it must
  /// outlive the Authenticator. Null: the `now` callers pass is taken as wall time (tests and
  /// tools whose clock is the wall clock). `limits` (may be null) counts refused revocations.
  explicit Authenticator(AuthConfig cfg, const WallClock* wall = nullptr,
                         base::LimitCounters* limits = nullptr);

  /// Replaces realm, REST secrets, static users, password algorithms and bounds (hot reload).
  /// Requests checked after it returns use the new configuration; a REST secret left out no
  /// longer validates, one kept goes on validating. Revocations are kept.
  void reconfigure(AuthConfig cfg);

  /// The configuration now in force (a snapshot: it stays valid while held).
  std::shared_ptr<const AuthConfig> config() const;
  std::string realm() const { return config()->realm; }
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
  /// As lookup(), for a request naming its user by USERHASH (RFC 8489 section 14.4). Only
  /// static users can be found this way: a REST username carries its expiry and cannot be
  /// recovered from its hash, so such a hash is kUnknownUser.
  Lookup lookup_userhash(std::span<const uint8_t> hash, TimeMs now) const;
  /// Whether every user can be named by USERHASH (static users only, no REST secrets): the
  /// nonce then advertises username anonymity (RFC 8489 section 9.2).
  bool userhash_resolvable() const;

  /// The REST username of `user`'s credentials for call `call_id`, valid until `expiry_s`:
  /// "<expiry_s><sep><user><sep>call=<call_id>". lookup() gives such a username the user_id
  /// `user` (one allocation quota per user, across calls) and the call_id `call_id`.
  static std::string call_username(int64_t expiry_s, std::string_view user,
                                   std::string_view call_id, char separator);

  /// Password a REST client would use: base64(HMAC-SHA1(secret, username)).
  static std::string rest_password(std::string_view secret, std::string_view username);

  /// Revocation (wired to the HTTP API): `username` refused until `until` (wall time, as are
  /// prune_revocations' `now`), but never past `now` + max_credential_lifetime_s. False when
  /// the list holds max_revocations live entries (counted kRevocationsFull): nothing changed.
  /// The lock guards only this map and is taken on Allocate/Refresh lookups (control path),
  /// never per packet.
  bool revoke(std::string username, TimeMs until, TimeMs now);
  /// As above at the wall clock's now (the system clock without a WallClock).
  bool revoke(std::string username, TimeMs until);
  void prune_revocations(TimeMs now);
  /// Usernames currently revoked (including ones past expiry not yet pruned).
  size_t revoked_count() const;

  /// Called after each revocation made through revoke() with the username and the wall time
  /// it is kept until, so that other instances can refuse it too (cluster mode). Set before
  /// the server starts; runs on the revoking thread and must not block.
  void set_on_revoke(std::function<void(const std::string& username, TimeMs until)> hook) {
    on_revoke_ = std::move(hook);
  }
  /// A revocation another instance made: as revoke(), without calling the on_revoke hook (it
  /// came from the cluster and is not sent back to it).
  bool apply_shared_revocation(std::string username, TimeMs until, TimeMs now);

 private:
  /// The immutable configuration and what is derived from it.
  struct State;
  std::shared_ptr<const State> state() const;
  static std::shared_ptr<const State> make_state(AuthConfig cfg);
  bool is_revoked(const std::string& username, TimeMs now) const;
  /// The revocation itself: the wall time the entry is kept until, nullopt when refused.
  std::optional<TimeMs> add_revocation(std::string username, TimeMs until, TimeMs now);
  Lookup lookup_in(const State& st, std::string_view username, TimeMs wall) const;
  /// The long-term keys (MD5, SHA-256) of `username` under `st`: the static user's (given
  /// its password) or one pair per REST secret; from this thread's cache when derived before.
  /// Valid until this thread's next call.
  static const std::vector<std::pair<stun::Sha1Key, stun::Sha256Key>>& derived_keys(
      const State& st, std::string_view username, const std::string* static_password);

  std::atomic<std::shared_ptr<const State>> state_;
  const WallClock* wall_ = nullptr;
  base::LimitCounters* limits_ = nullptr;
  mutable std::shared_mutex revoked_mutex_;  ///< guards revoked_ only
  std::unordered_map<std::string, TimeMs> revoked_;
  std::function<void(const std::string&, TimeMs)> on_revoke_;
};

/// RFC 8489 section 9.2: a nonce that begins with this "nonce cookie" is followed by 4
/// base64 characters of 24 STUN Security Feature bits, telling the client which features the
/// server offers; a client that understands it can detect a bid-down of those features.
inline constexpr std::string_view kNonceCookie = "obMatJos2";
/// STUN Security Features (RFC 8489 section 18.1), numbered from the least significant bit of
/// the 24 (erratum 6290).
inline constexpr uint32_t kFeaturePasswordAlgorithms = 1u << 0;
inline constexpr uint32_t kFeatureUsernameAnonymity = 1u << 1;

/// Stateless nonces: cookie, features, hex(expiry seconds), hex(first 8 bytes of
/// HMAC-SHA1(key, features | expiry | client ip))). Valid until expiry, for the client address it
/// was issued to, with the features it was issued with (the MAC covers them, so a changed bit
/// makes the nonce stale). No per-client state.
class NonceCodec {
 public:
  NonceCodec(std::array<uint8_t, 32> key, uint32_t lifetime_s) : key_(key), lifetime_s_(lifetime_s) {}
  /// A nonce for `client`, advertising `features` (kFeature* bits).
  std::string issue(const Endpoint& client, TimeMs now,
                    uint32_t features = kFeaturePasswordAlgorithms) const;
  bool valid(std::string_view nonce, const Endpoint& client, TimeMs now) const;
  /// The feature bits a nonce's cookie claims; nullopt without a well-formed cookie. Read
  /// before valid() (RFC 8489 section 9.2.4 checks them first); valid() authenticates them.
  static std::optional<uint32_t> features(std::string_view nonce);

 private:
  std::array<uint8_t, 32> key_;
  uint32_t lifetime_s_;
};

}  // namespace callrelay::core
