#include "app/ctl_target.hpp"

#include <filesystem>

#include "app/admin_key.hpp"

namespace callrelay::app {
namespace {

/// A key goes in a header line: printable ASCII without spaces.
bool sendable(const std::string& key) {
  if (key.empty()) return false;
  for (const char c : key)
    if (c <= ' ' || c > '~') return false;
  return true;
}

Url choose_url(const CtlOptions& o, LazyConfig& cfg) {
  if (!o.url.empty()) {
    std::string error;
    auto url = parse_url(o.url, error);
    if (!url) throw CtlError(kCtlUsage, "--url '" + o.url + "': " + error);
    return *url;
  }
  const config::Config& c = cfg.get();
  if (!c.http.enabled)
    throw CtlError(kCtlConfig, "http.enabled is false in " + cfg.name() +
                                   ": that relay has no admin API (give --url if the relay "
                                   "runs with another configuration)");
  return url_for_listener(c.http.listen, c.http.tls.has_value());
}

KeyChoice choose_key(const CtlOptions& o, const char* env_key, LazyConfig& cfg) {
  if (!o.key.empty()) return {o.key, "--key"};
  if (env_key != nullptr && *env_key != '\0') return {env_key, "CALLRELAY_ADMIN_KEY"};
  // The state directory given on the command line needs no configuration for itself, but
  // the configuration's own admin keys come first.
  std::optional<std::string> state_dir = o.state_dir;
  bool config_read = false;
  try {
    const config::Config& c = cfg.get();
    config_read = true;
    for (const auto& k : c.api.keys)
      if (k.admin) return {k.key, "the admin key '" + k.name + "' of api.keys in " + cfg.name()};
    if (!state_dir) state_dir = c.state_dir;
  } catch (const CtlError&) {
    if (!state_dir) throw;
  }
  const std::string path = admin_key_path(*state_dir);
  std::optional<std::string> key;
  try {
    key = read_admin_key(*state_dir);
  } catch (const std::runtime_error& e) {
    throw CtlError(kCtlKey, std::string("no admin key: ") + e.what());
  }
  if (!key)
    throw CtlError(kCtlKey,
                   "no admin key: give --key or CALLRELAY_ADMIN_KEY, mark a key of api.keys "
                   "'admin: true'" +
                       std::string(config_read ? " in " + cfg.name() : "") + ", or run where " +
                       path + " exists (the relay makes it when it starts)");
  return {*key, path};
}

}  // namespace

const config::Config& LazyConfig::get() {
  if (cfg_) return *cfg_;
  try {
    if (!path_.empty()) {
      cfg_ = config::load_file(path_);
    } else if (std::error_code ec; std::filesystem::exists(default_path_, ec)) {
      path_ = default_path_;
      cfg_ = config::load_file(path_);
    } else {
      cfg_ = config::parse(config::default_yaml(), "<embedded default>");
    }
  } catch (const config::ConfigError& e) {
    throw CtlError(kCtlConfig, std::string("cannot use the configuration: ") + e.what() +
                                   " (give --url and --key to do without it)");
  }
  return *cfg_;
}

std::string LazyConfig::name() {
  return path_.empty() ? "the embedded default configuration" : path_;
}

CtlTarget resolve_target(const CtlOptions& options, const char* env_key, LazyConfig& cfg) {
  CtlTarget t;
  t.url = choose_url(options, cfg);
  t.key = choose_key(options, env_key, cfg);
  if (!sendable(t.key.key))
    throw CtlError(kCtlKey, "the key from " + t.key.source +
                                " has characters an API key cannot have (spaces or control "
                                "characters)");
  return t;
}

}  // namespace callrelay::app
