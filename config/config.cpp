// The configuration schema: which keys exist, what values they take, and how they map onto
// Config. The mechanics of reading YAML and collecting errors live in yaml_reader.cpp.
#include "config/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/bandwidth_section.hpp"
#include "config/calls_section.hpp"
#include "config/demo_section.hpp"
#include "config/http_section.hpp"
#include "config/limits_section.hpp"
#include "config/loader.hpp"
#include "config/relay_addresses.hpp"
#include "config/yaml_reader.hpp"

namespace callrelay::config {
namespace detail {

std::string family_name(Family f) { return f == Family::kIPv4 ? "IPv4" : "IPv6"; }

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

/// Opens a file for reading; nullopt on success, else why it cannot be read.
std::optional<std::string> open_regular(const std::filesystem::path& path, std::ifstream& in) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return "it is a directory";
  errno = 0;
  in.open(path, std::ios::binary);
  if (!in) return errno != 0 ? std::strerror(errno) : "cannot open";
  return std::nullopt;
}

Config Loader::load(const std::string& yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    reader_.error_at(e.mark.line >= 0 ? e.mark.line + 1 : 0, "YAML syntax error: " + e.msg);
  }
  if (reader_.errors().empty()) {
    Field top;
    top.node = root;
    top.line = detail::line_of(root);
    try {
      read_root(top);
    } catch (const YAML::Exception& e) {  // defensive: the reader avoids throwing conversions
      reader_.error_at(e.mark.line >= 0 ? e.mark.line + 1 : 0, "unreadable value: " + e.msg);
    }
    if (!listen_given_) {
      cfg_.listen.udp = {*stun::Endpoint::parse("0.0.0.0:3478"),
                         *stun::Endpoint::parse("[::]:3478")};
    }
    apply_stream_defaults();
    check_relations();
    resolve_secret_file();
    detail::check_http_sections(reader_, cfg_);
    detail::check_demo_section(reader_, cfg_, demo_enabled_);
    // A revocation is kept no longer than the longest credential this server mints lives.
    uint32_t longest = std::max(cfg_.calls.credential_ttl_s, cfg_.api.default_ttl_s);
    for (const auto& key : cfg_.api.keys) longest = std::max(longest, key.max_ttl_s);
    cfg_.auth.max_credential_lifetime_s = longest;
  }
  if (!reader_.errors().empty()) {
    std::string all;
    for (const std::string& e : reader_.errors()) all += (all.empty() ? "" : "\n") + e;
    throw ConfigError(all);
  }
  return cfg_;
}

void Loader::read_root(const Field& root) {
  if (!root.node.IsNull() && !root.node.IsMap()) {
    reader_.error_at(root.line,
                     "the top level must be a mapping of keys (see callrelay.example.yaml)");
    return;
  }
  const std::vector<KeyHandler> keys = {
      {"listen", on(&Loader::read_listen)},
      {"relay", on(&Loader::read_relay)},
      {"workers", u32(cfg_.workers, 0, kMaxWorkers)},
      {"state_dir", text(cfg_.state_dir, kMaxPathChars)},
      {"realm", text(cfg_.auth.realm, kMaxRealmChars)},
      {"software", text(cfg_.core.software, kMaxSoftwareChars)},
      {"auth", on(&Loader::read_auth)},
      {"allocations", on(&Loader::read_allocations)},
      {"binding_requires_auth", flag(cfg_.core.require_auth_for_binding)},
      {"peers", on(&Loader::read_peers)},
      {"log", on(&Loader::read_log)},
      {"telemetry", on(&Loader::read_telemetry)},
      {"tls", on(&Loader::read_tls)},
      {"streams", on(&Loader::read_streams)},
      {"http", [this](const Field& f) { detail::read_http_section(reader_, f, cfg_.http, base_dir_); }},
      {"api", [this](const Field& f) { detail::read_api_section(reader_, f, cfg_.api, base_dir_); }},
      {"calls",
       [this](const Field& f) { detail::read_calls_section(reader_, f, cfg_.calls, base_dir_); }},
      {"bandwidth",
       [this](const Field& f) { detail::read_bandwidth_section(reader_, f, cfg_.core.bandwidth); }},
      {"limits",
       [this](const Field& f) { detail::read_limits_section(reader_, f, cfg_.core.abuse); }},
      {"drain", [this](const Field& f) { detail::read_drain_section(reader_, f, cfg_.drain); }},
      {"cluster",
       [this](const Field& f) { detail::read_cluster_section(reader_, f, cfg_.cluster); }},
      {"demo",
       [this](const Field& f) {
         detail::read_demo_section(reader_, f, cfg_.demo, demo_enabled_);
       }},
  };
  reader_.read_map(root, keys);
}

void Loader::read_listen(const Field& f) {
  reader_.read_map(f, {{"udp", on(&Loader::read_udp)},
                       {"tcp",
                        [this](const Field& x) {
                          read_stream_listen(x, cfg_.listen.tcp, tcp_given_);
                        }},
                       {"tls", [this](const Field& x) {
                          listen_tls_ = x;
                          read_stream_listen(x, cfg_.listen.tls, tls_given_);
                        }}});
}

void Loader::read_udp(const Field& f) {
  listen_given_ = true;
  if (f.node.IsNull() || (f.node.IsSequence() && f.node.size() == 0)) {
    reader_.error(f, "must list at least one address:port to listen on, like '0.0.0.0:3478'");
    return;
  }
  reader_.for_each_item(f, [this](const Field& item) {
    const auto s = reader_.string(item);
    if (!s) return;
    const auto ep = stun::Endpoint::parse(*s);
    if (!ep) {
      reader_.error(
          item, "must be an address and port like '0.0.0.0:3478' or '[::]:3478', not '" + *s + "'");
      return;
    }
    for (const stun::Endpoint& other : cfg_.listen.udp) {
      if (other == *ep) reader_.error(item, "'" + *s + "' is listed twice");
    }
    cfg_.listen.udp.push_back(*ep);
  });
}

void Loader::read_relay(const Field& f) {
  RelayNetConfig& r = cfg_.relay;
  const auto bind = [this](std::vector<stun::Endpoint>& out, Family family) {
    return [this, &out, family](const Field& x) {
      detail::read_relay_addresses(reader_, x, family, out);
    };
  };
  Field external_v4, external_v6, multiplex;
  const auto external = [this](std::optional<stun::Endpoint>& out, Family family, Field& seen) {
    return [this, &out, family, &seen](const Field& x) {
      seen = x;
      address(out, family)(x);
    };
  };
  const std::vector<KeyHandler> keys = {
      {"ports", on(&Loader::read_ports)},
      {"bind_ipv4", bind(r.bind_ipv4, Family::kIPv4)},
      {"bind_ipv6", bind(r.bind_ipv6, Family::kIPv6)},
      {"external_ipv4", external(r.external_ipv4, Family::kIPv4, external_v4)},
      {"external_ipv6", external(r.external_ipv6, Family::kIPv6, external_v6)},
      {"io",
       [this, &r](const Field& item) {
         if (auto s = reader_.choice(item, {"auto", "io_uring", "epoll"})) r.io = std::move(*s);
       }},
      {"multiplex_peers",
       [this, &r, &multiplex](const Field& x) {
         multiplex = x;
         flag(r.multiplex_peers)(x);
       }},
      {"allocations_per_port", u32(r.allocations_per_port, 1, 1024)},
      {"udp_gso",
       [this, &r](const Field& item) {
         if (auto s = reader_.choice(item, {"auto", "off"})) r.udp_gso = std::move(*s);
       }},
  };
  reader_.read_map(f, keys);
  // The io_uring path reads each relay socket for one relay; shared sockets are demultiplexed
  // on the epoll path only.
  if (r.multiplex_peers && r.io == "io_uring") {
    reader_.error(multiplex, "cannot be true with relay.io: io_uring (shared relay ports use "
                             "epoll; set io: epoll or auto)");
  }
  detail::check_relay_external(reader_, external_v4, r.external_ipv4, r.bind_ipv4, Family::kIPv4);
  detail::check_relay_external(reader_, external_v6, r.external_ipv6, r.bind_ipv6, Family::kIPv6);
}

void Loader::read_ports(const Field& f) {
  const std::vector<KeyHandler> keys = {
      {"min", port(cfg_.relay.port_min, &ports_min_)},
      {"max", port(cfg_.relay.port_max, &ports_max_)},
  };
  reader_.read_map(f, keys);
}

void Loader::read_auth(const Field& f) {
  const std::vector<KeyHandler> keys = {
      {"secrets", on(&Loader::read_secrets)},
      {"secret_file", on(&Loader::read_secret_file)},
      {"separator", on(&Loader::read_separator)},
      {"users", on(&Loader::read_users)},
      {"nonce_lifetime", u32(cfg_.nonce_lifetime_s, 1, kMaxLifetimeS)},
      {"strict_expiry", flag(cfg_.core.strict_expiry)},
      {"password_algorithms", on(&Loader::read_password_algorithms)},
      {"max_revocations", u32(cfg_.auth.max_revocations, 1, 10'000'000)},
  };
  reader_.read_map(f, keys);
}

/// auth.password_algorithms: a list of md5 and sha256 (RFC 8489 section 18.5), in order of
/// preference, each at most once.
void Loader::read_password_algorithms(const Field& f) {
  std::vector<stun::PasswordAlgorithm> list;
  reader_.for_each_item(f, [&](const Field& item) {
    const auto s = reader_.choice(item, {"md5", "sha256"});
    if (!s) return;
    const auto a = *s == "md5" ? stun::PasswordAlgorithm::kMd5 : stun::PasswordAlgorithm::kSha256;
    if (std::find(list.begin(), list.end(), a) != list.end()) {
      reader_.error(item, "'" + *s + "' is listed twice");
      return;
    }
    list.push_back(a);
  });
  if (list.empty()) {
    reader_.error(f, "must list md5, sha256 or both (md5 is what RFC 5389 clients use)");
    return;
  }
  cfg_.auth.password_algorithms = std::move(list);
}

void Loader::read_secrets(const Field& f) {
  reader_.for_each_item(f, [this](const Field& item) {
    const auto s = reader_.string(item);
    if (s && s->empty()) reader_.error(item, "a secret must not be empty");
    if (s && !s->empty()) cfg_.auth.rest_secrets.push_back(*s);
  });
}

void Loader::read_secret_file(const Field& f) {
  secret_file_ = f;
  text(cfg_.auth_secret_file, kMaxPathChars)(f);
}

void Loader::read_separator(const Field& f) {
  const auto s = reader_.string(f);
  if (!s) return;
  // A digit would be read as part of the expiry timestamp.
  if (s->size() != 1 || (s->front() >= '0' && s->front() <= '9')) {
    reader_.error(f, "must be exactly one character, not a digit (like ':'), not '" + *s + "'");
    return;
  }
  cfg_.auth.rest_separator = s->front();
}

void Loader::read_users(const Field& f) {
  if (f.node.IsNull()) return;
  if (!f.node.IsMap()) {
    reader_.error(f, "must be a mapping of username: password");
    return;
  }
  for (auto it = f.node.begin(); it != f.node.end(); ++it) {
    const Field user = detail::child(f, it->first, it->second);
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : std::string();
    if (name.empty() || name.size() > kMaxUsernameBytes) {
      reader_.error(user, "a username must have 1 to 512 bytes");
      continue;
    }
    if (cfg_.auth.static_users.count(name) != 0) {
      reader_.error(user, "duplicate user");
      continue;
    }
    const auto password = reader_.string(user);
    if (password && password->empty()) reader_.error(user, "the password must not be empty");
    if (password && !password->empty()) cfg_.auth.static_users.emplace(name, *password);
  }
}

void Loader::read_allocations(const Field& f) {
  core::CoreConfig& c = cfg_.core;
  const std::vector<KeyHandler> keys = {
      {"default_lifetime", u32(c.default_lifetime_s, 1, kMaxLifetimeS, &default_lifetime_)},
      {"max_lifetime", u32(c.max_lifetime_s, 1, kMaxLifetimeS, &max_lifetime_)},
      {"permission_lifetime", u32(c.permission_lifetime_s, 1, kMaxLifetimeS)},
      {"channel_lifetime", u32(c.channel_lifetime_s, 1, kMaxLifetimeS)},
      {"reservation_lifetime", u32(c.reservation_lifetime_s, 1, kMaxLifetimeS)},
      {"max_per_user", u32(c.max_allocations_per_user, 0, UINT32_MAX)},
      {"max_total", u32(c.max_allocations, 0, UINT32_MAX)},
      {"max_permissions", u32(c.max_permissions_per_allocation, 1, 65535)},
      {"max_channels", u32(c.max_channels_per_allocation, 1, kMaxChannels)},
      {"rfc5766_channels", flag(c.accept_rfc5766_channels)},
      {"tcp_relay", flag(c.tcp_relay)},
      {"max_tcp_connections", u32(c.max_tcp_connections_per_allocation, 1, 65535)},
      {"media_quality", flag(c.media_quality)},
  };
  reader_.read_map(f, keys);
}

void Loader::read_peers(const Field& f) {
  reader_.read_map(f, {{"allow", cidrs(cfg_.peers.allow)}, {"deny", cidrs(cfg_.peers.deny)}});
}

void Loader::read_telemetry(const Field& f) {
  telemetry::TelemetryConfig& t = cfg_.telemetry;
  const auto per_allocation = [this, &t](const Field& p) {
    reader_.read_map(p, {{"enabled", flag(t.per_allocation_enabled)},
                         {"max_series", [this, &t](const Field& x) {
                            if (auto v = reader_.integer(x, 0, 1000000)) {
                              t.per_allocation_max_series = static_cast<size_t>(*v);
                            }
                          }}});
  };
  reader_.read_map(f, {{"per_allocation", per_allocation},
                       {"bitrate_window", u32(t.bitrate_window_s, 1, 60)}});
}

void Loader::read_log(const Field& f) {
  reader_.read_map(f, {{"level", on(&Loader::read_log_level)},
                       {"format", on(&Loader::read_log_format)}});
}

void Loader::read_log_level(const Field& f) {
  if (auto s = reader_.choice(f, {"error", "warn", "info", "debug"})) cfg_.log.level = std::move(*s);
}

void Loader::read_log_format(const Field& f) {
  if (auto s = reader_.choice(f, {"text", "json"})) cfg_.log.format = std::move(*s);
}

Handler Loader::on(void (Loader::*read)(const Field&)) {
  return [this, read](const Field& f) { (this->*read)(f); };
}

Handler Loader::flag(bool& out) {
  return [this, &out](const Field& f) {
    if (auto b = reader_.boolean(f)) out = *b;
  };
}

Handler Loader::port(uint16_t& out, Field* seen) {
  return [this, &out, seen](const Field& f) {
    if (auto n = reader_.integer(f, kMinRelayPort, 65535)) {
      out = static_cast<uint16_t>(*n);
      *seen = f;
    }
  };
}

Handler Loader::u32(uint32_t& out, int64_t min, int64_t max, Field* seen) {
  return [this, &out, min, max, seen](const Field& f) {
    if (auto n = reader_.integer(f, min, max)) {
      out = static_cast<uint32_t>(*n);
      if (seen) *seen = f;
    }
  };
}

Handler Loader::text(std::string& out, size_t max_chars) {
  return [this, &out, max_chars](const Field& f) {
    const auto s = reader_.string(f);
    if (!s) return;
    if (s->empty() || s->size() > max_chars) {
      reader_.error(f, "must have 1 to " + std::to_string(max_chars) + " characters");
      return;
    }
    out = *s;
  };
}

Handler Loader::address(std::optional<stun::Endpoint>& out, Family family) {
  return [this, &out, family](const Field& f) {
    if (f.node.IsNull()) return;  // "~" or nothing: unset, same as leaving the key out
    const auto s = reader_.string(f);
    if (!s) return;
    const auto ip = stun::Endpoint::parse_ip(*s, 0);  // "1.2.3.4", "::1" or "[::1]"
    if (!ip || ip->family != family) {
      const char* example = family == Family::kIPv4 ? "203.0.113.7" : "2001:db8::7";
      reader_.error(f, "must be an " + family_name(family) + " address like '" + example +
                           "' (no port), not '" + *s + "'");
      return;
    }
    out = *ip;
  };
}

Handler Loader::cidrs(std::vector<core::Cidr>& out) {
  return [this, &out](const Field& f) {
    reader_.for_each_item(f, [this, &out](const Field& item) {
      const auto s = reader_.string(item);
      if (!s) return;
      const auto cidr = core::Cidr::parse(*s);
      if (!cidr) {
        reader_.error(item,
                      "must be an address range like '10.0.0.0/8' or 'fd00::/8', not '" + *s + "'");
        return;
      }
      out.push_back(*cidr);
    });
  };
}

/// Checks between two keys. The error goes to the key the operator wrote (the other one kept
/// its default); when both are written, to the first.
void Loader::check_relations() {
  const auto report = [this](const Field& first, const Field& second, const std::string& first_msg,
                             const std::string& second_msg) {
    const bool on_first = !first.path.empty();
    reader_.error(on_first ? first : second, on_first ? first_msg : second_msg);
  };
  const RelayNetConfig& r = cfg_.relay;
  if (r.port_min > r.port_max) {
    report(ports_min_, ports_max_,
           "must not be above relay.ports.max (" + std::to_string(r.port_max) + ")",
           "must not be below relay.ports.min (" + std::to_string(r.port_min) + ")");
  }
  const core::CoreConfig& c = cfg_.core;
  if (c.default_lifetime_s > c.max_lifetime_s) {
    report(default_lifetime_, max_lifetime_,
           "must not be above allocations.max_lifetime (" + std::to_string(c.max_lifetime_s) + ")",
           "must not be below allocations.default_lifetime (" +
               std::to_string(c.default_lifetime_s) + ")");
  }
}

/// Appends the secrets of auth.secret_file (one per line; blank lines and '#' comments
/// skipped) after those given inline, so the app never reads the file again.
void Loader::resolve_secret_file() {
  if (cfg_.auth_secret_file.empty()) return;
  std::filesystem::path path(cfg_.auth_secret_file);
  if (path.is_relative()) path = base_dir_ / path;
  cfg_.auth_secret_file = path.string();
  std::ifstream in;
  if (const auto why = open_regular(path, in)) {
    reader_.error(secret_file_, "cannot read '" + path.string() + "': " + *why);
    return;
  }
  size_t found = 0;
  for (std::string line; std::getline(in, line);) {
    const std::string secret = trim(line);
    if (secret.empty() || secret.front() == '#') continue;
    cfg_.auth.rest_secrets.push_back(secret);
    ++found;
  }
  if (found == 0)
    reader_.error(secret_file_, "'" + path.string() + "' holds no secret (one per line)");
}

}  // namespace detail

Config parse(const std::string& yaml_text, const std::string& source_name) {
  return detail::Loader(source_name, std::filesystem::path()).load(yaml_text);
}

Config load_file(const std::string& path) {
  std::ifstream in;
  if (const auto why = detail::open_regular(path, in)) {
    throw ConfigError(path + ": cannot read the configuration file: " + *why);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return detail::Loader(path, std::filesystem::path(path).parent_path()).load(text.str());
}

}  // namespace callrelay::config
