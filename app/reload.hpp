// Hot reload of the configuration (SIGHUP, POST /api/v1/admin/reload): the file the server
// started with is read again and validated whole; only when all of it is valid (and every
// certificate it names loads) is any of it applied, part by part, while the relay keeps running.
// Keys that cannot change while the server runs (listeners, ports, workers...) are named in a
// warning when they differ, and take effect at the next start.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace callrelay::app {

/// The keys (dotted paths as written in the YAML file, like "auth.secrets" or "listen.udp")
/// whose values differ between two documents: mappings are walked key by key, sequences and
/// scalars compare whole. A key present in one document only counts as changed. Only names are
/// returned, never values (secrets). Text that is not YAML counts as an empty document.
std::vector<std::string> changed_keys(const std::string& before_yaml,
                                      const std::string& after_yaml);

/// Whether a reload applies `key` (a changed_keys() name) to the running server. Everything
/// else needs a restart.
bool is_live_key(std::string_view key);

/// One live-changeable part of the server (authentication, peer policy, a certificate...).
struct LivePart {
  std::string name;
  /// Checks `next` and readies whatever may fail (loading a certificate) without changing
  /// anything; throws std::exception whose message says what to fix. Returns the step that
  /// applies it, which must not fail (a reload applies all parts or none).
  std::function<std::function<void()>(const config::Config& next)> prepare;
};

/// What one reload did.
struct ReloadResult {
  bool ok = false;
  std::string error;                      ///< why nothing was applied (ok false)
  std::vector<std::string> changed;       ///< keys that differ and were applied
  std::vector<std::string> need_restart;  ///< keys that differ but apply at the next start
};

/// Reloads the configuration on request, one reload at a time. Thread-safe: the signal thread
/// and the HTTP listener's threads may call reload() at once (the second waits).
class Reloader {
 public:
  /// Reads and validates the file at a path (throws config::ConfigError listing every
  /// problem) and returns the configuration as serve() would run it (command-line overrides
  /// applied); also returns the raw text in `text`, for changed_keys().
  using Load = std::function<config::Config(const std::string& path, std::string& text)>;
  /// Seconds since the Unix epoch (the success timestamp metric).
  using UnixSeconds = std::function<int64_t()>;

  /// `path`: the configuration file ("" when the server runs on the embedded default: every
  /// reload then fails, saying so). `running`/`running_text`: what the server started with.
  Reloader(std::string path, config::Config running, std::string running_text, Load load,
           std::vector<LivePart> parts, UnixSeconds clock = {});

  /// Reads, validates and applies the file; logs the outcome (`trigger` says who asked:
  /// "SIGHUP", "API") and counts it. On any error nothing is applied and the running
  /// configuration stays.
  ReloadResult reload(std::string_view trigger);

  /// callrelay_config_reloads_total{outcome}, callrelay_config_last_reload_successful and
  /// callrelay_config_last_reload_success_timestamp_seconds (the start counts as a success).
  std::string scrape_text() const;

  /// The configuration now running (a copy).
  config::Config running() const;

 private:
  ReloadResult reload_locked();
  ReloadResult fail(std::string why);

  const std::string path_;
  const Load load_;
  const std::vector<LivePart> parts_;
  const UnixSeconds clock_;
  const config::Config started_;    ///< what the server started with (restart-only keys)
  const std::string started_text_;

  mutable std::mutex mu_;  ///< one reload at a time; guards everything below
  config::Config running_;
  std::string running_text_;
  uint64_t ok_count_ = 0, error_count_ = 0;
  bool last_ok_ = true;
  int64_t last_success_s_ = 0;
};

/// The text of the file at `path` ("" when there is none or it cannot be read).
std::string read_text(const std::string& path);

/// The load step serve() uses: config::load_file, then `adjust` (command-line overrides, the
/// state-directory secret) on the result.
Reloader::Load file_loader(std::function<void(config::Config&)> adjust);

}  // namespace callrelay::app
