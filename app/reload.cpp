#include "app/reload.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <fstream>
#include <set>
#include <sstream>

#include "base/log.hpp"

namespace callrelay::app {
namespace {

/// Keys a reload applies: the key itself and everything under it. Listeners, ports, workers,
/// the state directory, the HTTP listener, the call service, telemetry, the size of the
/// reflection table and the per-connection byte limit are built once at start and are not listed. Neither is auth.separator (credentials the API and
/// the call service minted carry the running one) nor the allocation settings a live core
/// keeps (software, transports, channel ranges, media measurement).
constexpr std::array<std::string_view, 32> kLiveKeys = {
    "realm",
    "auth.secrets",
    "auth.secret_file",
    "auth.users",
    "auth.password_algorithms",
    "auth.max_revocations",
    "peers",
    "log",
    "tls.cert",
    "tls.key",
    "tls.min_version",
    "api.keys",
    "allocations.default_lifetime",
    "allocations.max_lifetime",
    "allocations.permission_lifetime",
    "allocations.channel_lifetime",
    "allocations.reservation_lifetime",
    "allocations.max_per_user",
    "allocations.max_total",
    "allocations.max_permissions",
    "allocations.max_channels",
    "allocations.max_tcp_connections",
    "bandwidth",
    // The abuse limits, except the table's size and the per-connection byte limit, which are
    // fixed when the table and the listeners are made.
    "limits.unauthenticated.enabled",
    "limits.unauthenticated.allowance_bytes",
    "limits.unauthenticated.allowance_bytes_per_s",
    "limits.unauthenticated.challenges_per_s",
    "limits.unauthenticated.challenge_burst",
    "limits.tcp.max_per_address",
    "limits.tcp.max_total",
    "limits.tcp.fd_reserve",
    "limits.tls",
};

/// Defined and not null ("key:" with nothing counts as absent, as the loader reads it).
bool present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

/// `n[key]`, or an undefined node when `n` is no mapping or has no such key (yaml-cpp's own
/// zombie node throws when used).
YAML::Node child(const YAML::Node& n, const std::string& key) {
  if (!present(n) || !n.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node c = n[key];
  return c.IsDefined() ? c : YAML::Node(YAML::NodeType::Undefined);
}

std::string key_text(const YAML::Node& key) {
  return key.IsScalar() ? key.Scalar() : YAML::Dump(key);
}

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

void diff(const YAML::Node& a, const YAML::Node& b, const std::string& path,
          std::vector<std::string>& out) {
  // An absent mapping compares as an empty one, so that the keys added or removed are named.
  const bool a_map = present(a) ? a.IsMap() : present(b) && b.IsMap();
  const bool b_map = present(b) ? b.IsMap() : present(a) && a.IsMap();
  if (a_map && b_map) {
    std::set<std::string> keys;
    if (present(a))
      for (const auto& kv : a) keys.insert(key_text(kv.first));
    if (present(b))
      for (const auto& kv : b) keys.insert(key_text(kv.first));
    for (const std::string& k : keys) diff(child(a, k), child(b, k), join_key(path, k), out);
    return;
  }
  if (!present(a) && !present(b)) return;
  if (present(a) != present(b) || YAML::Dump(a) != YAML::Dump(b)) {
    out.push_back(path.empty() ? "(the whole document)" : path);
  }
}

YAML::Node load_or_empty(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception&) {
    return YAML::Node();
  }
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ';');
  return text;
}

std::string list(const std::vector<std::string>& keys) {
  std::string out;
  for (const std::string& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

void add_unique(std::vector<std::string>& keys, std::string key) {
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
}

/// Differences the text does not show: defaults derived from other keys (listen.tls from
/// tls.cert), command-line overrides (--state-dir) and the contents of auth.secret_file.
void effective_changes(const config::Config& started, const config::Config& running,
                       const config::Config& next, ReloadResult& r) {
  if (started.listen.udp != next.listen.udp) add_unique(r.need_restart, "listen.udp");
  if (started.listen.tcp != next.listen.tcp) add_unique(r.need_restart, "listen.tcp");
  if (started.listen.tls != next.listen.tls) add_unique(r.need_restart, "listen.tls");
  if (started.state_dir != next.state_dir) add_unique(r.need_restart, "state_dir");
  if (started.auth.rest_separator != next.auth.rest_separator)
    add_unique(r.need_restart, "auth.separator");
  if (running.auth.rest_secrets != next.auth.rest_secrets && !next.auth_secret_file.empty())
    add_unique(r.changed, "auth.secret_file");
}

}  // namespace

std::vector<std::string> changed_keys(const std::string& before_yaml,
                                      const std::string& after_yaml) {
  std::vector<std::string> out;
  diff(load_or_empty(before_yaml), load_or_empty(after_yaml), "", out);
  return out;
}

bool is_live_key(std::string_view key) {
  const auto under = [key](std::string_view live) {
    return key == live || (key.size() > live.size() && key.substr(0, live.size()) == live &&
                           key[live.size()] == '.');
  };
  return std::any_of(kLiveKeys.begin(), kLiveKeys.end(), under);
}

Reloader::Reloader(std::string path, config::Config running, std::string running_text, Load load,
                   std::vector<LivePart> parts, UnixSeconds clock)
    : path_(std::move(path)),
      load_(std::move(load)),
      parts_(std::move(parts)),
      clock_(clock ? std::move(clock)
                   : UnixSeconds([] {
                       return static_cast<int64_t>(
                           std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
                     })),
      started_(running),
      started_text_(running_text),
      running_(std::move(running)),
      running_text_(std::move(running_text)) {
  last_success_s_ = clock_();
}

ReloadResult Reloader::reload(std::string_view trigger) {
  const std::lock_guard lock(mu_);
  ReloadResult r = reload_locked();
  if (!r.ok) {
    log::error("reload.rejected", {{"trigger", trigger}, {"error", one_line(r.error)}},
               "config reload (", trigger, ") rejected, nothing applied, the running "
               "configuration stays: ", one_line(r.error));
    return r;
  }
  log::info("reload.applied", {{"trigger", trigger}, {"changed", list(r.changed)}},
            "config reload (", trigger, ") applied",
            r.changed.empty() ? std::string(": nothing changed") : ": changed " + list(r.changed));
  if (!r.need_restart.empty()) {
    log::warn("reload.restart_required", {{"trigger", trigger}, {"keys", list(r.need_restart)}},
              "config reload: ", list(r.need_restart),
              " differ from the running server and take effect only at the next start");
  }
  return r;
}

ReloadResult Reloader::fail(std::string why) {
  ++error_count_;
  last_ok_ = false;
  ReloadResult r;
  r.error = std::move(why);
  return r;
}

ReloadResult Reloader::reload_locked() {
  if (path_.empty()) {
    return fail("the server runs on the embedded default configuration (no --config): there is "
                "no file to read again");
  }
  config::Config next;
  std::string text;
  try {
    next = load_(path_, text);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  // Everything that can fail happens before anything is applied.
  std::vector<std::function<void()>> commits;
  for (const LivePart& part : parts_) {
    try {
      commits.push_back(part.prepare(next));
    } catch (const std::exception& e) {
      return fail(part.name + ": " + e.what());
    }
  }
  ReloadResult r;
  r.ok = true;
  for (std::string& key : changed_keys(running_text_, text)) {
    if (is_live_key(key)) r.changed.push_back(std::move(key));
  }
  // Restart-only keys are judged against what the server started with: they stay pending
  // (and named) on every reload until a restart.
  for (std::string& key : changed_keys(started_text_, text)) {
    if (!is_live_key(key) && key != "state_dir") r.need_restart.push_back(std::move(key));
  }
  effective_changes(started_, running_, next, r);
  for (const auto& commit : commits) {
    if (commit) commit();
  }
  running_ = std::move(next);
  running_text_ = std::move(text);
  ++ok_count_;
  last_ok_ = true;
  last_success_s_ = clock_();
  return r;
}

std::string Reloader::scrape_text() const {
  const std::lock_guard lock(mu_);
  std::ostringstream out;
  out << "# HELP callrelay_config_reloads_total Configuration reloads (SIGHUP or "
         "POST /api/v1/admin/reload) by outcome: ok (applied) or error (rejected whole).\n"
         "# TYPE callrelay_config_reloads_total counter\n"
         "callrelay_config_reloads_total{outcome=\"ok\"} "
      << ok_count_ << "\ncallrelay_config_reloads_total{outcome=\"error\"} " << error_count_
      << "\n# HELP callrelay_config_last_reload_successful Whether the last reload was applied "
         "(1; also before any reload) or rejected (0).\n"
         "# TYPE callrelay_config_last_reload_successful gauge\n"
         "callrelay_config_last_reload_successful "
      << (last_ok_ ? 1 : 0)
      << "\n# HELP callrelay_config_last_reload_success_timestamp_seconds When the running "
         "configuration was last loaded successfully (the start counts).\n"
         "# TYPE callrelay_config_last_reload_success_timestamp_seconds gauge\n"
         "callrelay_config_last_reload_success_timestamp_seconds "
      << last_success_s_ << "\n";
  return out.str();
}

config::Config Reloader::running() const {
  const std::lock_guard lock(mu_);
  return running_;
}

std::string read_text(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path, std::ios::binary);
  std::ostringstream raw;
  raw << in.rdbuf();
  return raw.str();
}

Reloader::Load file_loader(std::function<void(config::Config&)> adjust) {
  return [adjust = std::move(adjust)](const std::string& path, std::string& text) {
    text = read_text(path);
    config::Config cfg = config::load_file(path);  // throws ConfigError naming every problem
    if (adjust) adjust(cfg);
    return cfg;
  };
}

}  // namespace callrelay::app
