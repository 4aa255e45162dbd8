// The coturn import's output: the draft written as callrelay's YAML, each key commented with
// the coturn option it came from, under a header listing what was not imported and why.
#include <algorithm>
#include <cstdint>
#include <filesystem>

#include "config/coturn_import_draft.hpp"

namespace callrelay::config::coturn {
namespace {

/// A YAML double-quoted scalar: every value goes out quoted, so no text can turn into YAML
/// syntax (a password starting with '*' or holding ": ").
std::string quote(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7F) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& i : items) out += (out.size() > 1 ? ", " : "") + quote(i);
  return out + "]";
}

/// Builds the YAML body: top-level keys and one level of sections.
class Writer {
 public:
  /// Starts a section; its name is written with its first key (an empty one is left out).
  void section(std::string_view name) { pending_ = name; }
  /// `key: value  # comment` at the given depth (0: top level, 1: inside a section, ...).
  void key(int depth, std::string_view key, const std::string& value,
           const std::string& comment = {}) {
    if (depth == 0) pending_.clear();
    if (!pending_.empty() || (depth == 0 && in_section_)) text_ += "\n";
    if (!pending_.empty()) text_ += pending_ + ":\n";
    in_section_ = depth > 0;
    pending_.clear();
    text_ += std::string(static_cast<size_t>(depth) * 2, ' ') + std::string(key) + ":";
    if (!value.empty()) text_ += " " + value;
    if (!comment.empty()) text_ += "  # " + comment;
    text_ += "\n";
  }
  /// A list of strings: one line when short, else one item per line.
  void list_key(int depth, std::string_view key, const std::vector<std::string>& items,
                const std::string& comment) {
    if (items.size() <= 4) return this->key(depth, key, list(items), comment);
    this->key(depth, key, "", comment);
    const std::string indent(static_cast<size_t>(depth + 1) * 2, ' ');
    for (const std::string& i : items) text_ += indent + "- " + quote(i) + "\n";
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string pending_;
  bool in_section_ = false;
};

template <class T>
Line line_of(const Setting<T>& s) {
  return Line{s.line, s.option, {}};
}

bool on(const Setting<bool>& s) { return s && *s; }

struct Listeners {
  std::vector<std::string> udp, tcp, tls;
  std::string origin;
};

void add_unique(std::vector<std::string>& to, const std::string& ep) {
  if (std::find(to.begin(), to.end(), ep) == to.end()) to.push_back(ep);
}

/// coturn listens on every listening-ip (none: all addresses) at listening-port for UDP and
/// TCP and at tls-listening-port for TLS (with a certificate); with RFC 5780 in force (two or
/// more addresses, no plain external-ip, no no-rfc5780) also at the alternate ports.
Listeners listeners(const Draft& d, bool tls_active, Report& r) {
  std::vector<stun::Endpoint> ips;
  for (const auto& g : d.listening_ips) ips.push_back(g.value);
  const bool all_addresses = ips.empty();
  if (all_addresses) {
    ips = {*stun::Endpoint::parse_ip("0.0.0.0", 0), *stun::Endpoint::parse_ip("::", 0)};
  }
  const bool rfc5780 = !on(d.no_rfc5780) && !d.external_plain && ips.size() >= 2;
  const uint16_t port = d.listening_port ? *d.listening_port : 3478;
  const uint16_t tls_port = d.tls_port ? *d.tls_port : 5349;
  const auto alt = [](const Setting<uint16_t>& s, uint16_t base) -> uint16_t {
    if (s && *s != 0) return *s;
    return base < 65535 ? static_cast<uint16_t>(base + 1) : 0;
  };
  const uint16_t alt_port = rfc5780 ? alt(d.alt_port, port) : 0;
  const uint16_t alt_tls_port = rfc5780 ? alt(d.alt_tls_port, tls_port) : 0;
  Listeners out;
  for (stun::Endpoint ip : ips) {
    for (const uint16_t p : {port, alt_port}) {
      if (p == 0) continue;
      ip.port = p;
      add_unique(out.udp, ip.to_string());
      if (!on(d.no_tcp)) add_unique(out.tcp, ip.to_string());
    }
    for (const uint16_t p : {tls_port, alt_tls_port}) {
      if (p == 0 || !tls_active) continue;
      ip.port = p;
      add_unique(out.tls, ip.to_string());
    }
  }
  out.origin = all_addresses ? "every address (no listening-ip)" : "listening-ip";
  if (on(d.no_rfc5780)) r.cover(line_of(d.no_rfc5780), "callrelay does no RFC 5780");
  if (rfc5780) {
    r.notes.push_back(
        "coturn listened on the RFC 5780 alternate ports too (no no-rfc5780): so "
        "does this file, as plain TURN ports; callrelay does not do RFC 5780 NAT "
        "behaviour discovery (remove them if no client uses them)");
  } else {
    for (const auto* s : {&d.alt_port, &d.alt_tls_port})
      if (*s) r.cover(line_of(*s), "coturn listens on it only for RFC 5780, off here");
  }
  if (on(d.no_udp))
    r.skip(line_of(d.no_udp), "callrelay always listens on UDP (listen.udp needs an endpoint)");
  if (tls_active && !on(d.no_dtls)) {
    r.notes.push_back(
        "coturn also answered DTLS on the TLS ports; callrelay has no TURN over "
        "DTLS (clients use UDP, TCP or TLS)");
  }
  if (d.no_dtls) r.cover(line_of(d.no_dtls), "callrelay has no DTLS");
  return out;
}

void write_listen(Writer& w, const Draft& d, bool tls_active, Report& r) {
  const Listeners l = listeners(d, tls_active, r);
  w.section("listen");
  const std::string port =
      d.listening_port ? ", listening-port" : ", port 3478 (no listening-port)";
  const std::string tls_port =
      d.tls_port ? ", tls-listening-port" : ", port 5349 (no tls-listening-port)";
  w.key(1, "udp", list(l.udp), l.origin + port);
  w.key(1, "tcp", list(l.tcp), on(d.no_tcp) ? d.no_tcp.origin() : l.origin + port);
  w.key(1, "tls", list(l.tls),
        tls_active     ? l.origin + tls_port
        : on(d.no_tls) ? d.no_tls.origin()
                       : "no cert and pkey");
}

void write_relay(Writer& w, const Draft& d, Report& r) {
  w.section("relay");
  uint16_t min = d.min_port ? *d.min_port : 49152;
  uint16_t max = d.max_port ? *d.max_port : 65535;
  if (d.min_port || d.max_port) {
    if (min < 1024 || max < 1024 || min > max) {
      for (const auto* s : {&d.min_port, &d.max_port})
        if (*s)
          r.skip(line_of(*s),
                 "callrelay's relay ports are 1024 to 65535 with min <= max, "
                 "not " +
                     std::to_string(min) + "-" + std::to_string(max));
    } else {
      w.key(1, "ports", "{min: " + std::to_string(min) + ", max: " + std::to_string(max) + "}",
            "min-port, max-port");
    }
  }
  const auto address = [&w](std::string_view key, const Setting<stun::Endpoint>& s) {
    if (s) w.key(1, key, quote((*s).ip_string()), s.origin());
  };
  // Every relay-ip of a family, as a list when there are several; with an external-ip of that
  // family only the first (callrelay gives each relay address its own ports, which would
  // collide behind one public address).
  const auto relay_ips = [&w, &r](std::string_view key,
                                  const std::vector<Given<stun::Endpoint>>& ips,
                                  const Setting<stun::Endpoint>& external) {
    if (ips.empty()) return;
    if (ips.size() == 1 || external) {
      for (size_t i = 1; i < ips.size(); ++i) {
        r.skip(Line{ips[i].line, "relay-ip", {}},
               "with external-ip callrelay relays on one address per family; the first relay-ip "
               "(line " + std::to_string(ips[0].line) + ") is used");
      }
      w.key(1, key, quote(ips[0].value.ip_string()),
            "relay-ip, line " + std::to_string(ips[0].line));
      return;
    }
    std::vector<std::string> items;
    std::string lines;
    for (const auto& g : ips) {
      items.push_back(g.value.ip_string());
      lines += (lines.empty() ? "" : ", ") + std::to_string(g.line);
    }
    w.list_key(1, key, items, "relay-ip, lines " + lines);
  };
  relay_ips("bind_ipv4", d.relay_ipv4, d.external_ipv4);
  relay_ips("bind_ipv6", d.relay_ipv6, d.external_ipv6);
  address("external_ipv4", d.external_ipv4);
  address("external_ipv6", d.external_ipv6);
  if (d.external_ipv4 || d.external_ipv6) {
    r.notes.push_back(
        "external-ip: callrelay advertises the external address for every relayed "
        "address of its family (coturn's PUBLIC/PRIVATE form only for PRIVATE)");
  }
}

void write_auth(Writer& w, const Draft& d, Report& r) {
  const bool rest = on(d.use_auth_secret);
  if (d.realm) w.key(0, "realm", quote(*d.realm), d.realm.origin());
  w.section("auth");
  if (rest && !d.secrets.empty()) {
    std::vector<std::string> secrets;
    for (const auto& s : d.secrets) secrets.push_back(s.value);
    w.list_key(1, "secrets", secrets, "static-auth-secret");
  } else if (rest) {
    r.skip(line_of(d.use_auth_secret),
           "no static-auth-secret: coturn's secrets are in its "
           "database (turn_secret): add them to auth.secrets");
  }
  if (d.separator) w.key(1, "separator", quote(std::string(1, *d.separator)), d.separator.origin());
  if (d.stale_nonce)
    w.key(1, "nonce_lifetime", std::to_string(*d.stale_nonce), d.stale_nonce.origin());
  if (rest) {
    for (const Line& l : d.user_lines)
      r.skip(l,
             "coturn ignores user= lines while use-auth-secret is on (callrelay would take "
             "both: add them to auth.users to keep them)");
  } else if (!d.users.empty()) {
    w.key(1, "users", "", "user= lines");
    std::vector<std::string> seen;  // coturn keeps the last line of a name
    for (auto it = d.users.rbegin(); it != d.users.rend(); ++it) {
      if (std::find(seen.begin(), seen.end(), it->value.first) != seen.end()) continue;
      seen.push_back(it->value.first);
    }
    for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
      const auto u = std::find_if(d.users.rbegin(), d.users.rend(),
                                  [&it](const auto& g) { return g.value.first == *it; });
      w.key(2, quote(u->value.first), quote(u->value.second), "line " + std::to_string(u->line));
    }
  }
  if (on(d.no_auth)) {
    r.skip(line_of(d.no_auth),
           "callrelay always authenticates TURN requests (RFC 8656 section "
           "5): clients need credentials");
  }
  if (on(d.lt_cred_mech))
    r.cover(line_of(d.lt_cred_mech), "callrelay always uses long-term credentials");
  if (!rest && d.users.empty()) {
    r.notes.push_back(
        on(d.lt_cred_mech)
            ? "lt-cred-mech without user= lines: coturn's users were in its database; add them to "
              "auth.users (without any, callrelay generates a REST secret in state_dir)"
            : "coturn allowed anonymous TURN here; callrelay always authenticates (it generates a "
              "REST secret in state_dir: `callrelay mint-credential USER` prints credentials)");
  }
  if ((rest || !d.users.empty()) && !d.realm) {
    r.notes.push_back(
        "no realm: coturn used the host's domain name, callrelay uses 'callrelay' "
        "(clients take it from the server; only turnadmin keys depend on it)");
  }
  if (on(d.secure_stun)) w.key(0, "binding_requires_auth", "true", d.secure_stun.origin());
}

void write_allocations(Writer& w, const Draft& d) {
  w.section("allocations");
  if (d.max_allocate_lifetime) {
    const uint32_t max = *d.max_allocate_lifetime;
    if (max < 600) w.key(1, "default_lifetime", std::to_string(max), "at most max_lifetime");
    w.key(1, "max_lifetime", std::to_string(max), d.max_allocate_lifetime.origin());
  }
  const auto u32 = [&w](std::string_view key, const Setting<uint32_t>& s) {
    if (s) w.key(1, key, std::to_string(*s), s.origin());
  };
  u32("permission_lifetime", d.permission_lifetime);
  u32("channel_lifetime", d.channel_lifetime);
  u32("max_per_user", d.user_quota);
  u32("max_total", d.total_quota);
  if (on(d.no_tcp_relay)) w.key(1, "tcp_relay", "false", d.no_tcp_relay.origin());
}

void write_bandwidth(Writer& w, const Draft& d, Report& r) {
  w.section("bandwidth");
  // coturn counts bytes per second; callrelay's caps are bits per second (0: off in both).
  if (d.max_bps)
    w.key(1, "max_bps", std::to_string(*d.max_bps * 8), d.max_bps.origin() + ", x8 bits");
  if (d.bps_capacity) {
    w.key(1, "total_max_bps", std::to_string(*d.bps_capacity * 8),
          d.bps_capacity.origin() + ", x8 bits");
    r.notes.push_back(
        "bps-capacity: coturn shared it out at allocation time; callrelay's "
        "total_max_bps drops what goes over it as it is relayed");
  }
}

void write_peers(Writer& w, const Draft& d) {
  std::vector<std::string> allow, deny;
  if (on(d.allow_loopback)) allow = {"127.0.0.0/8", "::1"};
  std::vector<IpRange> allowed, denied;
  for (const auto& g : d.allowed) allowed.push_back(g.value);
  for (const auto& g : d.denied) denied.push_back(g.value);
  for (const IpRange& a : allowed)
    for (std::string& c : to_cidrs(a)) allow.push_back(std::move(c));
  // coturn: allowed beats denied; callrelay: deny beats allow. So the deny list loses what
  // the allow list holds, and both mean what they meant.
  for (const IpRange& a : subtract(denied, allowed))
    for (std::string& c : to_cidrs(a)) deny.push_back(std::move(c));
  w.section("peers");
  if (!allow.empty()) w.list_key(1, "allow", allow, "allow-loopback-peers, allowed-peer-ip");
  if (!d.denied.empty())
    w.list_key(1, "deny", deny, "denied-peer-ip without the allowed-peer-ip addresses");
}

std::string absolute(const std::string& path, const CoturnImportOptions& o) {
  if (std::filesystem::path(path).is_absolute()) return path;
  if (o.find_file) return o.find_file(path);
  if (o.base_dir.empty()) return path;
  return (std::filesystem::path(o.base_dir) / path).lexically_normal().string();
}

void write_tls(Writer& w, const Draft& d, const CoturnImportOptions& o, bool tls_active,
               Report& r) {
  if (d.cert && !d.pkey)
    r.skip(line_of(d.cert), "cert needs pkey: callrelay takes both or neither");
  if (d.pkey && !d.cert)
    r.skip(line_of(d.pkey), "pkey needs cert: callrelay takes both or neither");
  if (!tls_active) {
    if (d.cert && d.pkey) r.cover(line_of(d.cert), "not needed: no-tls");
    return;
  }
  w.section("tls");
  w.key(1, "cert", quote(absolute(*d.cert, o)), d.cert.origin());
  w.key(1, "key", quote(absolute(*d.pkey, o)), d.pkey.origin());
  if (on(d.no_tlsv1_2)) w.key(1, "min_version", quote("1.3"), d.no_tlsv1_2.origin());
}

void write_rest(Writer& w, const Draft& d, Report& r) {
  if (d.relay_threads)
    w.key(0, "workers", std::to_string(*d.relay_threads), d.relay_threads.origin());
  if (d.log_level) {
    w.section("log");
    w.key(1, "level", *d.log_level, d.log_level.origin());
  }
  if (on(d.prometheus)) {
    const uint16_t port = d.prometheus_port ? *d.prometheus_port : 9641;
    w.section("http");
    w.key(1, "enabled", "true", d.prometheus.origin());
    w.key(1, "listen", quote("0.0.0.0:" + std::to_string(port)), "coturn's exporter port");
    r.notes.push_back(
        "prometheus: the HTTP listener serving /metrics also serves /healthz, the "
        "credential and admin APIs (keys needed) and /status; firewall it as "
        "coturn's exporter was");
  } else if (d.prometheus_port) {
    r.cover(line_of(d.prometheus_port), "coturn uses it only with prometheus, off here");
  }
}

std::string header(const CoturnImportOptions& o, const Report& r) {
  std::string h = "# callrelay configuration imported from coturn's " + printable(o.source_name) +
                  " by `callrelay import-coturn`.\n"
                  "# Check it with `callrelay --config FILE --check-config`; every key is "
                  "described in callrelay.example.yaml.\n";
  if (!r.not_imported.empty()) h += "#\n";
  for (const CoturnSkipped& s : r.not_imported) h += "# not imported: " + describe(s) + "\n";
  if (!r.notes.empty()) h += "#\n";
  for (const std::string& n : r.notes) h += "# note: " + n + "\n";
  if (!r.covered.empty()) h += "#\n# Read, and covered by callrelay as it is:\n";
  for (const auto& c : r.covered) h += "#   " + c.second + "\n";
  return h;
}

}  // namespace

std::string write_yaml(const Draft& d, const CoturnImportOptions& options, Report& r) {
  const bool tls_active = d.cert && d.pkey && !on(d.no_tls);
  Writer w;
  write_listen(w, d, tls_active, r);
  write_relay(w, d, r);
  write_auth(w, d, r);
  write_allocations(w, d);
  write_bandwidth(w, d, r);
  write_peers(w, d);
  write_tls(w, d, options, tls_active, r);
  write_rest(w, d, r);
  r.notes.push_back(
      "callrelay refuses peers in private, loopback, link-local, CGNAT and other "
      "special ranges unless peers.allow lists them (coturn refused loopback only)");
  // The header lists skipped and covered options in the order of the file.
  const auto key = [](int line) { return line > 0 ? line : INT32_MAX; };
  std::stable_sort(r.not_imported.begin(), r.not_imported.end(),
                   [&key](const auto& a, const auto& b) { return key(a.line) < key(b.line); });
  std::stable_sort(r.covered.begin(), r.covered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return header(options, r) + w.text();
}

}  // namespace callrelay::config::coturn
