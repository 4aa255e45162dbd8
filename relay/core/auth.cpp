// Long-term credentials (RFC 8489 section 9.2), TURN REST API usernames
// (draft-uberti-behave-turn-rest-00 section 2.2, as coturn and eturnal implement it) and
// stateless nonces.
#include "relay/core/auth.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <mutex>
#include <tuple>
#include <utility>

namespace callrelay::core {

namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

/// REST usernames carry the expiry in Unix seconds. More than 12 digits is beyond year 33000:
/// refused as malformed, which also keeps the millisecond product far from overflow.
constexpr size_t kMaxExpiryDigits = 12;

std::optional<int64_t> parse_unix_seconds(std::string_view digits) {
  if (digits.empty() || digits.size() > kMaxExpiryDigits) return std::nullopt;
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{} || end != digits.data() + digits.size() || v < 0) return std::nullopt;
  return v;
}

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, std::span<const uint8_t> b) {
  for (uint8_t c : b) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// Decodes exactly out.size() bytes of lower-case hex; false on any other character.
bool decode_hex(std::string_view text, std::span<uint8_t> out) {
  if (text.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

bool is_base64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/// Splits the REST user part "<user><sep>call=<call id>" into user and call id. nullopt (the
/// whole part is a plain user id) unless the suffix is exactly that, with a call id of the right
/// shape and a non-empty user before it. Measured from the end, so a separator that can occur
/// in a call id ('-' or '_') still splits in the right place.
std::optional<std::pair<std::string_view, std::string_view>> split_call_suffix(
    std::string_view user_part, char separator) {
  constexpr size_t kSuffix = 1 + kCallTag.size() + kCallIdSize;
  if (user_part.size() <= kSuffix) return std::nullopt;
  const size_t at = user_part.size() - kSuffix;
  if (user_part[at] != separator || user_part.substr(at + 1, kCallTag.size()) != kCallTag) {
    return std::nullopt;
  }
  const std::string_view call_id = user_part.substr(at + 1 + kCallTag.size());
  if (!looks_like_call_id(call_id)) return std::nullopt;
  return std::make_pair(user_part.substr(0, at), call_id);
}

}  // namespace

bool looks_like_call_id(std::string_view id) {
  // "c_": a call; "p_": a connectivity preflight, scoped and ended the same way.
  return id.size() == kCallIdSize && (id.starts_with("c_") || id.starts_with("p_")) &&
         std::all_of(id.begin() + 2, id.end(), is_base64url);
}

std::string Authenticator::call_username(int64_t expiry_s, std::string_view user,
                                         std::string_view call_id, char separator) {
  std::string out = std::to_string(expiry_s);
  out.reserve(out.size() + user.size() + call_id.size() + 2 + kCallTag.size());
  out.push_back(separator);
  out.append(user);
  out.push_back(separator);
  out.append(kCallTag);
  out.append(call_id);
  return out;
}

/// The configuration and the USERHASH index derived from it; never changed once built.
struct Authenticator::State {
  AuthConfig cfg;
  /// USERHASH (32 bytes, as a string) -> static username, for the realm of `cfg`.
  std::unordered_map<std::string, std::string> by_userhash;
  /// Unique in the process (unlike the address, which a later snapshot may reuse): names this
  /// snapshot in the per-thread key cache.
  uint64_t generation = 0;
};

namespace {

std::atomic<uint64_t> next_generation{1};

/// The long-term keys (MD5 and SHA-256) of one username, one pair per candidate, under one
/// configuration snapshot.
struct DerivedKeys {
  uint64_t generation = 0;  // 0: empty
  std::string username;
  std::vector<std::pair<stun::Sha1Key, stun::Sha256Key>> keys;
};

/// Keys are a pure function of the snapshot (realm, secrets, passwords) and the username, and a
/// client sends every request of its allocation (Allocate, CreatePermission, ChannelBind,
/// Refresh) with the same username: deriving them costs an HMAC, base64, MD5 and SHA-256 per
/// secret, more than the rest of the request's checks. Expiry and revocation are still judged
/// on every lookup; only the hashing is kept. Per thread, so workers never share or lock it;
/// direct-mapped and bounded, so a flood of usernames only evicts.
constexpr size_t kKeyCacheSlots = 256;
constexpr size_t kMaxCachedUsername = 512;

DerivedKeys& key_cache_slot(std::string_view username) {
  thread_local std::array<DerivedKeys, kKeyCacheSlots> cache;
  return cache[std::hash<std::string_view>{}(username) % kKeyCacheSlots];
}

}  // namespace

std::shared_ptr<const Authenticator::State> Authenticator::make_state(AuthConfig cfg) {
  auto st = std::make_shared<State>();
  st->cfg = std::move(cfg);
  st->generation = next_generation.fetch_add(1, std::memory_order_relaxed);
  st->by_userhash.reserve(st->cfg.static_users.size());
  for (const auto& [name, password] : st->cfg.static_users) {
    const auto h = stun::userhash(name, st->cfg.realm);
    st->by_userhash.emplace(std::string(h.begin(), h.end()), name);
  }
  return st;
}

Authenticator::Authenticator(AuthConfig cfg, const WallClock* wall, base::LimitCounters* limits)
    : state_(make_state(std::move(cfg))), wall_(wall), limits_(limits) {}

void Authenticator::reconfigure(AuthConfig cfg) {
  // Built before the swap, so workers never wait on the hashing; the old snapshot lives on
  // until the last lookup holding it returns.
  state_.store(make_state(std::move(cfg)), std::memory_order_release);
}

std::shared_ptr<const Authenticator::State> Authenticator::state() const {
  return state_.load(std::memory_order_acquire);
}

std::shared_ptr<const AuthConfig> Authenticator::config() const {
  auto st = state();
  const AuthConfig* cfg = &st->cfg;
  return std::shared_ptr<const AuthConfig>(std::move(st), cfg);  // shares the snapshot's life
}

bool Authenticator::userhash_resolvable() const {
  const auto st = state();
  return st->cfg.rest_secrets.empty() && !st->cfg.static_users.empty();
}

std::string Authenticator::rest_password(std::string_view secret, std::string_view username) {
  // TURN REST API: password = base64(HMAC-SHA1(secret, username)).
  const auto mac = stun::hmac_sha1(bytes_of(secret), bytes_of(username));
  return stun::base64(mac);
}

Authenticator::Lookup Authenticator::lookup(std::string_view username, TimeMs mono_now) const {
  // REST expiry and revocations are wall time; everything else in the core is monotonic.
  return lookup_in(*state(), username, wall_now(mono_now));
}

Authenticator::Lookup Authenticator::lookup_userhash(std::span<const uint8_t> hash,
                                                     TimeMs mono_now) const {
  const auto st = state();
  const auto it = st->by_userhash.find(std::string(hash.begin(), hash.end()));
  if (it == st->by_userhash.end()) {
    Lookup out;
    out.failure = AuthFailure::kUnknownUser;
    return out;
  }
  return lookup_in(*st, it->second, wall_now(mono_now));
}

Authenticator::Lookup Authenticator::lookup_in(const State& st, std::string_view username,
                                               TimeMs now) const {
  const AuthConfig& cfg = st.cfg;
  Lookup out;
  const std::string name(username);
  if (is_revoked(name, now)) {
    out.failure = AuthFailure::kRevoked;
    return out;
  }
  if (const auto it = cfg.static_users.find(name); it != cfg.static_users.end()) {
    const auto& keys = derived_keys(st, username, &it->second);
    Credential c;
    if (!keys.empty()) std::tie(c.key, c.key_sha256) = keys.front();
    c.username = name;
    c.user_id = name;
    out.candidates.push_back(std::move(c));
    return out;
  }
  if (cfg.rest_secrets.empty()) {
    out.failure = AuthFailure::kUnknownUser;
    return out;
  }
  // TURN REST API: username = "<expiry unix seconds><separator><user id>"; a bare timestamp
  // (no user part) is accepted too, as coturn does.
  const size_t sep = username.find(cfg.rest_separator);
  const std::string_view stamp = sep == std::string_view::npos ? username : username.substr(0, sep);
  const auto expiry_s = parse_unix_seconds(stamp);
  if (!expiry_s) {
    out.failure = AuthFailure::kUnknownUser;
    return out;
  }
  const TimeMs expires = *expiry_s * 1000;
  if (expires <= now) {
    out.failure = AuthFailure::kExpired;
    return out;
  }
  // A call-scoped username ("<expiry><sep><user><sep>call=<call id>") counts as its user (the
  // allocation quota is per user, across calls) and names the call its allocations belong to.
  const std::string_view user_part =
      sep == std::string_view::npos ? std::string_view{} : username.substr(sep + 1);
  const auto scoped = split_call_suffix(user_part, cfg.rest_separator);
  const std::string user_id(scoped ? scoped->first : user_part);
  const std::string call_id(scoped ? scoped->second : std::string_view{});
  const auto& keys = derived_keys(st, username, nullptr);
  out.candidates.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    Credential c;
    std::tie(c.key, c.key_sha256) = keys[i];
    c.username = name;
    c.user_id = user_id;
    c.call_id = call_id;
    c.secret_index = static_cast<int>(i);
    c.expires = expires;
    out.candidates.push_back(std::move(c));
  }
  return out;
}

const std::vector<std::pair<stun::Sha1Key, stun::Sha256Key>>& Authenticator::derived_keys(
    const State& st, std::string_view username, const std::string* static_password) {
  const AuthConfig& cfg = st.cfg;
  DerivedKeys& slot = key_cache_slot(username);
  if (slot.generation == st.generation && slot.username == username) return slot.keys;
  slot.generation = 0;
  slot.keys.clear();
  // RFC 8489 section 9.2.2: key = hash(username ":" OpaqueString(realm) ":" OpaqueString(password)),
  // with the static user's password, or the TURN REST password of each secret.
  const auto add = [&](std::string_view password) {
    slot.keys.emplace_back(stun::long_term_key(username, cfg.realm, password),
                           stun::long_term_key_sha256(username, cfg.realm, password));
  };
  if (static_password != nullptr) {
    add(*static_password);
  } else {
    for (const auto& secret : cfg.rest_secrets) add(rest_password(secret, username));
  }
  if (username.size() <= kMaxCachedUsername) {
    slot.username.assign(username);
    slot.generation = st.generation;
  }
  return slot.keys;
}

bool Authenticator::is_revoked(const std::string& username, TimeMs now) const {
  const std::shared_lock lock(revoked_mutex_);
  const auto it = revoked_.find(username);
  return it != revoked_.end() && it->second > now;
}

bool Authenticator::revoke(std::string username, TimeMs until, TimeMs now) {
  const auto kept = add_revocation(username, until, now);
  if (kept && on_revoke_) on_revoke_(username, *kept);
  return kept.has_value();
}

bool Authenticator::apply_shared_revocation(std::string username, TimeMs until, TimeMs now) {
  return add_revocation(std::move(username), until, now).has_value();
}

std::optional<TimeMs> Authenticator::add_revocation(std::string username, TimeMs until,
                                                    TimeMs now) {
  const auto st = state();
  // Bounded twice: by count (max_revocations) and by time, so a username whose expiry lies
  // far ahead (or was forged to) holds its entry no longer than a credential minted now lives.
  const TimeMs horizon = now + static_cast<TimeMs>(st->cfg.max_credential_lifetime_s) * 1000;
  const TimeMs keep_until = std::min(until, horizon);
  const std::unique_lock lock(revoked_mutex_);
  if (const auto it = revoked_.find(username); it != revoked_.end()) {
    it->second = std::max(it->second, keep_until);
    return it->second;
  }
  if (revoked_.size() >= st->cfg.max_revocations) {
    std::erase_if(revoked_, [now](const auto& entry) { return entry.second <= now; });
    if (revoked_.size() >= st->cfg.max_revocations) {
      if (limits_ != nullptr) limits_->hit(base::Limit::kRevocationsFull);
      return std::nullopt;
    }
  }
  revoked_.emplace(std::move(username), keep_until);
  return keep_until;
}

bool Authenticator::revoke(std::string username, TimeMs until) {
  const TimeMs now =
      wall_ != nullptr
          ? wall_->unix_ms()
          : std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return revoke(std::move(username), until, now);
}

void Authenticator::prune_revocations(TimeMs now) {
  const std::unique_lock lock(revoked_mutex_);
  std::erase_if(revoked_, [now](const auto& entry) { return entry.second <= now; });
}

size_t Authenticator::revoked_count() const {
  const std::shared_lock lock(revoked_mutex_);
  return revoked_.size();
}

namespace {
constexpr size_t kNonceMacBytes = 8;
constexpr size_t kFeatureChars = 4;  ///< base64 of the 24 feature bits
constexpr size_t kNonceHexLen = 2 * (sizeof(uint64_t) + kNonceMacBytes);
constexpr size_t kNonceLen = kNonceCookie.size() + kFeatureChars + kNonceHexLen;
constexpr uint32_t kFeatureMask = 0xFFFFFF;

/// The three feature bytes as sent. Bits are set both from the least significant end
/// (erratum 6290) and mirrored from the most significant end (the RFC's figure as printed),
/// so a client reading either way sees the same features; the reserved bits between stay 0.
std::array<uint8_t, 3> feature_bytes(uint32_t features) {
  uint32_t wire = features & kFeatureMask;
  for (uint32_t bit = 0; bit < 12; ++bit) {
    if ((features >> bit) & 1u) wire |= 1u << (23 - bit);
  }
  return {static_cast<uint8_t>(wire >> 16), static_cast<uint8_t>(wire >> 8),
          static_cast<uint8_t>(wire)};
}

/// HMAC input: the feature bytes, 8-byte big-endian expiry, family, the client's address bytes
/// (port excluded: a client that rebinds its port keeps its nonce, the 5-tuple check is the
/// allocation's).
std::array<uint8_t, 20> nonce_mac(const std::array<uint8_t, 32>& key,
                                  const std::array<uint8_t, 3>& features, uint64_t expiry_s,
                                  const Endpoint& client) {
  std::array<uint8_t, 3 + 8 + 1 + 16> input{};
  std::copy(features.begin(), features.end(), input.begin());
  for (size_t i = 0; i < 8; ++i) input[3 + i] = static_cast<uint8_t>(expiry_s >> (56 - 8 * i));
  input[11] = static_cast<uint8_t>(client.family);
  for (size_t i = 0; i < client.addr_len(); ++i) input[12 + i] = client.addr[i];
  return stun::hmac_sha1(key, std::span<const uint8_t>(input.data(), 12 + client.addr_len()));
}

/// A nonce found valid for a client address under a key. The MAC is a pure function of the
/// three, and a client sends the same nonce with every request of its allocation: the check of
/// a repeated nonce costs a comparison instead of an HMAC. Expiry is judged before, every time.
/// Per thread (workers share no state) and direct-mapped, so its size is bounded.
struct NonceMemo {
  std::array<char, kNonceLen> nonce{};
  Endpoint client;
  std::array<uint8_t, 32> key{};
  bool set = false;

  bool holds(std::string_view n, const Endpoint& c, const std::array<uint8_t, 32>& k) const {
    // Constant time for the key, a secret; the nonce and the address are not.
    return set && std::equal(n.begin(), n.end(), nonce.begin()) && c.same_ip(client) &&
           CRYPTO_memcmp(k.data(), key.data(), key.size()) == 0;
  }
};
constexpr size_t kNonceMemoSlots = 64;

NonceMemo& nonce_memo(std::string_view nonce) {
  thread_local std::array<NonceMemo, kNonceMemoSlots> memo;
  return memo[std::hash<std::string_view>{}(nonce) % kNonceMemoSlots];
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/// The 24 bits of 4 base64 characters, as sent (both orders of bits); nullopt on a bad one.
std::optional<uint32_t> decode_feature_chars(std::string_view four) {
  uint32_t v = 0;
  for (const char c : four) {
    const int d = base64_value(c);
    if (d < 0) return std::nullopt;
    v = (v << 6) | static_cast<uint32_t>(d);
  }
  return v;
}
}  // namespace

std::optional<uint32_t> NonceCodec::features(std::string_view nonce) {
  if (nonce.size() < kNonceCookie.size() + kFeatureChars || !nonce.starts_with(kNonceCookie)) {
    return std::nullopt;
  }
  const auto wire = decode_feature_chars(nonce.substr(kNonceCookie.size(), kFeatureChars));
  if (!wire) return std::nullopt;
  // Read from the least significant end (erratum 6290), as issue() writes them.
  return *wire & 0xFFFu;
}

std::string NonceCodec::issue(const Endpoint& client, TimeMs now, uint32_t features) const {
  // Round up so that a nonce is good for at least the whole lifetime.
  const auto now_s = static_cast<uint64_t>((now + 999) / 1000);
  const uint64_t expiry_s = now_s + lifetime_s_;
  std::array<uint8_t, 8> stamp{};
  for (size_t i = 0; i < 8; ++i) stamp[i] = static_cast<uint8_t>(expiry_s >> (56 - 8 * i));
  const auto fb = feature_bytes(features & 0xFFFu);
  std::string out;
  out.reserve(kNonceLen);
  out.append(kNonceCookie);
  out.append(stun::base64(fb));  // 3 bytes: exactly 4 characters, no padding
  append_hex(out, stamp);
  const auto mac = nonce_mac(key_, fb, expiry_s, client);
  append_hex(out, std::span<const uint8_t>(mac.data(), kNonceMacBytes));
  return out;
}

bool NonceCodec::valid(std::string_view nonce, const Endpoint& client, TimeMs now) const {
  if (nonce.size() != kNonceLen || !nonce.starts_with(kNonceCookie)) return false;
  const auto wire = decode_feature_chars(nonce.substr(kNonceCookie.size(), kFeatureChars));
  if (!wire) return false;
  const std::array<uint8_t, 3> fb = {static_cast<uint8_t>(*wire >> 16),
                                     static_cast<uint8_t>(*wire >> 8),
                                     static_cast<uint8_t>(*wire)};
  const std::string_view rest = nonce.substr(kNonceCookie.size() + kFeatureChars);
  std::array<uint8_t, 8> stamp{};
  std::array<uint8_t, kNonceMacBytes> mac{};
  if (!decode_hex(rest.substr(0, 16), stamp) || !decode_hex(rest.substr(16), mac)) return false;
  uint64_t expiry_s = 0;
  for (uint8_t b : stamp) expiry_s = (expiry_s << 8) | b;
  // A forged far-future stamp is caught by the HMAC below; this bound only avoids overflow.
  if (expiry_s > (uint64_t{1} << 40)) return false;
  if (static_cast<TimeMs>(expiry_s) * 1000 <= now) return false;
  NonceMemo& memo = nonce_memo(nonce);
  if (memo.holds(nonce, client, key_)) return true;
  const auto expect = nonce_mac(key_, fb, expiry_s, client);
  if (CRYPTO_memcmp(expect.data(), mac.data(), kNonceMacBytes) != 0) return false;
  std::copy(nonce.begin(), nonce.end(), memo.nonce.begin());
  memo.client = client;
  memo.key = key_;
  memo.set = true;
  return true;
}

}  // namespace callrelay::core
