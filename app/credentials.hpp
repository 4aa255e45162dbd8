// Secrets and credentials for operators: the REST secret kept in the state directory when the
// configuration has none, and minting REST credentials from a secret.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace callrelay::app {

/// 32 random bytes from OpenSSL's CSPRNG. Throws std::runtime_error if it fails.
std::array<uint8_t, 32> random_bytes32();

/// Lower-case hex of `bytes`.
std::string to_hex(const uint8_t* bytes, size_t len);

/// The REST secret stored in a state directory.
struct StateSecret {
  std::string secret;
  std::string path;
  bool created = false;  ///< generated now (first start) rather than read back
};

/// Reads `<state_dir>/<file_name>` (the REST secret by default; the signaling token secret is
/// "signal-secret"), or generates one (64 hex chars from 32 random bytes) and stores it with
/// mode 0600, creating the directory with mode 0700. Later starts reuse it. Throws
/// std::runtime_error naming the path and what to fix.
StateSecret load_or_create_secret(const std::string& state_dir,
                                  const std::string& file_name = "rest-secret");

/// A TURN REST API credential (username "expiry<sep>user", password
/// base64(HMAC-SHA1(secret, username))), as coturn and eturnal accept.
struct RestCredential {
  std::string username;
  std::string password;
};
RestCredential mint_credential(std::string_view secret, std::string_view user, int64_t expiry_unix,
                               char separator);

/// Operator help printed at startup when the server runs on a state-directory secret.
std::string mint_instructions(const StateSecret& secret, const std::string& state_dir,
                              const std::string& config_path);

}  // namespace callrelay::app
