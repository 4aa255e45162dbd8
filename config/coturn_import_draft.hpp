// Inside the coturn import: the lines of a turnserver.conf, what they set (the draft), and the
// report of what could not be carried over. coturn_import_options.cpp fills the draft from the
// lines; coturn_import_yaml.cpp writes it out as callrelay's YAML.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/coturn_import.hpp"
#include "config/coturn_import_ranges.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::config::coturn {

/// One option line of a turnserver.conf, split as coturn's parse_arg_string splits it.
struct Line {
  int number = 0;     ///< 1-based
  std::string name;   ///< up to the first space, tab or '='
  std::string value;  ///< the rest after the run of separators, outer double quotes removed
};

/// The option lines of a turnserver.conf (comment and blank lines dropped).
std::vector<Line> split_lines(std::string_view text);

/// A value some coturn option set, and which (for the comment next to the YAML key).
template <class T>
struct Setting {
  std::optional<T> value;
  std::string option;
  int line = 0;

  void set(T v, const Line& from) {
    value = std::move(v);
    option = from.name;
    line = from.number;
  }
  explicit operator bool() const { return value.has_value(); }
  const T& operator*() const { return *value; }
  /// "realm, line 12": where the value came from.
  std::string origin() const { return option + ", line " + std::to_string(line); }
};

/// A value that coturn options may give several times (listening-ip, static-auth-secret, ...).
template <class T>
struct Given {
  T value;
  int line = 0;
};

/// Everything a turnserver.conf says that callrelay can carry over, in coturn's terms.
struct Draft {
  // Listeners: every listening-ip (none: all addresses) on the UDP/TCP and TLS ports.
  std::vector<Given<stun::Endpoint>> listening_ips;
  Setting<uint16_t> listening_port, tls_port, alt_port, alt_tls_port;
  Setting<bool> no_udp, no_tcp, no_tls, no_dtls, no_rfc5780;
  // Relay sockets: every distinct relay-ip per family, in file order.
  std::vector<Given<stun::Endpoint>> relay_ipv4, relay_ipv6;
  Setting<stun::Endpoint> external_ipv4, external_ipv6;
  bool external_plain = false;  ///< external-ip without '/private' (coturn: no RFC 5780)
  Setting<uint16_t> min_port, max_port;
  Setting<unsigned> relay_threads;
  // Authentication.
  Setting<std::string> realm;
  Setting<bool> use_auth_secret, lt_cred_mech, no_auth, secure_stun;
  std::vector<Given<std::string>> secrets;
  std::vector<Given<std::pair<std::string, std::string>>> users;  ///< name, password
  std::vector<Line> user_lines;                                   ///< for the report
  Setting<char> separator;
  Setting<uint32_t> stale_nonce;
  // TLS.
  Setting<std::string> cert, pkey;
  Setting<bool> no_tlsv1_2;
  // Quotas, lifetimes and bandwidth (max-bps and bps-capacity in coturn's bytes per second).
  Setting<uint32_t> user_quota, total_quota;
  Setting<uint64_t> max_bps, bps_capacity;
  Setting<uint32_t> max_allocate_lifetime, channel_lifetime, permission_lifetime;
  Setting<bool> no_tcp_relay;
  // Peers.
  std::vector<Given<IpRange>> allowed, denied;
  Setting<bool> allow_loopback;
  // Metrics and logs.
  Setting<bool> prometheus;
  Setting<uint16_t> prometheus_port;
  Setting<std::string> log_level;
};

/// What could not be carried over, notes on what differs, and the options callrelay covers by
/// itself (written as comments so the operator sees each option was read).
struct Report {
  std::vector<CoturnSkipped> not_imported;
  std::vector<std::string> notes;
  /// Line and "OPTION (line N): how callrelay covers it".
  std::vector<std::pair<int, std::string>> covered;

  void skip(const Line& l, std::string reason) {
    not_imported.push_back({l.name, l.number, std::move(reason)});
  }
  void cover(const Line& l, std::string_view how) {
    covered.emplace_back(l.number,
                         l.name + " (line " + std::to_string(l.number) + "): " + std::string(how));
  }
};

/// Applies one option line to the draft (or records why it cannot be).
void apply(const Line& line, Draft& draft, Report& report);
/// The YAML text for the draft; may add to the report (values that only fail together).
std::string write_yaml(const Draft& draft, const CoturnImportOptions& options, Report& report);

/// `text` for a comment or message: control characters shown as '?', cut at 80 characters.
std::string printable(std::string_view text);

}  // namespace callrelay::config::coturn
