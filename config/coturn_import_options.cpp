// Every coturn 4.6 option (mainrelay.c long_options) and what becomes of it: mapped into the
// draft, covered by callrelay as it is, or not imported with the reason and what to do.
#include <algorithm>
#include <charconv>

#include "config/coturn_import_draft.hpp"
#include "config/relay_addresses.hpp"

namespace callrelay::config::coturn {
namespace {

using Apply = void (*)(const Line&, Draft&, Report&);

/// coturn's get_bool_value: no value is true; 0/n/f... false; 1-9/y/t... true; on/off.
std::optional<bool> flag(const Line& l, Report& r) {
  const std::string& v = l.value;
  if (v.empty()) return true;
  const char c = v.front();
  if (c == '0' || c == 'n' || c == 'N' || c == 'f' || c == 'F') return false;
  if (c == 'y' || c == 'Y' || c == 't' || c == 'T' || (c > '0' && c <= '9')) return true;
  if (v == "off" || v == "OFF" || v == "Off") return false;
  if (v == "on" || v == "ON" || v == "On") return true;
  r.skip(l, "'" + printable(v) +
                "' is not a boolean (coturn takes on/off, yes/no, 1/0, "
                "true/false)");
  return std::nullopt;
}

/// A decimal number within [min, max]; records why not otherwise. coturn's atoi would take
/// "12abc" as 12: such a value is reported rather than guessed at.
std::optional<int64_t> number(const Line& l, Report& r, int64_t min, int64_t max) {
  int64_t n = 0;
  const char* end = l.value.data() + l.value.size();
  const auto [ptr, ec] = std::from_chars(l.value.data(), end, n);
  if (l.value.empty() || ec != std::errc() || ptr != end || n < min || n > max) {
    r.skip(l, "'" + printable(l.value) + "' is not a number from " + std::to_string(min) + " to " +
                  std::to_string(max));
    return std::nullopt;
  }
  return n;
}

/// An optional-argument number (stale-nonce, the lifetimes): no value means coturn's default.
std::optional<int64_t> number_or(const Line& l, Report& r, int64_t fallback) {
  if (l.value.empty()) return fallback;
  return number(l, r, 0, INT32_MAX);
}

std::optional<stun::Endpoint> ip(const Line& l, Report& r, std::string_view text) {
  auto e = stun::Endpoint::parse_ip(text, 0);
  if (!e)
    r.skip(l, "'" + printable(text) + "' is not an IP address (host names are not looked up)");
  return e;
}

void set_flag(Setting<bool>& s, const Line& l, Report& r) {
  if (auto b = flag(l, r)) s.set(*b, l);
}

void set_port(Setting<uint16_t>& s, const Line& l, Report& r, int64_t min) {
  if (auto n = number(l, r, min, 65535)) s.set(static_cast<uint16_t>(*n), l);
}

/// Lifetimes in seconds: callrelay takes 1 to 86400 (longer only pins state); coturn's 0 or a
/// longer value becomes the nearest, with a note.
void set_lifetime(Setting<uint32_t>& s, const Line& l, Report& r, int64_t fallback) {
  auto n = number_or(l, r, fallback);
  if (!n) return;
  constexpr int64_t kMax = 86400;
  if (*n == 0 || *n > kMax) {
    r.notes.push_back(l.name + " " + std::to_string(*n) + " (line " + std::to_string(l.number) +
                      ") becomes 86400 s, callrelay's longest" +
                      (*n == 0 ? " (coturn's 0 meant no limit)" : ""));
    n = kMax;
  }
  s.set(static_cast<uint32_t>(*n), l);
}

void listening_ip(const Line& l, Draft& d, Report& r) {
  const auto e = ip(l, r, l.value);
  if (!e) return;
  for (const auto& g : d.listening_ips)
    if (g.value == *e) return;  // coturn listens once per address
  d.listening_ips.push_back({*e, l.number});
}

void relay_ip(const Line& l, Draft& d, Report& r) {
  const auto e = ip(l, r, l.value);
  if (!e) return;
  if (const char* why = detail::relay_address_problem(*e)) {
    r.skip(l, "'" + e->ip_string() + "' " + why + "; callrelay relays on unicast addresses");
    return;
  }
  // Several relay-ip lines of a family: allocations spread over all of them, as in coturn.
  auto& list = e->is_v4() ? d.relay_ipv4 : d.relay_ipv6;
  for (const auto& g : list)
    if (g.value == *e) return;  // coturn uses each address once
  list.push_back({*e, l.number});
}

/// external-ip=PUBLIC or PUBLIC/PRIVATE: the address advertised in XOR-RELAYED-ADDRESS.
void external_ip(const Line& l, Draft& d, Report& r) {
  const size_t slash = l.value.find('/');
  const auto pub = ip(l, r, std::string_view(l.value).substr(0, slash));
  if (!pub) return;
  if (slash != std::string::npos && !ip(l, r, std::string_view(l.value).substr(slash + 1))) return;
  Setting<stun::Endpoint>& s = pub->is_v4() ? d.external_ipv4 : d.external_ipv6;
  if (s) {
    r.skip(l, "callrelay advertises one external address per family; the first external-ip (line " +
                  std::to_string(s.line) + ") is used");
    return;
  }
  if (slash == std::string::npos) d.external_plain = true;
  s.set(*pub, l);
}

void relay_threads(const Line& l, Draft& d, Report& r) {
  // coturn: 0 relays on the listener thread (one thread); callrelay's 0 means one per core.
  if (auto n = number(l, r, 0, 1024))
    d.relay_threads.set(static_cast<unsigned>(std::max<int64_t>(*n, 1)), l);
}

void user(const Line& l, Draft& d, Report& r) {
  const size_t colon = l.value.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= l.value.size()) {
    r.skip(l, "not 'name:password' (coturn rejects it too)");
    return;
  }
  std::string name = l.value.substr(0, colon);
  std::string password = l.value.substr(colon + 1);
  password.erase(0, password.find_first_not_of(" \t"));
  if (password.rfind("0x", 0) == 0) {
    r.skip(l, "user '" + printable(name) +
                  "' has a turnadmin key (0x...), not a password: "
                  "callrelay needs the password (auth.users)");
    return;
  }
  if (password.empty() || name.size() > 512) {
    r.skip(l, "user '" + printable(name) +
                  "': callrelay needs a name of 1 to 512 bytes and a "
                  "password");
    return;
  }
  d.user_lines.push_back(l);
  d.users.push_back({{std::move(name), std::move(password)}, l.number});
}

void static_auth_secret(const Line& l, Draft& d, Report& r) {
  if (l.value.empty()) {
    r.skip(l, "an empty secret");
    return;
  }
  d.secrets.push_back({l.value, l.number});
  d.use_auth_secret.set(true, l);  // coturn: a static secret turns the REST mechanism on
}

void realm(const Line& l, Draft& d, Report& r) {
  if (l.value.empty() || l.value.size() > 127) {
    r.skip(l, "callrelay's realm has 1 to 127 characters (RFC 8489 section 14.9)");
    return;
  }
  d.realm.set(l.value, l);
}

void separator(const Line& l, Draft& d, Report& r) {
  const char c = l.value.empty() ? ':' : l.value.front();
  if (c >= '0' && c <= '9') {
    r.skip(l, "a digit cannot separate the expiry from the user");
    return;
  }
  d.separator.set(c, l);
}

void path(Setting<std::string>& s, const Line& l, Report& r) {
  if (l.value.empty()) {
    r.skip(l, "no file named");
    return;
  }
  s.set(l.value, l);
}

void quota(Setting<uint32_t>& s, const Line& l, Report& r) {
  if (auto n = number(l, r, 0, UINT32_MAX)) s.set(static_cast<uint32_t>(*n), l);
}

/// max-bps and bps-capacity: bytes per second (0: no limit), each direction on its own.
void bytes_per_s(Setting<uint64_t>& s, const Line& l, Report& r) {
  constexpr int64_t kMaxBytes = 125'000'000'000;  // callrelay's cap: 1 Tbit/s
  auto n = number(l, r, 0, kMaxBytes);
  if (!n) return;
  if (*n != 0 && *n < 1000) {
    r.skip(l, std::to_string(*n) +
                  " bytes/s is below callrelay's smallest cap (8 kbit/s = "
                  "1000 bytes/s)");
    return;
  }
  s.set(static_cast<uint64_t>(*n), l);
}

void peer_range(std::vector<Given<IpRange>>& to, const Line& l, Report& r) {
  std::string why;
  if (auto range = parse_range(l.value, why)) {
    to.push_back({*range, l.number});
  } else {
    r.skip(l, why);
  }
}

void allocation_family(const Line& l, Draft&, Report& r) {
  if (l.value == "ipv4") {
    r.cover(l, "callrelay relays IPv4 unless the client asks for IPv6 (RFC 8656 section 7.1)");
  } else {
    r.skip(l,
           "callrelay always follows RFC 8656: IPv4 unless the client sends "
           "REQUESTED-ADDRESS-FAMILY");
  }
}

void log_file(const Line& l, Draft&, Report& r) {
  if (l.value == "stdout" || l.value == "-" || l.value == "syslog") {
    r.cover(l, "callrelay logs to stderr: the journal under systemd (and syslog from there)");
  } else {
    r.skip(l,
           "callrelay logs to stderr (the journal under systemd), never to a file of its own; "
           "StandardOutput=append:FILE in the unit writes one");
  }
}

void tls_v12(const Line& l, Draft& d, Report& r) { set_flag(d.no_tlsv1_2, l, r); }

/// One option: what it does in the draft, or the text of a skip or cover.
struct Rule {
  std::string_view name;
  enum Kind { kMap, kSkip, kSkipFlag, kCover } kind;
  Apply map = nullptr;
  std::string_view text = {};  ///< kSkip, kSkipFlag (skipped when on), kCover
};

#define MAP(name, body)                                                \
  {                                                                    \
    name, Rule::kMap, [](const Line& l, Draft& d, Report& r) { body; } \
  }

constexpr std::string_view kNoDatabase =
    "callrelay keeps no user database: put static users in auth.users and REST secrets in "
    "auth.secrets (turnadmin -l and -S list them)";
constexpr std::string_view kNoCli =
    "callrelay has no telnet CLI: `callrelay ctl` talks to the admin API instead";
constexpr std::string_view kNoWebAdmin =
    "callrelay has no web admin: the status page at /status on the HTTP listener and "
    "`callrelay ctl` take its place";
constexpr std::string_view kSystemd =
    "not needed: systemd starts callrelay in the foreground as its own user";
constexpr std::string_view kAlternate =
    "callrelay sends ALTERNATE-SERVER only while draining (drain.alternate_servers); it does not "
    "redirect or balance at other times";

const Rule kRules[] = {
    MAP("listening-ip", listening_ip(l, d, r)),
    MAP("listening-port", set_port(d.listening_port, l, r, 1)),
    MAP("tls-listening-port", set_port(d.tls_port, l, r, 1)),
    MAP("alt-listening-port", set_port(d.alt_port, l, r, 0)),
    MAP("alt-tls-listening-port", set_port(d.alt_tls_port, l, r, 0)),
    MAP("relay-ip", relay_ip(l, d, r)),
    MAP("external-ip", external_ip(l, d, r)),
    MAP("relay-threads", relay_threads(l, d, r)),
    MAP("min-port", set_port(d.min_port, l, r, 0)),
    MAP("max-port", set_port(d.max_port, l, r, 0)),
    MAP("lt-cred-mech", set_flag(d.lt_cred_mech, l, r)),
    MAP("no-auth", set_flag(d.no_auth, l, r)),
    MAP("user", user(l, d, r)),
    MAP("use-auth-secret", set_flag(d.use_auth_secret, l, r)),
    MAP("static-auth-secret", static_auth_secret(l, d, r)),
    MAP("realm", realm(l, d, r)),
    MAP("rest-api-separator", separator(l, d, r)),
    MAP("stale-nonce", set_lifetime(d.stale_nonce, l, r, 600)),
    MAP("secure-stun", set_flag(d.secure_stun, l, r)),
    MAP("cert", path(d.cert, l, r)),
    MAP("pkey", path(d.pkey, l, r)),
    MAP("no-tlsv1_2", tls_v12(l, d, r)),
    MAP("user-quota", quota(d.user_quota, l, r)),
    MAP("total-quota", quota(d.total_quota, l, r)),
    MAP("max-bps", bytes_per_s(d.max_bps, l, r)),
    MAP("bps-capacity", bytes_per_s(d.bps_capacity, l, r)),
    MAP("max-allocate-lifetime", set_lifetime(d.max_allocate_lifetime, l, r, 3600)),
    MAP("channel-lifetime", set_lifetime(d.channel_lifetime, l, r, 600)),
    MAP("permission-lifetime", set_lifetime(d.permission_lifetime, l, r, 300)),
    MAP("no-udp", set_flag(d.no_udp, l, r)),
    MAP("no-tcp", set_flag(d.no_tcp, l, r)),
    MAP("no-tls", set_flag(d.no_tls, l, r)),
    MAP("no-dtls", set_flag(d.no_dtls, l, r)),
    MAP("no-rfc5780", set_flag(d.no_rfc5780, l, r)),
    MAP("no-tcp-relay", set_flag(d.no_tcp_relay, l, r)),
    MAP("allowed-peer-ip", peer_range(d.allowed, l, r)),
    MAP("denied-peer-ip", peer_range(d.denied, l, r)),
    MAP("allow-loopback-peers", set_flag(d.allow_loopback, l, r)),
    MAP("prometheus", set_flag(d.prometheus, l, r)),
    MAP("prometheus-port", set_port(d.prometheus_port, l, r, 1)),
    // coturn: Verbose (extra) wins over verbose whatever their order.
    MAP("verbose", if (flag(l, r).value_or(false) && !d.log_level) d.log_level.set("info", l)),
    MAP("Verbose", if (flag(l, r).value_or(false)) d.log_level.set("debug", l)),
    MAP("log-file", log_file(l, d, r)),
    MAP("allocation-default-address-family", allocation_family(l, d, r)),
    {"prometheus-username-labels", Rule::kCover, nullptr,
     "callrelay's per-allocation series always carry the user label"},
    {"no-tlsv1", Rule::kCover, nullptr, "callrelay never accepts TLS below 1.2"},
    {"no-tlsv1_1", Rule::kCover, nullptr, "callrelay never accepts TLS below 1.2"},
    {"no-sslv2", Rule::kCover, nullptr, "callrelay never accepts SSL"},
    {"no-sslv3", Rule::kCover, nullptr, "callrelay never accepts SSL"},
    {"no-multicast-peers", Rule::kCover, nullptr, "callrelay always refuses multicast peers"},
    {"no-loopback-peers", Rule::kCover, nullptr, "callrelay refuses loopback peers by default"},
    {"fingerprint", Rule::kCover, nullptr,
     "callrelay answers with FINGERPRINT whenever the request carries one"},
    {"no-stun-backward-compatibility", Rule::kCover, nullptr,
     "callrelay answers Binding with XOR-MAPPED-ADDRESS only"},
    {"response-origin-only-with-rfc5780", Rule::kCover, nullptr,
     "callrelay sends no RESPONSE-ORIGIN"},
    {"no-software-attribute", Rule::kCover, nullptr,
     "callrelay's SOFTWARE attribute names no version (the key `software`)"},
    {"prod", Rule::kCover, nullptr,
     "callrelay's SOFTWARE attribute names no version (the key `software`)"},
    {"syslog", Rule::kCover, nullptr,
     "callrelay logs to stderr: the journal under systemd (and syslog from there)"},
    {"no-stdout-log", Rule::kCover, nullptr, "callrelay logs to stderr only"},
    {"simple-log", Rule::kCover, nullptr, "callrelay never rolls or renames a log file"},
    {"new-log-timestamp", Rule::kCover, nullptr,
     "text lines carry no time (journald adds one); log.format json lines carry RFC 3339 UTC"},
    {"new-log-timestamp-format", Rule::kCover, nullptr,
     "text lines carry no time (journald adds one); log.format json lines carry RFC 3339 UTC"},
    {"log-binding", Rule::kCover, nullptr, "callrelay never logs Binding requests"},
    {"no-cli", Rule::kCover, nullptr, "callrelay has no telnet CLI (see `callrelay ctl`)"},
    {"daemon", Rule::kCover, nullptr, kSystemd},
    {"pidfile", Rule::kCover, nullptr, kSystemd},
    {"proc-user", Rule::kCover, nullptr, kSystemd},
    {"proc-group", Rule::kCover, nullptr, kSystemd},
    {"no-auth-pings", Rule::kCover, nullptr, "callrelay keeps no database to ping"},
    {"no-dynamic-ip-list", Rule::kCover, nullptr,
     "callrelay's peer lists come from the file (and change with a reload)"},
    {"no-dynamic-realms", Rule::kCover, nullptr, "callrelay has one realm, from the file"},
    {"secret-ts-exp-time", Rule::kCover, nullptr, "deprecated; no effect in coturn either"},
    {"ne", Rule::kCover, nullptr, "coturn-internal network engine choice"},
    {"dh566", Rule::kCover, nullptr, "callrelay's TLS uses ECDHE only, no DH parameters"},
    {"dh1066", Rule::kCover, nullptr, "callrelay's TLS uses ECDHE only, no DH parameters"},
    {"dh-file", Rule::kCover, nullptr, "callrelay's TLS uses ECDHE only, no DH parameters"},
    {"ec-curve-name", Rule::kCover, nullptr, "callrelay's TLS picks its ECDHE curves itself"},
    {"version", Rule::kCover, nullptr, "not a setting"},
    {"cipher-list", Rule::kSkip, nullptr,
     "callrelay's TLS cipher suites are fixed: forward-secret AEAD only (TLS 1.2 and 1.3)"},
    {"pkey-pwd", Rule::kSkip, nullptr,
     "callrelay reads unencrypted keys only: `openssl pkey -in KEY -out PLAIN` (mode 0600)"},
    {"CA-file", Rule::kSkip, nullptr, "callrelay does not verify client certificates"},
    {"listening-device", Rule::kSkip, nullptr,
     "callrelay binds addresses, not devices: use "
     "listening-ip's address in listen.udp/tcp/tls"},
    {"relay-device", Rule::kSkip, nullptr,
     "callrelay binds addresses, not devices: relay.bind_ipv4 / bind_ipv6"},
    {"tcp-proxy-port", Rule::kSkip, nullptr, "callrelay does not take the PROXY protocol"},
    {"aux-server", Rule::kSkip, nullptr,
     "add the endpoint to listen.udp and listen.tcp (callrelay has no 'auxiliary' servers)"},
    {"udp-self-balance", Rule::kSkipFlag, nullptr, kAlternate},
    {"alternate-server", Rule::kSkip, nullptr, kAlternate},
    {"tls-alternate-server", Rule::kSkip, nullptr, kAlternate},
    {"stun-only", Rule::kSkipFlag, nullptr, "callrelay always serves TURN"},
    {"no-stun", Rule::kSkipFlag, nullptr, "callrelay always answers Binding requests"},
    {"no-udp-relay", Rule::kSkipFlag, nullptr, "callrelay always offers UDP relaying"},
    {"server-name", Rule::kSkip, nullptr, "callrelay has no OAuth (RFC 7635)"},
    {"oauth", Rule::kSkipFlag, nullptr, "callrelay has no OAuth (RFC 7635)"},
    {"check-origin-consistency", Rule::kSkipFlag, nullptr, "callrelay ignores ORIGIN"},
    {"mobility", Rule::kSkipFlag, nullptr, "callrelay has no MICE mobility"},
    {"keep-address-family", Rule::kSkipFlag, nullptr,
     "callrelay always follows RFC 8656: IPv4 unless the client sends REQUESTED-ADDRESS-FAMILY"},
    {"server-relay", Rule::kSkipFlag, nullptr,
     "callrelay always checks permissions (RFC 8656 section 9)"},
    {"max-allocate-timeout", Rule::kSkip, nullptr,
     "callrelay keeps no half-made allocations to time out"},
    {"userdb", Rule::kSkip, nullptr, kNoDatabase},
    {"db", Rule::kSkip, nullptr, kNoDatabase},
    {"psql-userdb", Rule::kSkip, nullptr, kNoDatabase},
    {"sql-userdb", Rule::kSkip, nullptr, kNoDatabase},
    {"mysql-userdb", Rule::kSkip, nullptr, kNoDatabase},
    {"mongo-userdb", Rule::kSkip, nullptr, kNoDatabase},
    {"redis-userdb", Rule::kSkip, nullptr, kNoDatabase},
    {"secret-key-file", Rule::kSkip, nullptr, kNoDatabase},
    {"redis-statsdb", Rule::kSkip, nullptr,
     "callrelay publishes its figures at /metrics (Prometheus) and its records through "
     "calls.webhook"},
    {"cli-ip", Rule::kSkip, nullptr, kNoCli},
    {"cli-port", Rule::kSkip, nullptr, kNoCli},
    {"cli-password", Rule::kSkip, nullptr, kNoCli},
    {"cli-max-output-sessions", Rule::kSkip, nullptr, kNoCli},
    {"web-admin", Rule::kSkipFlag, nullptr, kNoWebAdmin},
    {"web-admin-ip", Rule::kSkip, nullptr, kNoWebAdmin},
    {"web-admin-port", Rule::kSkip, nullptr, kNoWebAdmin},
    {"web-admin-listen-on-workers", Rule::kSkipFlag, nullptr, kNoWebAdmin},
    {"acme-redirect", Rule::kSkip, nullptr, "callrelay's HTTP listener does not redirect ACME"},
    {"syslog-facility", Rule::kSkip, nullptr,
     "the facility is journald's: SyslogFacility= in the unit"},
};

#undef MAP

}  // namespace

void apply(const Line& l, Draft& d, Report& r) {
  const auto it = std::find_if(std::begin(kRules), std::end(kRules),
                               [&l](const Rule& rule) { return rule.name == l.name; });
  if (it == std::end(kRules)) {
    Line shown = l;
    shown.name = printable(l.name);
    r.skip(shown, "not a coturn 4.6 option (coturn reports 'Bad configuration format' too)");
    return;
  }
  switch (it->kind) {
    case Rule::kMap:
      it->map(l, d, r);
      return;
    case Rule::kCover:
      r.cover(l, it->text);
      return;
    case Rule::kSkipFlag:
      if (const auto on = flag(l, r); on && !*on) {
        r.cover(l, "off, as in callrelay");
        return;
      } else if (!on) {
        return;
      }
      [[fallthrough]];
    case Rule::kSkip:
      r.skip(l, std::string(it->text));
      return;
  }
}

}  // namespace callrelay::config::coturn
