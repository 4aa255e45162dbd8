// config: YAML into Config, and every kind of error naming the key path and the line.
#include "config/config.hpp"
#include "config_test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace callrelay::config {
namespace {

using stun::Endpoint;

using test::error_of;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// A fresh directory for files a test writes; removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "callrelay-config-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    const auto p = path_ / name;
    std::ofstream(p) << content;
    return p.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(ConfigParse, FullFileMapsEveryKey) {
  const Config c = parse(R"(
listen:
  udp: ["127.0.0.1:3479", "[::1]:3479"]
relay:
  ports: {min: 61000, max: 65000}
  bind_ipv4: "127.0.0.1"
  bind_ipv6: "::1"
  external_ipv4: 203.0.113.7
  external_ipv6: "[2001:db8::7]"
workers: 3
state_dir: /tmp/state
realm: example.org
software: relay-x
auth:
  secrets: ["s1", "s2"]
  separator: "-"
  users: {alice: "pw1", bob: pw2}
  nonce_lifetime: 120
allocations:
  default_lifetime: 300
  max_lifetime: 1200
  permission_lifetime: 200
  channel_lifetime: 400
  reservation_lifetime: 20
  max_per_user: 7
  max_total: 9
  max_permissions: 5
  max_channels: 6
binding_requires_auth: yes
peers:
  allow: ["127.0.0.0/8", "::1/128"]
  deny: ["127.0.0.2"]
log:
  level: debug
)");
  ASSERT_EQ(c.listen.udp.size(), 2u);
  EXPECT_EQ(c.listen.udp[0], *Endpoint::parse("127.0.0.1:3479"));
  EXPECT_EQ(c.listen.udp[1], *Endpoint::parse("[::1]:3479"));
  EXPECT_EQ(c.relay.port_min, 61000);
  EXPECT_EQ(c.relay.port_max, 65000);
  ASSERT_EQ(c.relay.bind_ipv4.size(), 1u);
  EXPECT_EQ(c.relay.bind_ipv4[0].ip_string(), "127.0.0.1");
  ASSERT_EQ(c.relay.bind_ipv6.size(), 1u);
  EXPECT_EQ(c.relay.bind_ipv6[0].ip_string(), "::1");
  EXPECT_EQ(c.relay.external_ipv4->ip_string(), "203.0.113.7");
  EXPECT_EQ(c.relay.external_ipv6->ip_string(), "2001:db8::7");
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.state_dir, "/tmp/state");
  EXPECT_EQ(c.auth.realm, "example.org");
  EXPECT_EQ(c.core.software, "relay-x");
  EXPECT_EQ(c.auth.rest_secrets, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_EQ(c.auth.rest_separator, '-');
  EXPECT_EQ(c.auth.static_users.at("alice"), "pw1");
  EXPECT_EQ(c.auth.static_users.at("bob"), "pw2");
  EXPECT_EQ(c.nonce_lifetime_s, 120u);
  EXPECT_EQ(c.core.default_lifetime_s, 300u);
  EXPECT_EQ(c.core.max_lifetime_s, 1200u);
  EXPECT_EQ(c.core.permission_lifetime_s, 200u);
  EXPECT_EQ(c.core.channel_lifetime_s, 400u);
  EXPECT_EQ(c.core.reservation_lifetime_s, 20u);
  EXPECT_EQ(c.core.max_allocations_per_user, 7u);
  EXPECT_EQ(c.core.max_allocations, 9u);
  EXPECT_EQ(c.core.max_permissions_per_allocation, 5u);
  EXPECT_EQ(c.core.max_channels_per_allocation, 6u);
  EXPECT_TRUE(c.core.require_auth_for_binding);
  ASSERT_EQ(c.peers.allow.size(), 2u);
  EXPECT_TRUE(c.peers.allow[0].contains(*Endpoint::parse("127.9.8.7:1")));
  EXPECT_FALSE(c.peers.allow[0].contains(*Endpoint::parse("128.0.0.1:1")));
  EXPECT_TRUE(c.peers.allow[1].contains(*Endpoint::parse("[::1]:1")));
  ASSERT_EQ(c.peers.deny.size(), 1u);
  EXPECT_TRUE(c.peers.deny[0].contains(*Endpoint::parse("127.0.0.2:1")));
  EXPECT_FALSE(c.peers.deny[0].contains(*Endpoint::parse("127.0.0.3:1")));
  EXPECT_EQ(c.log.level, "debug");
}

TEST(ConfigParse, EmptyDocumentGivesDefaultsListeningOn3478) {
  const Config c = parse("");
  ASSERT_EQ(c.listen.udp.size(), 2u);
  EXPECT_EQ(c.listen.udp[0], *Endpoint::parse("0.0.0.0:3478"));
  EXPECT_EQ(c.listen.udp[1], *Endpoint::parse("[::]:3478"));
  EXPECT_EQ(c.relay.port_min, 49152);
  EXPECT_EQ(c.relay.port_max, 65535);
  EXPECT_TRUE(c.relay.bind_ipv4.empty());
  EXPECT_TRUE(c.auth.rest_secrets.empty());
  EXPECT_EQ(c.auth.realm, "callrelay");
}

TEST(ConfigParse, EmbeddedDefaultParsesWithoutSecrets) {
  const Config c = parse(default_yaml(), "<default>");
  ASSERT_EQ(c.listen.udp.size(), 2u);
  EXPECT_EQ(c.listen.udp[0].port, 3478);
  EXPECT_TRUE(c.auth.rest_secrets.empty());  // the app generates one in state_dir
  EXPECT_TRUE(c.auth.static_users.empty());
  EXPECT_TRUE(c.peers.allow.empty());  // secure by default: no loopback peers
  EXPECT_EQ(c.state_dir, "/var/lib/callrelay");
  EXPECT_EQ(c.core.default_lifetime_s, 600u);
  EXPECT_EQ(c.core.max_lifetime_s, 3600u);
}

TEST(ConfigParse, ExampleFileParsesToTheDefaults) {
  const Config example = load_file(CALLRELAY_EXAMPLE_CONFIG);
  const Config defaults = parse(default_yaml());
  EXPECT_EQ(example.listen.udp, defaults.listen.udp);
  EXPECT_EQ(example.relay.port_min, defaults.relay.port_min);
  EXPECT_EQ(example.relay.port_max, defaults.relay.port_max);
  EXPECT_EQ(example.workers, defaults.workers);
  EXPECT_EQ(example.state_dir, defaults.state_dir);
  EXPECT_EQ(example.auth.realm, defaults.auth.realm);
  EXPECT_EQ(example.core.max_lifetime_s, defaults.core.max_lifetime_s);
  EXPECT_EQ(example.core.reservation_lifetime_s, defaults.core.reservation_lifetime_s);
  EXPECT_EQ(example.core.max_channels_per_allocation, defaults.core.max_channels_per_allocation);
  EXPECT_TRUE(example.auth.rest_secrets.empty());
}

TEST(ConfigParse, ExampleFileDocumentsEveryKey) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  // Every key the schema accepts (FullFileMapsEveryKey proves each is accepted), appearing as
  // "key:" or, for optional ones shown commented out, "# key:".
  const char* keys[] = {"listen",
                        "udp",
                        "relay",
                        "ports",
                        "min",
                        "max",
                        "bind_ipv4",
                        "bind_ipv6",
                        "external_ipv4",
                        "external_ipv6",
                        "workers",
                        "state_dir",
                        "realm",
                        "software",
                        "auth",
                        "secrets",
                        "secret_file",
                        "separator",
                        "users",
                        "nonce_lifetime",
                        "allocations",
                        "default_lifetime",
                        "max_lifetime",
                        "permission_lifetime",
                        "channel_lifetime",
                        "reservation_lifetime",
                        "max_per_user",
                        "max_total",
                        "max_permissions",
                        "max_channels",
                        "binding_requires_auth",
                        "peers",
                        "allow",
                        "deny",
                        "log",
                        "level"};
  for (const char* key : keys) {
    const std::string k = key;
    const bool found = example.find("\n" + k + ":") != std::string::npos ||
                       example.find(" " + k + ":") != std::string::npos ||
                       example.find("{" + k + ":") != std::string::npos;
    EXPECT_TRUE(found) << "config/callrelay.example.yaml does not document '" << key << "'";
  }
}

TEST(ConfigParse, NullOptionalAddressMeansUnset) {
  const Config c = parse("relay:\n  bind_ipv4: ~\n  external_ipv6:\n");
  EXPECT_TRUE(c.relay.bind_ipv4.empty());
  EXPECT_FALSE(c.relay.external_ipv6.has_value());
}

struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* expected;  ///< must appear in the message: "test.yaml:LINE: key 'PATH': ..."
};

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, NameKeyAndLine) {
  const std::string message = error_of(GetParam().yaml);
  EXPECT_NE(message.find(GetParam().expected), std::string::npos)
      << "message:  " << message << "\nexpected: " << GetParam().expected;
  EXPECT_EQ(lines_of(message).size(), 1u) << message;
}

INSTANTIATE_TEST_SUITE_P(
    EachKind, ConfigErrors,
    ::testing::Values(
        ErrorCase{
            "PortBelow1024", "relay:\n  ports:\n    min: 80\n",
            "test.yaml:3: key 'relay.ports.min': must be an integer from 1024 to 65535, not '80'"},
        ErrorCase{"PortAbove65535", "relay:\n  ports: {max: 70000}\n",
                  "test.yaml:2: key 'relay.ports.max': must be an integer from 1024"},
        ErrorCase{"PortsMinAboveMax", "relay:\n  ports:\n    min: 62000\n    max: 61000\n",
                  "test.yaml:3: key 'relay.ports.min': must not be above relay.ports.max (61000)"},
        ErrorCase{"PortsMaxBelowDefaultMin", "relay:\n  ports: {max: 40000}\n",
                  "test.yaml:2: key 'relay.ports.max': must not be below relay.ports.min (49152)"},
        ErrorCase{"ZeroLifetime", "\nallocations:\n  permission_lifetime: 0\n",
                  "test.yaml:3: key 'allocations.permission_lifetime': must be an integer from 1"},
        ErrorCase{"DefaultAboveMax", "allocations:\n  default_lifetime: 4000\n",
                  "test.yaml:2: key 'allocations.default_lifetime': must not be above "
                  "allocations.max_lifetime (3600)"},
        ErrorCase{"MaxBelowDefaultDefault", "allocations:\n  max_lifetime: 300\n",
                  "test.yaml:2: key 'allocations.max_lifetime': must not be below "
                  "allocations.default_lifetime (600)"},
        ErrorCase{"NotANumber", "workers: many\n",
                  "test.yaml:1: key 'workers': must be an integer from 0 to 1024, not 'many'"},
        ErrorCase{"NegativeNumber", "auth:\n  nonce_lifetime: -5\n",
                  "test.yaml:2: key 'auth.nonce_lifetime': must be an integer"},
        ErrorCase{"SeparatorTwoChars", "auth:\n  separator: \"::\"\n",
                  "test.yaml:2: key 'auth.separator': must be exactly one character"},
        ErrorCase{"SeparatorDigit", "auth:\n  separator: \"7\"\n",
                  "test.yaml:2: key 'auth.separator': must be exactly one character, not a digit"},
        ErrorCase{"EmptySecret", "auth:\n  secrets:\n    - good\n    - \"\"\n",
                  "test.yaml:4: key 'auth.secrets[1]': a secret must not be empty"},
        ErrorCase{"EmptyPassword", "auth:\n  users:\n    alice: \"\"\n",
                  "test.yaml:3: key 'auth.users.alice': the password must not be empty"},
        ErrorCase{"BadCidr", "peers:\n  allow:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n",
                  "test.yaml:4: key 'peers.allow[1]': must be an address range"},
        ErrorCase{"CidrGarbage", "peers:\n  deny: [\"nonsense\"]\n",
                  "test.yaml:2: key 'peers.deny[0]': must be an address range"},
        ErrorCase{"ListenNoPort", "listen:\n  udp:\n    - 0.0.0.0\n",
                  "test.yaml:3: key 'listen.udp[0]': must be an address and port"},
        ErrorCase{"ListenEmpty", "listen:\n  udp: []\n",
                  "test.yaml:2: key 'listen.udp': must list at least one address:port"},
        ErrorCase{"ListenTwice", "listen:\n  udp: [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
                  "test.yaml:2: key 'listen.udp[1]': '127.0.0.1:1' is listed twice"},
        ErrorCase{"BindWrongFamily", "relay:\n  bind_ipv4: \"::1\"\n",
                  "test.yaml:2: key 'relay.bind_ipv4': must be an IPv4 address"},
        ErrorCase{"ExternalWithPort", "relay:\n  external_ipv6: \"[2001:db8::1]:5\"\n",
                  "test.yaml:2: key 'relay.external_ipv6': must be an IPv6 address"},
        ErrorCase{"NotABool", "binding_requires_auth: maybe\n",
                  "test.yaml:1: key 'binding_requires_auth': must be true or false, not 'maybe'"},
        ErrorCase{"BadLogLevel", "log:\n  level: loud\n",
                  "test.yaml:2: key 'log.level': must be one of error, warn, info, debug"},
        ErrorCase{"ListWhereScalar", "realm: [a, b]\n",
                  "test.yaml:1: key 'realm': must be a string, not a list"},
        ErrorCase{"ScalarWhereMap", "relay: 5\n",
                  "test.yaml:1: key 'relay': must be a mapping of keys"},
        ErrorCase{"ScalarWhereList", "auth:\n  secrets: abc\n",
                  "test.yaml:2: key 'auth.secrets': must be a list"},
        ErrorCase{"RealmTooLong",
                  "realm: "
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
                  "test.yaml:1: key 'realm': must have 1 to 127 characters"},
        ErrorCase{"DuplicateKey", "workers: 1\nworkers: 2\n",
                  "test.yaml:2: key 'workers': duplicate key"},
        ErrorCase{"UnknownKeyWithSuggestion", "relay:\n  prots: {min: 61000}\n",
                  "test.yaml:2: key 'relay.prots': unknown key; did you mean 'relay.ports'?"},
        ErrorCase{"UnknownTopLevelKey", "workers: 1\nfrobnicate: true\n",
                  "test.yaml:2: key 'frobnicate': unknown key"},
        ErrorCase{"TopLevelNotAMap", "- a\n- b\n", "test.yaml:1: the top level must be a mapping"}),
    [](const ::testing::TestParamInfo<ErrorCase>& p) { return std::string(p.param.name); });

TEST(ConfigParse, UnknownKeyFarFromAnyHasNoSuggestion) {
  const std::string message = error_of("frobnicate: 1\n");
  EXPECT_NE(message.find("key 'frobnicate': unknown key"), std::string::npos) << message;
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST(ConfigParse, SyntaxErrorNamesItsLine) {
  const std::string message = error_of("workers: 1\nlisten:\n  udp: [\"0.0.0.0:3478\"\nrealm: x\n");
  EXPECT_EQ(message.rfind("test.yaml:", 0), 0u) << message;
  EXPECT_NE(message.find("YAML syntax error"), std::string::npos) << message;
  const std::string bad_indent = error_of("relay:\n  ports: {min: 61000}\n bad: 1\n");
  EXPECT_NE(bad_indent.find("test.yaml:3: YAML syntax error"), std::string::npos) << bad_indent;
}

TEST(ConfigParse, CollectsEveryErrorInDocumentOrder) {
  const std::string message = error_of(R"(workers: -1
relay:
  ports: {min: 10, max: 61000}
  bind_ipv4: nope
auth:
  separator: "ab"
peers:
  allow: ["300.0.0.0/8"]
lgo: {level: info}
)");
  const auto lines = lines_of(message);
  ASSERT_EQ(lines.size(), 6u) << message;
  EXPECT_EQ(lines[0].rfind("test.yaml:1: key 'workers'", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("test.yaml:3: key 'relay.ports.min'", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("test.yaml:4: key 'relay.bind_ipv4'", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind("test.yaml:6: key 'auth.separator'", 0), 0u) << lines[3];
  EXPECT_EQ(lines[4].rfind("test.yaml:8: key 'peers.allow[0]'", 0), 0u) << lines[4];
  EXPECT_EQ(lines[5], "test.yaml:9: key 'lgo': unknown key; did you mean 'log'?");
}

TEST(ConfigLoad, MissingFileNamesThePath) {
  try {
    load_file("/nonexistent/callrelay.yaml");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/callrelay.yaml: cannot read"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConfigLoad, ErrorsNameTheFilePath) {
  TempDir dir;
  const std::string path = dir.write("bad.yaml", "workers: 1\nrelay:\n  ports: {min: 1}\n");
  try {
    load_file(path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3: key 'relay.ports.min'", 0), 0u) << e.what();
  }
}

TEST(ConfigLoad, SecretFileIsResolvedRelativeToTheConfigFile) {
  TempDir dir;
  dir.write("secrets", "# rotated 2026-01-01\n\n  new-secret  \r\nold-secret\n");
  const std::string path =
      dir.write("c.yaml", "auth:\n  secrets: [inline]\n  secret_file: secrets\n");
  const Config c = load_file(path);
  EXPECT_EQ(c.auth.rest_secrets, (std::vector<std::string>{"inline", "new-secret", "old-secret"}));
  EXPECT_EQ(c.auth_secret_file, (dir.path() / "secrets").string());
}

TEST(ConfigLoad, UnreadableSecretFileIsAnError) {
  TempDir dir;
  const std::string path = dir.write("c.yaml", "realm: r\nauth:\n  secret_file: missing\n");
  try {
    load_file(path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string expected = path + ":3: key 'auth.secret_file': cannot read '" +
                                 (dir.path() / "missing").string() + "'";
    EXPECT_EQ(std::string(e.what()).rfind(expected, 0), 0u) << e.what();
  }
  const std::string dir_as_file = dir.write("d.yaml", "auth:\n  secret_file: .\n");
  EXPECT_THROW(load_file(dir_as_file), ConfigError);
}

TEST(ConfigLoad, EmptySecretFileIsAnError) {
  TempDir dir;
  dir.write("secrets", "# nothing yet\n\n");
  const std::string path = dir.write("c.yaml", "auth:\n  secret_file: secrets\n");
  try {
    load_file(path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(":2: key 'auth.secret_file': '"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("holds no secret"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace callrelay::config
