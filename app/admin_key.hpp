// The state directory's admin key (`<state_dir>/admin-key`): made by the server on its first
// start and always accepted as an admin API key, so that a local operator (root or the
// service user, who can read the file) can run `callrelay ctl status` with nothing configured.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "http/http_config.hpp"

namespace callrelay::app {

/// The file's name inside the state directory.
inline constexpr const char* kAdminKeyFile = "admin-key";
/// The name the key goes by in logs and API answers (never the key itself).
inline constexpr const char* kAdminKeyName = "state_dir admin-key";
/// What a stored key must look like: printable ASCII without spaces, at least this long
/// (a generated key is 43 characters) and at most kMaxAdminKeyChars.
inline constexpr size_t kMinAdminKeyChars = 16;
inline constexpr size_t kMaxAdminKeyChars = 512;

/// `<state_dir>/admin-key`.
std::string admin_key_path(const std::string& state_dir);

/// Fills `out` with `n` unpredictable bytes; false when the source failed.
using RandomSource = bool (*)(uint8_t* out, size_t n);

/// What the server found or made at start.
struct AdminKeyFile {
  std::string key;  ///< the key; empty when the file could not be written (see warning)
  std::string path;
  bool created = false;  ///< made now rather than read back
  /// Something the operator should fix that does not stop the server: the state directory is
  /// not writable (no key: `ctl` then needs --key or an admin key in api.keys), or the file
  /// can be read by others than its owner.
  std::string warning;
};

/// Reads `<state_dir>/admin-key`, or makes it when it does not exist: 32 bytes from `random`
/// (null: OpenSSL's RAND_bytes) as base64url (RFC 4648 section 5), in a file of mode 0600
/// (the directory made with 0700). Throws std::runtime_error when the random source fails
/// (never a predictable key) or when the file exists but does not hold a key (saying to
/// delete it). Two servers starting at once end up with the same key (the file is linked
/// into place only if absent).
AdminKeyFile load_or_create_admin_key(const std::string& state_dir, RandomSource random = nullptr);

/// Reads the key for a client (`callrelay ctl`): nullopt when the file does not exist; throws
/// std::runtime_error naming the path when it cannot be read or holds no key.
std::optional<std::string> read_admin_key(const std::string& state_dir);

/// The key as an entry of api.keys, marked admin; credentials minted with it live at most
/// `max_ttl_s` (the longest the configuration allows, so revocations outlive them).
http::ApiKey admin_api_key(const std::string& key, uint32_t max_ttl_s);

}  // namespace callrelay::app
