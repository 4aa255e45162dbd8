// The `http:` and `api:` configuration sections: defaults, every key, errors with their key,
// and the example file documenting each key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"

namespace callrelay::config {
namespace {

std::string errors_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(HttpConfig, Defaults) {
  const Config c = parse("");
  EXPECT_TRUE(c.http.enabled);
  EXPECT_EQ(c.http.listen.to_string(), "127.0.0.1:9641");
  EXPECT_FALSE(c.http.tls);
  EXPECT_EQ(c.http.max_request_bytes, 65536u);
  EXPECT_EQ(c.http.threads, 2u);
  EXPECT_TRUE(c.api.keys.empty());
  EXPECT_EQ(c.api.default_ttl_s, 3600u);
  const Config d = parse(default_yaml());
  EXPECT_EQ(d.http.listen, c.http.listen);
}

TEST(HttpConfig, EveryKey) {
  const auto dir = std::filesystem::temp_directory_path() / "callrelay-http-config-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "api-key") << "# comment\n\n  file-key-0123456789  \n";
  std::ofstream(dir / "cert.pem") << "x";
  std::ofstream(dir / "key.pem") << "x";
  std::ofstream(dir / "c.yaml") << R"(
http:
  enabled: true
  listen: "[::1]:8080"
  tls: {cert: cert.pem, key: key.pem}
  max_request_bytes: 4096
  threads: 4
api:
  keys:
    - {name: a, key: "inline-key-0123456789", max_ttl: 600, allowed_origins: ["https://x.example"]}
    - {name: b, key_file: api-key}
  uris: ["turn:r.example:3478?transport=udp", "turns:r.example:5349?transport=tcp"]
  public_host: r.example
  default_ttl: 300
)";
  const Config c = load_file((dir / "c.yaml").string());
  EXPECT_EQ(c.http.listen.to_string(), "[::1]:8080");
  ASSERT_TRUE(c.http.tls);
  EXPECT_EQ(c.http.tls->cert, (dir / "cert.pem").string());
  EXPECT_EQ(c.http.max_request_bytes, 4096u);
  EXPECT_EQ(c.http.threads, 4u);
  ASSERT_EQ(c.api.keys.size(), 2u);
  EXPECT_EQ(c.api.keys[0].max_ttl_s, 600u);
  EXPECT_EQ(c.api.keys[0].allowed_origins, std::vector<std::string>{"https://x.example"});
  EXPECT_EQ(c.api.keys[1].key, "file-key-0123456789");
  EXPECT_EQ(c.api.keys[1].max_ttl_s, 86400u);
  EXPECT_EQ(c.api.uris.size(), 2u);
  EXPECT_EQ(c.api.public_host, "r.example");
  EXPECT_EQ(c.api.default_ttl_s, 300u);
  std::filesystem::remove_all(dir);
}

TEST(HttpConfig, Errors) {
  EXPECT_NE(errors_of("http: {listen: nowhere}").find("key 'http.listen'"), std::string::npos);
  EXPECT_NE(errors_of("http: {max_request_bytes: 10}").find("http.max_request_bytes"),
            std::string::npos);
  EXPECT_NE(errors_of("http: {tls: {cert: /nonexistent.pem}}").find("needs both cert and key"),
            std::string::npos);
  EXPECT_NE(errors_of("http: {bogus: 1}").find("http.bogus"), std::string::npos);
  EXPECT_NE(errors_of("http: {threads: 0}").find("http.threads"), std::string::npos);
  EXPECT_NE(errors_of("http: {threads: 65}").find("http.threads"), std::string::npos);
  EXPECT_EQ(errors_of("http: {threads: 64}"), "");
  EXPECT_NE(errors_of("api: {keys: [{name: a, key: short}]}").find("at least 16"),
            std::string::npos);
  EXPECT_NE(errors_of("api: {keys: [{key: long-enough-0123456789}]}").find("needs a name"),
            std::string::npos);
  EXPECT_NE(errors_of("api: {keys: [{name: a}]}").find("needs key"), std::string::npos);
  EXPECT_NE(
      errors_of(
          "api: {keys: [{name: a, key: k-0123456789abcdef, allowed_origins: [\"https://a/\"]}]}")
          .find("must be an origin"),
      std::string::npos);
  EXPECT_NE(errors_of("api: {uris: [\"http://x\"]}").find("api.uris[0]"), std::string::npos);
  // Keys with only wildcard listeners and no host: the URIs cannot be built.
  EXPECT_NE(errors_of("api: {keys: [{name: a, key: k-0123456789abcdef}]}").find("api.public_host"),
            std::string::npos);
  EXPECT_EQ(
      errors_of(
          "listen: {udp: [\"127.0.0.1:3478\"]}\napi: {keys: [{name: a, key: k-0123456789abcdef}]}"),
      "");
}

TEST(HttpConfig, ExampleFileDocumentsEveryKey) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  for (const char* key :
       {"http", "enabled", "listen", "tls", "cert", "key", "max_request_bytes", "threads", "api",
        "keys", "name", "key_file", "max_ttl", "allowed_origins", "uris", "public_host", "default_ttl"}) {
    const std::string k = key;
    const bool found = example.find("\n" + k + ":") != std::string::npos ||
                       example.find(" " + k + ":") != std::string::npos ||
                       example.find("{" + k + ":") != std::string::npos;
    EXPECT_TRUE(found) << "config/callrelay.example.yaml does not document '" << key << "'";
  }
  // And the example parses (with its API section as shipped).
  EXPECT_NO_THROW(load_file(CALLRELAY_EXAMPLE_CONFIG));
}

}  // namespace
}  // namespace callrelay::config

namespace callrelay::config {
namespace {

TEST(HttpConfig, ConnectionLimitsAndDeadlines) {
  const Config d = parse("");
  EXPECT_EQ(d.http.max_connections, 1024u);
  EXPECT_EQ(d.http.max_connections_per_address, 32u);
  EXPECT_EQ(d.http.header_timeout, std::chrono::seconds(10));
  EXPECT_EQ(d.http.idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(d.calls.max_connections_per_address, 100u);
  const Config c = parse(
      "http: {max_connections: 200, max_connections_per_address: 8, header_timeout_s: 3, "
      "idle_timeout_s: 20}\ncalls: {max_connections: 50, max_connections_per_address: 5}\n");
  EXPECT_EQ(c.http.max_connections, 200u);
  EXPECT_EQ(c.http.max_connections_per_address, 8u);
  EXPECT_EQ(c.http.header_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.http.idle_timeout, std::chrono::seconds(20));
  EXPECT_EQ(c.calls.max_connections_per_address, 5u);
  EXPECT_NE(errors_of("http: {max_connections: 10, max_connections_per_address: 11}")
                .find("must not exceed max_connections"),
            std::string::npos);
  EXPECT_NE(errors_of("calls: {max_connections: 10, max_connections_per_address: 11}")
                .find("must not exceed max_connections"),
            std::string::npos);
  EXPECT_NE(errors_of("http: {header_timeout_s: 0}").find("http.header_timeout_s"),
            std::string::npos);
}

}  // namespace
}  // namespace callrelay::config
