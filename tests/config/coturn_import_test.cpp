// The coturn import on Debian's shipped turnserver.conf and on realistic configurations: every
// mapped option is checked in the parsed result, and every output passes the same validation
// as --check-config (config::parse).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "config/coturn_import.hpp"
#include "relay/core/peer_policy.hpp"

namespace callrelay::config {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string data(const std::string& name) {
  return read(std::string(COTURN_DATA_DIR) + "/" + name);
}

/// The imported YAML parsed as --check-config parses a file; fails the test with the YAML and
/// the errors when it does not pass.
Config parse_imported(const CoturnImport& imp) {
  try {
    return parse(imp.yaml, "<imported>");
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "the imported configuration does not validate:\n"
                  << e.what() << "\n----\n"
                  << imp.yaml;
    return Config{};
  }
}

std::vector<std::string> strings(const std::vector<stun::Endpoint>& eps) {
  std::vector<std::string> out;
  for (const auto& e : eps) out.push_back(e.to_string());
  return out;
}

bool skipped(const CoturnImport& imp, const std::string& option) {
  return std::any_of(imp.not_imported.begin(), imp.not_imported.end(),
                     [&](const CoturnSkipped& s) { return s.option == option; });
}

bool has_note(const CoturnImport& imp, const std::string& part) {
  return std::any_of(imp.notes.begin(), imp.notes.end(),
                     [&](const std::string& n) { return n.find(part) != std::string::npos; });
}

/// Whether callrelay's peer policy, as configured, lets an allocation reach `ip`.
bool peer_allowed(const Config& cfg, const std::string& ip) {
  const core::PeerPolicy policy(cfg.peers);
  return !policy.check(*stun::Endpoint::parse_ip(ip, 4000)).has_value();
}

TEST(CoturnImport, DebiansShippedFileGivesCoturnsDefaults) {
  const CoturnImport imp = import_coturn(data("debian-turnserver.conf"));
  const Config cfg = parse_imported(imp);
  // Its four active lines (syslog, no-rfc5780, ...) are all covered by callrelay as it is.
  EXPECT_TRUE(imp.not_imported.empty()) << describe(imp.not_imported.front());
  EXPECT_EQ(strings(cfg.listen.udp), (std::vector<std::string>{"0.0.0.0:3478", "[::]:3478"}));
  EXPECT_EQ(strings(cfg.listen.tcp), strings(cfg.listen.udp));
  EXPECT_TRUE(cfg.listen.tls.empty());
  EXPECT_EQ(cfg.relay.port_min, 49152);
  EXPECT_EQ(cfg.relay.port_max, 65535);
  EXPECT_NE(imp.yaml.find("#   syslog (line"), std::string::npos);
  EXPECT_TRUE(has_note(imp, "anonymous"));
}

/// Every option Debian's file documents, uncommented (the example values), is known: mapped,
/// covered or reported with a reason, never "not a coturn option".
TEST(CoturnImport, EveryOptionDebiansFileDocumentsIsKnown) {
  std::istringstream in(data("debian-turnserver.conf"));
  std::string all, line;
  int options = 0;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] != '#' || !std::isalpha(static_cast<unsigned char>(line[1])))
      continue;
    const size_t end = line.find_first_not_of(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", 1);
    if (end != std::string::npos && line[end] != '=' && line.compare(end, 2, " \"") != 0)
      continue;  // prose such as "#Local system IP address ..."
    all += line.substr(1) + "\n";
    ++options;
  }
  EXPECT_GT(options, 100);
  const CoturnImport imp = import_coturn(all);
  for (const CoturnSkipped& s : imp.not_imported)
    EXPECT_EQ(s.reason.find("not a coturn"), std::string::npos) << describe(s);
}

TEST(CoturnImport, RestSecretBehindNat) {
  const CoturnImport imp = import_coturn(data("rest-behind-nat.conf"));
  const Config cfg = parse_imported(imp);
  EXPECT_EQ(strings(cfg.listen.udp), std::vector<std::string>{"10.0.0.5:3478"});
  EXPECT_EQ(strings(cfg.listen.tcp), std::vector<std::string>{"10.0.0.5:3478"});
  EXPECT_TRUE(cfg.listen.tls.empty());
  ASSERT_EQ(cfg.relay.bind_ipv4.size(), 1u);
  EXPECT_EQ(cfg.relay.bind_ipv4[0].ip_string(), "10.0.0.5");
  EXPECT_EQ(cfg.relay.external_ipv4->ip_string(), "203.0.113.7");
  EXPECT_FALSE(cfg.relay.external_ipv6.has_value());
  EXPECT_EQ(cfg.relay.port_min, 49160);
  EXPECT_EQ(cfg.relay.port_max, 59200);
  EXPECT_EQ(cfg.auth.rest_secrets, std::vector<std::string>{"9f2c7e1b5d8a4e6f0c3b7a9d1e5f2a8c"});
  EXPECT_TRUE(cfg.auth.static_users.empty());
  EXPECT_EQ(cfg.auth.realm, "turn.example.com");
  EXPECT_EQ(cfg.core.max_allocations, 1200u);
  EXPECT_EQ(cfg.nonce_lifetime_s, 600u);
  EXPECT_TRUE(cfg.http.enabled);
  EXPECT_EQ(cfg.http.listen.to_string(), "0.0.0.0:9641");
  // The deny ranges as CIDR blocks, and what they mean.
  for (const char* ip : {"10.1.2.3", "172.20.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254"})
    EXPECT_FALSE(peer_allowed(cfg, ip)) << ip;
  EXPECT_TRUE(peer_allowed(cfg, "93.184.216.34"));
  EXPECT_NE(imp.yaml.find("\"0.0.0.0/8\""), std::string::npos);
  EXPECT_NE(imp.yaml.find("\"172.16.0.0/12\""), std::string::npos);
  // coturn writes a file; callrelay does not.
  EXPECT_TRUE(skipped(imp, "log-file"));
  EXPECT_EQ(imp.not_imported.size(), 1u) << describe(imp.not_imported.back());
}

TEST(CoturnImport, TlsWithQuotas) {
  const auto dir = std::filesystem::temp_directory_path() / "callrelay-coturn-import-tls";
  std::filesystem::create_directories(dir / "certs");
  std::ofstream(dir / "certs" / "fullchain.pem") << "certificate";
  std::ofstream(dir / "certs" / "privkey.pem") << "key";
  CoturnImportOptions o;
  o.base_dir = dir.string();
  const CoturnImport imp = import_coturn(data("tls-quotas.conf"), o);
  const Config cfg = parse_imported(imp);
  std::filesystem::remove_all(dir);
  // Two addresses and no no-rfc5780: coturn listened on the alternate ports too.
  const std::vector<std::string> plain = {"192.0.2.10:3478", "192.0.2.10:3479",
                                          "[2001:db8::10]:3478", "[2001:db8::10]:3479"};
  EXPECT_EQ(strings(cfg.listen.udp), plain);
  EXPECT_EQ(strings(cfg.listen.tcp), plain);
  EXPECT_EQ(strings(cfg.listen.tls),
            (std::vector<std::string>{"192.0.2.10:443", "192.0.2.10:5350", "[2001:db8::10]:443",
                                      "[2001:db8::10]:5350"}));
  EXPECT_EQ(cfg.tls.cert, (dir / "certs" / "fullchain.pem").string());
  EXPECT_EQ(cfg.tls.key, (dir / "certs" / "privkey.pem").string());
  EXPECT_EQ(cfg.tls.min_version, "1.2");
  EXPECT_EQ(cfg.auth.rest_secrets,
            (std::vector<std::string>{"first-secret-3c9a", "second-secret-77d1"}));
  EXPECT_EQ(cfg.auth.realm, "voice.example.org");
  EXPECT_EQ(cfg.core.max_allocations_per_user, 12u);
  EXPECT_EQ(cfg.core.max_allocations, 1000u);
  EXPECT_EQ(cfg.core.bandwidth.max_bps, 24'000'000u);           // 3 MB/s
  EXPECT_EQ(cfg.core.bandwidth.total_max_bps, 1'000'000'000u);  // 125 MB/s
  EXPECT_EQ(cfg.core.max_lifetime_s, 1800u);
  EXPECT_EQ(cfg.core.default_lifetime_s, 600u);
  EXPECT_EQ(cfg.workers, 4u);
  EXPECT_EQ(cfg.log.level, "info");
  for (const char* o2 : {"cipher-list", "cli-ip", "cli-port", "cli-password"})
    EXPECT_TRUE(skipped(imp, o2)) << o2;
  EXPECT_FALSE(skipped(imp, "dh-file"));  // covered: ECDHE only
  EXPECT_TRUE(has_note(imp, "DTLS"));
  EXPECT_TRUE(has_note(imp, "RFC 5780"));
  // The CLI password is named, never shown.
  EXPECT_EQ(imp.yaml.find("cli-pass-do-not-print"), std::string::npos);
  for (const CoturnSkipped& s : imp.not_imported)
    EXPECT_EQ(s.reason.find("cli-pass-do-not-print"), std::string::npos);
}

TEST(CoturnImport, LockedDownPeersAndStaticUsers) {
  const CoturnImport imp = import_coturn(data("locked-down.conf"));
  const Config cfg = parse_imported(imp);
  EXPECT_TRUE(imp.not_imported.empty()) << describe(imp.not_imported.front());
  EXPECT_EQ(strings(cfg.listen.udp), std::vector<std::string>{"198.51.100.20:3478"});
  EXPECT_EQ(cfg.auth.static_users.at("alice"), "wonderland");
  EXPECT_EQ(cfg.auth.static_users.at("bob"), "correct horse: battery #staple");
  EXPECT_TRUE(cfg.auth.rest_secrets.empty());
  EXPECT_EQ(cfg.auth.realm, "corp.example");
  EXPECT_TRUE(cfg.core.require_auth_for_binding);
  EXPECT_FALSE(cfg.core.tcp_relay);
  EXPECT_EQ(cfg.nonce_lifetime_s, 300u);
  EXPECT_EQ(cfg.core.channel_lifetime_s, 600u);
  EXPECT_EQ(cfg.core.permission_lifetime_s, 300u);
  // coturn: allowed beats denied. The same addresses get through callrelay, and only those.
  for (const char* ip :
       {"192.0.2.50", "192.0.2.64", "192.0.2.100", "192.0.2.127", "83.166.68.45", "2001:db8:5::1"})
    EXPECT_TRUE(peer_allowed(cfg, ip)) << ip;
  for (const char* ip : {"192.0.2.49", "192.0.2.51", "192.0.2.128", "83.166.68.44", "8.8.8.8",
                         "203.0.113.1", "2001:db8:5::2", "2a00:1450::1"})
    EXPECT_FALSE(peer_allowed(cfg, ip)) << ip;
}

TEST(CoturnImport, LineSyntaxAsCoturnReadsIt) {
  const CoturnImport imp = import_coturn(
      "  realm = \"quoted.example\"  \r\n"
      "\t# an indented comment\n"
      "listening-port\t3479\n"
      "min-port=50000\n"
      "lt-cred-mech=yes\n"
      "user=carol: pass with spaces \n"
      "no-tcp=off\n"
      "no-tls");
  const Config cfg = parse_imported(imp);
  EXPECT_EQ(cfg.auth.realm, "quoted.example");
  // Every address and no no-rfc5780: the RFC 5780 alternate port (listening-port + 1) too.
  EXPECT_EQ(strings(cfg.listen.udp),
            (std::vector<std::string>{"0.0.0.0:3479", "0.0.0.0:3480", "[::]:3479", "[::]:3480"}));
  EXPECT_EQ(cfg.listen.tcp.size(), 4u);  // no-tcp=off keeps TCP
  EXPECT_EQ(cfg.relay.port_min, 50000);
  EXPECT_EQ(cfg.auth.static_users.at("carol"), "pass with spaces");
}

TEST(CoturnImport, BadValuesAndUnknownOptionsAreReportedWithTheirLine) {
  const CoturnImport imp = import_coturn(
      "listening-port=34x78\n"
      "no-tcp=maybe\n"
      "listening-ip=turn.example.com\n"
      "denied-peer-ip=10.0.0.9-10.0.0.1\n"
      "max-bps=100\n"
      "min-port=80\n"
      "frobnicate=1\n"
      "no-udp\n");
  const Config cfg = parse_imported(imp);
  EXPECT_EQ(strings(cfg.listen.udp),  // coturn's defaults: every address, 3478 and 3479
            (std::vector<std::string>{"0.0.0.0:3478", "0.0.0.0:3479", "[::]:3478", "[::]:3479"}));
  EXPECT_EQ(cfg.relay.port_min, 49152);
  EXPECT_EQ(cfg.core.bandwidth.max_bps, Config{}.core.bandwidth.max_bps);
  for (const char* o : {"listening-port", "no-tcp", "listening-ip", "denied-peer-ip", "max-bps",
                        "min-port", "frobnicate", "no-udp"})
    EXPECT_TRUE(skipped(imp, o)) << o;
  const auto it = std::find_if(imp.not_imported.begin(), imp.not_imported.end(),
                               [](const CoturnSkipped& s) { return s.option == "frobnicate"; });
  EXPECT_EQ(it->line, 7);
  EXPECT_NE(imp.yaml.find("# not imported: frobnicate: not a coturn 4.6 option"),
            std::string::npos);
}

TEST(CoturnImport, AuthenticationRulesOfCoturn) {
  // With use-auth-secret coturn ignores user= lines; a turnadmin key is no password.
  const CoturnImport rest = import_coturn(
      "use-auth-secret\nstatic-auth-secret=s3cret-value\nuser=dave:pw\nrest-api-separator=-\n");
  const Config a = parse_imported(rest);
  EXPECT_TRUE(a.auth.static_users.empty());
  EXPECT_EQ(a.auth.rest_separator, '-');
  EXPECT_TRUE(skipped(rest, "user"));
  const CoturnImport keys = import_coturn(
      "lt-cred-mech\nuser=erin:0xbc807ee29df3c9ffa736523fb2c4e8ee\nuser=frank:pw1\n"
      "user=frank:pw2\nno-auth\npkey-pwd=hunter2\nstatic-auth-secret=\n");
  const Config b = parse_imported(keys);
  EXPECT_EQ(b.auth.static_users.size(), 1u);
  EXPECT_EQ(b.auth.static_users.at("frank"), "pw2");  // the last line wins, as in coturn
  for (const char* o : {"user", "no-auth", "pkey-pwd", "static-auth-secret"})
    EXPECT_TRUE(skipped(keys, o)) << o;
  for (const CoturnSkipped& s : keys.not_imported) {
    EXPECT_EQ(s.reason.find("bc807ee2"), std::string::npos) << describe(s);
    EXPECT_EQ(s.reason.find("hunter2"), std::string::npos) << describe(s);
  }
  // use-auth-secret alone: the secrets were in coturn's database.
  EXPECT_TRUE(skipped(import_coturn("use-auth-secret\n"), "use-auth-secret"));
  EXPECT_TRUE(has_note(import_coturn("listening-port=3478\n"), "anonymous"));
}

TEST(CoturnImport, LifetimesTlsVersionAndExternalAddresses) {
  const auto dir = std::filesystem::temp_directory_path() / "callrelay-coturn-import-tls13";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "c.pem") << "certificate";
  std::ofstream(dir / "k.pem") << "key";
  const CoturnImport imp = import_coturn(
      "max-allocate-lifetime=300\nstale-nonce=0\nchannel-lifetime=100000\n"
      "cert=" +
      (dir / "c.pem").string() + "\npkey=" + (dir / "k.pem").string() +
      "\n"
      "no-tlsv1_2\nexternal-ip=203.0.113.9\nexternal-ip=203.0.113.10\n"
      "external-ip=2001:db8::9/fd00::9\nrelay-threads=0\nVerbose\nverbose\nallow-loopback-peers\n");
  const Config cfg = parse_imported(imp);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(cfg.core.max_lifetime_s, 300u);
  EXPECT_EQ(cfg.core.default_lifetime_s, 300u);  // never above max_lifetime
  EXPECT_EQ(cfg.nonce_lifetime_s, 86400u);
  EXPECT_EQ(cfg.core.channel_lifetime_s, 86400u);
  EXPECT_EQ(cfg.tls.min_version, "1.3");
  EXPECT_EQ(cfg.listen.tls.size(), 2u);  // every address at 5349; no RFC 5780 (external-ip)
  EXPECT_EQ(cfg.listen.udp.size(), 2u);
  EXPECT_EQ(cfg.relay.external_ipv4->ip_string(), "203.0.113.9");
  EXPECT_EQ(cfg.relay.external_ipv6->ip_string(), "2001:db8::9");
  EXPECT_TRUE(skipped(imp, "external-ip"));  // the second IPv4 one
  EXPECT_EQ(cfg.workers, 1u);                // coturn's 0: one relay thread
  EXPECT_EQ(cfg.log.level, "debug");
  EXPECT_TRUE(peer_allowed(cfg, "127.0.0.1"));
  EXPECT_TRUE(peer_allowed(cfg, "::1"));
  EXPECT_TRUE(has_note(imp, "stale-nonce 0"));
}

TEST(CoturnImport, ValuesThatLookLikeYamlStayText) {
  const CoturnImport imp = import_coturn(
      "lt-cred-mech\nrealm=\"a \\\"b\\\" # c\"\nuser=*star:&anchor: [x] {y} 'z' \\ \x01\n");
  const Config cfg = parse_imported(imp);
  EXPECT_EQ(cfg.auth.realm, "a \\\"b\\\" # c");
  EXPECT_EQ(cfg.auth.static_users.at("*star"), "&anchor: [x] {y} 'z' \\ \x01");
}

}  // namespace
}  // namespace callrelay::config

namespace callrelay::config {
namespace {

/// Files of random option lines (every option Debian's file documents but cert and pkey, whose
/// files would have to exist, and some unknown ones) with values good, bad and hostile: the
/// import never fails and what it writes always validates.
TEST(CoturnImport, AnyFileGivesAValidConfiguration) {
  std::vector<std::string> names = {"frobnicate", "", "=", "user", "static-auth-secret"};
  std::istringstream in(data("debian-turnserver.conf"));
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 2 || line[0] != '#' || !std::isalpha(static_cast<unsigned char>(line[1])))
      continue;
    const size_t end = line.find_first_of("= \t", 1);
    const std::string name = line.substr(1, end == std::string::npos ? end : end - 1);
    if (name != "cert" && name != "pkey" && name.find(':') == std::string::npos)
      names.push_back(name);
  }
  const std::vector<std::string> values = {"",
                                           "0",
                                           "1",
                                           "3478",
                                           "65535",
                                           "70000",
                                           "-5",
                                           "on",
                                           "off",
                                           "maybe",
                                           "10.0.0.1",
                                           "::1",
                                           "10.0.0.1-10.0.0.9",
                                           "2001:db8::1-2001:db8::ff",
                                           "0.0.0.0-255.255.255.255",
                                           "203.0.113.7/10.0.0.5",
                                           "2001:db8::7/fd00::7",
                                           "alice:secret",
                                           "bob:0xabc",
                                           "x:",
                                           "\"quoted value\"",
                                           "a: b # c",
                                           "*&!|>'\"%@`",
                                           std::string("ctl\x01\x7f", 5),
                                           "ipv4",
                                           "keep",
                                           std::string(600, 'u') + ":pw",
                                           "\xc3\xa9t\xc3\xa9"};
  std::mt19937 rng(20261203);
  for (int file = 0; file < 300; ++file) {
    std::string text;
    const int lines = static_cast<int>(rng() % 40);
    for (int i = 0; i < lines; ++i) {
      text += names[rng() % names.size()];
      if (rng() % 4 != 0) text += (rng() % 2 ? "=" : " ") + values[rng() % values.size()];
      text += rng() % 8 == 0 ? "\r\n" : "\n";
    }
    const CoturnImport imp = import_coturn(text);
    try {
      (void)parse(imp.yaml, "<imported>");
    } catch (const ConfigError& e) {
      ADD_FAILURE() << e.what() << "\n---- coturn file:\n" << text << "\n---- YAML:\n" << imp.yaml;
      return;
    }
  }
}

}  // namespace
}  // namespace callrelay::config
