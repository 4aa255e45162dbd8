// config::to_masked_json: the effective configuration keyed like the YAML file, with every
// secret, password, key and token masked.
#include "config/config_json.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace callrelay::config {
namespace {

using nlohmann::json;

/// A configuration with a distinct secret in every place one can be.
constexpr const char* kSecretYaml = R"(
listen:
  udp: ["127.0.0.1:3479", "[::1]:3479"]
relay:
  ports: {min: 61000, max: 65000}
  external_ipv4: 203.0.113.7
state_dir: /tmp/state
realm: example.org
auth:
  secrets: ["rest-secret-AAAA", "rest-secret-BBBB"]
  users: {alice: "alice-password-CCCC"}
peers:
  allow: ["10.0.0.0/8"]
  deny: ["192.0.2.0/24"]
http: {listen: "127.0.0.1:9641"}
api:
  public_host: relay.example.org
  keys:
    - {name: ops, key: "admin-key-DDDD-0123456789", admin: true}
    - {name: app, key: "app-key-EEEE-0123456789ab", allowed_origins: ["https://app.example"]}
calls:
  token_secret: "token-secret-FFFF-0123456789abcdef0123456789"
  webhook:
    url: "https://hook:webhook-url-password-GGGG@hooks.example/records"
    secret: "webhook-secret-HHHH"
drain: {alternate_servers: ["198.51.100.1:3478"]}
)";

const std::vector<std::string> kSecrets = {
    "rest-secret-AAAA", "rest-secret-BBBB",  "alice-password-CCCC",       "admin-key-DDDD",
    "app-key-EEEE",     "token-secret-FFFF", "webhook-url-password-GGGG", "webhook-secret-HHHH"};

TEST(ConfigJson, NoSecretAppearsAnywhere) {
  const std::string text = to_masked_json(parse(kSecretYaml, "t.yaml")).dump();
  for (const auto& secret : kSecrets) EXPECT_EQ(text.find(secret), std::string::npos) << secret;
}

TEST(ConfigJson, SecretsReadMasked) {
  const json j = to_masked_json(parse(kSecretYaml, "t.yaml"));
  EXPECT_EQ(j["auth"]["secrets"], json::array({"***", "***"}));
  EXPECT_EQ(j["auth"]["users"], json({{"alice", "***"}}));
  ASSERT_EQ(j["api"]["keys"].size(), 2u);
  EXPECT_EQ(j["api"]["keys"][0]["name"], "ops");
  EXPECT_EQ(j["api"]["keys"][0]["key"], "***");
  EXPECT_EQ(j["api"]["keys"][0]["admin"], true);
  EXPECT_EQ(j["api"]["keys"][1]["admin"], false);
  EXPECT_EQ(j["api"]["keys"][1]["allowed_origins"], json::array({"https://app.example"}));
  EXPECT_EQ(j["calls"]["token_secret"], "***");
  EXPECT_EQ(j["calls"]["webhook"]["secret"], "***");
  EXPECT_EQ(j["calls"]["webhook"]["url"], "https://hook:***@hooks.example/records");
}

TEST(ConfigJson, ValuesKeyedLikeTheFile) {
  const json j = to_masked_json(parse(kSecretYaml, "t.yaml"));
  EXPECT_EQ(j["listen"]["udp"], json::array({"127.0.0.1:3479", "[::1]:3479"}));
  EXPECT_EQ(j["listen"]["tcp"], j["listen"]["udp"]);  // the default: TCP beside UDP
  EXPECT_EQ(j["relay"]["ports"]["min"], 61000);
  EXPECT_EQ(j["relay"]["ports"]["max"], 65000);
  EXPECT_EQ(j["relay"]["external_ipv4"], "203.0.113.7");
  EXPECT_TRUE(j["relay"]["bind_ipv4"].is_null());
  EXPECT_EQ(j["realm"], "example.org");
  EXPECT_EQ(j["state_dir"], "/tmp/state");
  EXPECT_EQ(j["peers"]["allow"], json::array({"10.0.0.0/8"}));
  EXPECT_EQ(j["peers"]["deny"], json::array({"192.0.2.0/24"}));
  EXPECT_EQ(j["http"]["listen"], "127.0.0.1:9641");
  EXPECT_EQ(j["api"]["public_host"], "relay.example.org");
  EXPECT_EQ(j["allocations"]["max_lifetime"], 3600);
  EXPECT_EQ(j["calls"]["ring_timeout_s"], 45);
  EXPECT_EQ(j["drain"]["alternate_servers"], json::array({"198.51.100.1:3478"}));
  EXPECT_EQ(j["auth"]["separator"], ":");
  EXPECT_EQ(j["auth"]["password_algorithms"], json::array({"sha256", "md5"}));
}

TEST(ConfigJson, UnsetSecretsReadNull) {
  const json j = to_masked_json(parse(default_yaml(), "<default>"));
  EXPECT_EQ(j["auth"]["secrets"], json::array());
  EXPECT_TRUE(j["calls"]["token_secret"].is_null());
  EXPECT_TRUE(j["calls"]["webhook"].is_null());
  EXPECT_TRUE(j["auth"]["secret_file"].is_null());
  EXPECT_EQ(j["demo"]["enabled"], true);
  EXPECT_EQ(j["log"]["format"], "text");
}

TEST(ConfigJson, WebhookUrlWithoutPasswordIsKept) {
  Config c = parse(default_yaml(), "<default>");
  c.calls.webhook.url = "https://hooks.example/records?user=a:b@c";
  c.calls.webhook.secret = "0123456789abcdef";
  EXPECT_EQ(to_masked_json(c)["calls"]["webhook"]["url"],
            "https://hooks.example/records?user=a:b@c");
  c.calls.webhook.url = "http://name@hooks.example/";
  EXPECT_EQ(to_masked_json(c)["calls"]["webhook"]["url"], "http://name@hooks.example/");
}

}  // namespace
}  // namespace callrelay::config

namespace callrelay::config {
namespace {

/// Every mapping key of `node` under `path` that `j` lacks, descending while both are
/// mappings (a list or a masked value ends the walk).
void missing_keys(const YAML::Node& node, const nlohmann::json& j, const std::string& path,
                  std::vector<std::string>& out) {
  if (!node.IsMap() || !j.is_object()) return;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string at = path.empty() ? key : path + "." + key;
    if (!j.contains(key)) {
      out.push_back(at);
      continue;
    }
    missing_keys(kv.second, j[key], at, out);
  }
}

TEST(ConfigJson, EveryKeyOfTheExampleFileIsShown) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const YAML::Node example = YAML::Load(text.str());
  std::vector<std::string> missing;
  missing_keys(example, to_masked_json(parse(text.str(), "example.yaml")), "", missing);
  EXPECT_TRUE(missing.empty()) << ::testing::PrintToString(missing);
}

}  // namespace
}  // namespace callrelay::config
