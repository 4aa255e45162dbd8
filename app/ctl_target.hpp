// Which relay `callrelay ctl` talks to and with which admin key: the URL from --url or the
// configuration's HTTP listener, the key from --key, CALLRELAY_ADMIN_KEY, the configuration's
// first admin key or the state directory's admin-key file, in that order. The configuration
// is read only when a choice needs it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include "app/ctl_args.hpp"
#include "app/ctl_http.hpp"
#include "config/config.hpp"

namespace callrelay::app {

/// Exit statuses of `callrelay ctl` (the usage text lists them).
inline constexpr int kCtlOk = 0;
inline constexpr int kCtlApiError = 1;     ///< the relay answered with an error
inline constexpr int kCtlUsage = 2;        ///< bad arguments
inline constexpr int kCtlUnreachable = 3;  ///< no connection, no answer, TLS failed
inline constexpr int kCtlKey = 4;          ///< no admin key found, or the key was refused
inline constexpr int kCtlConfig = 5;       ///< the configuration file cannot be used

/// The configuration used when no --config is given, if that file exists.
inline constexpr const char* kDefaultConfigPath = "/etc/callrelay/callrelay.yaml";

/// A failure with the exit status it maps to.
class CtlError : public std::runtime_error {
 public:
  CtlError(int exit_code, const std::string& what)
      : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

/// The relay's configuration, loaded on first use: --config FILE, else kDefaultConfigPath
/// when it exists, else the embedded default.
class LazyConfig {
 public:
  LazyConfig(std::string path, std::string default_path = kDefaultConfigPath)
      : path_(std::move(path)), default_path_(std::move(default_path)) {}
  /// Throws CtlError(kCtlConfig) naming the file and its problems.
  const config::Config& get();
  /// "FILE" or "the embedded default configuration", for messages.
  std::string name();

 private:
  std::string path_, default_path_;
  std::optional<config::Config> cfg_;
};

/// An admin key and where it came from ("--key", "CALLRELAY_ADMIN_KEY", "api.keys 'ops' in
/// FILE", "FILE" of the state directory), named in errors (never the key itself).
struct KeyChoice {
  std::string key;
  std::string source;
};

struct CtlTarget {
  Url url;
  KeyChoice key;
};

/// Resolves URL and key. `env_key`: CALLRELAY_ADMIN_KEY's value (null or empty: unset).
/// Throws CtlError: kCtlUsage for a bad --url, kCtlConfig for an unusable configuration (or
/// one without an HTTP listener), kCtlKey when no key is found or a key cannot be sent.
CtlTarget resolve_target(const CtlOptions& options, const char* env_key, LazyConfig& cfg);

}  // namespace callrelay::app
