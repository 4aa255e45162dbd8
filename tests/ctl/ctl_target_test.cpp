// Which relay `callrelay ctl` reaches and with which key: the lookup order (--key, the
// environment, the configuration's first admin key, the state directory's file), the URL of
// the configured listener, and a clear error with its exit status for every dead end.
#include "app/ctl_target.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "app/admin_key.hpp"

namespace callrelay::app {
namespace {

class CtlTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "callrelay-ctl-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// A configuration file: the state directory in dir_, plus `extra`.
  std::string config(const std::string& extra) {
    const std::string path = (dir_ / "callrelay.yaml").string();
    std::ofstream(path) << "listen: {udp: [\"127.0.0.1:3478\"]}\nstate_dir: " << state() << "\n"
                        << extra;
    return path;
  }
  std::string state() const { return (dir_ / "state").string(); }
  /// A configuration path nobody may read: resolving must not need it.
  std::string missing() const { return (dir_ / "absent.yaml").string(); }

  /// The CtlError resolve_target throws; fails the test when it resolves.
  CtlError error_of(const CtlOptions& o, const char* env = nullptr) {
    LazyConfig cfg(o.config_path, missing());
    try {
      resolve_target(o, env, cfg);
    } catch (const CtlError& e) {
      return e;
    }
    ADD_FAILURE() << "resolved";
    return CtlError(0, "");
  }

  std::filesystem::path dir_;
};

TEST_F(CtlTargetTest, UrlAndKeyGivenNeedNoConfiguration) {
  CtlOptions o;
  o.url = "http://127.0.0.1:9000";
  o.key = "the-key-0123456789";
  o.config_path = missing();
  LazyConfig cfg(o.config_path, missing());
  const CtlTarget t = resolve_target(o, "env-key-0123456789", cfg);
  EXPECT_EQ(t.url.text(), "http://127.0.0.1:9000");
  EXPECT_EQ(t.key.key, "the-key-0123456789");
  EXPECT_EQ(t.key.source, "--key");
}

TEST_F(CtlTargetTest, EnvironmentBeforeConfiguration) {
  CtlOptions o;
  o.url = "http://127.0.0.1:9000";
  o.config_path = missing();
  LazyConfig cfg(o.config_path, missing());
  const CtlTarget t = resolve_target(o, "env-key-0123456789", cfg);
  EXPECT_EQ(t.key.key, "env-key-0123456789");
  EXPECT_EQ(t.key.source, "CALLRELAY_ADMIN_KEY");
}

TEST_F(CtlTargetTest, FirstAdminKeyOfTheConfiguration) {
  CtlOptions o;
  o.config_path = config(
      "http: {listen: \"0.0.0.0:9700\"}\napi:\n  public_host: relay.example\n  keys:\n"
      "    - {name: app, key: app-key-0123456789abcdef}\n"
      "    - {name: ops, key: ops-key-0123456789abcdef, admin: true}\n"
      "    - {name: ops2, key: ops2-key-0123456789abcdef, admin: true}\n");
  LazyConfig cfg(o.config_path, missing());
  const CtlTarget t = resolve_target(o, "", cfg);
  EXPECT_EQ(t.url.text(), "http://127.0.0.1:9700");  // the wildcard reached on loopback
  EXPECT_EQ(t.key.key, "ops-key-0123456789abcdef");
  EXPECT_EQ(t.key.source, "the admin key 'ops' of api.keys in " + o.config_path);
}

TEST_F(CtlTargetTest, StateDirectoryKey) {
  const AdminKeyFile made = load_or_create_admin_key(state());
  CtlOptions o;
  o.config_path = config("http: {listen: \"[::]:9701\"}\n");
  LazyConfig cfg(o.config_path, missing());
  const CtlTarget t = resolve_target(o, nullptr, cfg);
  EXPECT_EQ(t.url.text(), "http://[::1]:9701");
  EXPECT_EQ(t.key.key, made.key);
  EXPECT_EQ(t.key.source, state() + "/admin-key");
}

TEST_F(CtlTargetTest, StateDirOptionWithoutConfiguration) {
  const std::string other = (dir_ / "other").string();
  const AdminKeyFile made = load_or_create_admin_key(other);
  CtlOptions o;
  o.url = "http://127.0.0.1:9000";
  o.config_path = missing();  // unreadable, yet --state-dir is enough
  o.state_dir = other;
  LazyConfig cfg(o.config_path, missing());
  EXPECT_EQ(resolve_target(o, nullptr, cfg).key.key, made.key);
}

TEST_F(CtlTargetTest, DefaultConfigurationWhenNoneIsGiven) {
  CtlOptions o;  // no --config, and the default path does not exist: the embedded default
  o.key = "the-key-0123456789";
  LazyConfig cfg("", missing());
  const CtlTarget t = resolve_target(o, nullptr, cfg);
  EXPECT_EQ(t.url.text(), "http://127.0.0.1:9641");
}

TEST_F(CtlTargetTest, HttpsWhenTheListenerHasTls) {
  std::ofstream(dir_ / "cert.pem") << "x";
  std::ofstream(dir_ / "key.pem") << "x";
  CtlOptions o;
  o.key = "the-key-0123456789";
  o.config_path =
      config("http: {listen: \"127.0.0.1:9443\", tls: {cert: cert.pem, key: key.pem}}\n");
  LazyConfig cfg(o.config_path, missing());
  EXPECT_EQ(resolve_target(o, nullptr, cfg).url.text(), "https://127.0.0.1:9443");
}

TEST_F(CtlTargetTest, NoKeyAnywhere) {
  CtlOptions o;
  o.config_path = config("");
  const CtlError e = error_of(o);
  EXPECT_EQ(e.exit_code(), kCtlKey);
  EXPECT_NE(std::string(e.what()).find("--key"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(state() + "/admin-key"), std::string::npos) << e.what();
}

TEST_F(CtlTargetTest, UnusableConfiguration) {
  CtlOptions o;
  o.config_path = missing();
  EXPECT_EQ(error_of(o).exit_code(), kCtlConfig);
  o.config_path = config("workers: many\n");
  const CtlError e = error_of(o);
  EXPECT_EQ(e.exit_code(), kCtlConfig);
  EXPECT_NE(std::string(e.what()).find("workers"), std::string::npos) << e.what();
}

TEST_F(CtlTargetTest, NoHttpListener) {
  CtlOptions o;
  o.key = "the-key-0123456789";
  o.config_path = config("http: {enabled: false}\n");
  const CtlError e = error_of(o);
  EXPECT_EQ(e.exit_code(), kCtlConfig);
  EXPECT_NE(std::string(e.what()).find("http.enabled is false"), std::string::npos);
}

TEST_F(CtlTargetTest, BadUrlOrKey) {
  CtlOptions o;
  o.key = "the-key-0123456789";
  o.url = "ftp://relay";
  EXPECT_EQ(error_of(o).exit_code(), kCtlUsage);
  o.url = "http://127.0.0.1:9000";
  o.key = "two words";
  const CtlError e = error_of(o);
  EXPECT_EQ(e.exit_code(), kCtlKey);
  EXPECT_NE(std::string(e.what()).find("--key"), std::string::npos);
  EXPECT_EQ(std::string(e.what()).find("two words"), std::string::npos);  // never echoed
}

TEST(CtlUrl, Parse) {
  std::string error;
  auto u = parse_url("https://relay.example.org", error);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "relay.example.org");
  EXPECT_EQ(u->port, 443);
  u = parse_url("http://[::1]:9641/", error);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9641);
  EXPECT_EQ(u->text(), "http://[::1]:9641");
  for (const char* bad :
       {"relay:9641", "http://", "http://h:0", "http://h:70000", "http://h:x", "http://h/api",
        "http://[::1", "http://[::1]x", "http://u@h:1", "http://h:"}) {
    EXPECT_FALSE(parse_url(bad, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

}  // namespace
}  // namespace callrelay::app
