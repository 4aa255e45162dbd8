// Hot reload: which keys differ between two files, which of them apply live, and the Reloader's
// all-or-nothing rule (an invalid file or a part that cannot be prepared applies nothing).
#include "app/reload.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace callrelay::app {
namespace {

using Keys = std::vector<std::string>;

const char* kBase = R"(listen: {udp: ["127.0.0.1:3478"]}
workers: 2
state_dir: /tmp/callrelay-reload-test
auth: {secrets: ["one"], users: {alice: pw}}
peers: {deny: ["10.1.0.0/16"]}
log: {level: info}
)";

TEST(ChangedKeys, NamesEveryDifferingLeafAndNothingElse) {
  EXPECT_EQ(changed_keys(kBase, kBase), Keys{});
  const std::string next = R"(listen: {udp: ["127.0.0.1:3479"]}
workers: 2
state_dir: /tmp/callrelay-reload-test
auth: {secrets: ["two", "one"], users: {alice: pw, bob: pw2}}
log: {level: debug}
)";
  EXPECT_EQ(changed_keys(kBase, next),
            (Keys{"auth.secrets", "auth.users.bob", "listen.udp", "log.level", "peers.deny"}));
}

TEST(ChangedKeys, NullAndAbsentAreTheSameAndGarbageIsEmpty) {
  EXPECT_EQ(changed_keys("a: 1\nb:\n", "a: 1\n"), Keys{});
  EXPECT_EQ(changed_keys("a: 1\n", "a: [unclosed"), Keys{"a"});
  EXPECT_EQ(changed_keys("", "a: {b: 1}"), Keys{"a.b"});
}

TEST(ChangedKeys, NeverReturnsValues) {
  for (const std::string& k : changed_keys("auth: {secrets: [s3cret]}", "auth: {secrets: [n3w]}"))
    EXPECT_EQ(k.find("3"), std::string::npos) << k;
}

TEST(LiveKeys, SecretsPolicyKeysCertificatesAndLimitsButNotListeners) {
  for (const char* k : {"realm", "auth.secrets", "auth.users.bob", "auth.secret_file", "peers",
                        "peers.deny", "log.level", "tls.cert", "tls.key", "api.keys",
                        "allocations.max_per_user", "bandwidth.max_bps",
                        "limits.tcp.max_total", "limits.unauthenticated.challenges_per_s",
                        "limits.tls.handshakes_per_s"})
    EXPECT_TRUE(is_live_key(k)) << k;
  for (const char* k : {"listen.udp", "relay.ports.min", "workers", "state_dir", "http.listen",
                        "auth.separator", "auth.nonce_lifetime", "peersx", "calls.enabled",
                        "realmx", "allocations.media_quality", "limits.unauthenticated.table_slots",
                        "limits.tcp.unauthenticated_bytes",
                        "(the whole document)"})
    EXPECT_FALSE(is_live_key(k)) << k;
}

/// A configuration file in a fresh directory, rewritten at will.
class ReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("callrelay-reload-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    write(kBase);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& text) const { std::ofstream(path()) << text; }
  std::string path() const { return (dir_ / "callrelay.yaml").string(); }

  /// A Reloader over the file whose one part records what it was given (and can be told to
  /// refuse in prepare, as a certificate that does not load would).
  Reloader make(std::vector<std::string>* applied, const bool* refuse = nullptr) {
    std::string text;
    const auto load = file_loader({});
    config::Config cfg = load(path(), text);
    LivePart part{"auth", [applied, refuse](const config::Config& next) {
                    if (refuse != nullptr && *refuse) throw std::runtime_error("cannot load");
                    const std::string first = next.auth.rest_secrets.front();
                    return std::function<void()>([applied, first] { applied->push_back(first); });
                  }};
    return Reloader(path(), std::move(cfg), text, load, {part}, [this] { return ++now_s_; });
  }

  std::filesystem::path dir_;
  int64_t now_s_ = 1000;
};

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_F(ReloaderTest, AppliesAValidFileAndNamesLiveAndRestartOnlyKeys) {
  std::vector<std::string> applied;
  Reloader r = make(&applied);
  write(R"(listen: {udp: ["127.0.0.1:3479"]}
workers: 3
state_dir: /tmp/callrelay-reload-test
auth: {secrets: ["two", "one"], users: {alice: pw}}
peers: {deny: ["10.2.0.0/16"]}
log: {level: info}
)");
  const ReloadResult res = r.reload("test");
  ASSERT_TRUE(res.ok) << res.error;
  EXPECT_EQ(applied, Keys{"two"});
  EXPECT_EQ(res.changed, (Keys{"auth.secrets", "peers.deny"}));
  // listen.tcp left out follows listen.udp: it changes too.
  EXPECT_EQ(res.need_restart, (Keys{"listen.udp", "workers", "listen.tcp"}));
  EXPECT_EQ(r.running().auth.rest_secrets, (Keys{"two", "one"}));
  const std::string m = r.scrape_text();
  EXPECT_TRUE(has_line(m, "callrelay_config_reloads_total{outcome=\"ok\"} 1")) << m;
  EXPECT_TRUE(has_line(m, "callrelay_config_reloads_total{outcome=\"error\"} 0")) << m;
  EXPECT_TRUE(has_line(m, "callrelay_config_last_reload_successful 1")) << m;
  EXPECT_TRUE(has_line(m, "callrelay_config_last_reload_success_timestamp_seconds 1002")) << m;

  // Restart-only keys stay named until a restart; live keys only when they change again.
  const ReloadResult again = r.reload("test");
  ASSERT_TRUE(again.ok);
  EXPECT_EQ(again.changed, Keys{});
  EXPECT_EQ(again.need_restart, (Keys{"listen.udp", "workers", "listen.tcp"}));
}

TEST_F(ReloaderTest, AnInvalidFileAppliesNothingAndIsCounted) {
  std::vector<std::string> applied;
  Reloader r = make(&applied);
  write(R"(listen: {udp: ["127.0.0.1:3478"]}
auth: {secrets: ["two"]}
peers: {deny: ["not-a-range"]}
)");
  const ReloadResult res = r.reload("test");
  EXPECT_FALSE(res.ok);
  EXPECT_NE(res.error.find("peers.deny"), std::string::npos) << res.error;
  EXPECT_EQ(applied, Keys{});
  EXPECT_EQ(r.running().auth.rest_secrets, Keys{"one"});
  const std::string m = r.scrape_text();
  EXPECT_TRUE(has_line(m, "callrelay_config_reloads_total{outcome=\"error\"} 1")) << m;
  EXPECT_TRUE(has_line(m, "callrelay_config_last_reload_successful 0")) << m;
  EXPECT_TRUE(has_line(m, "callrelay_config_last_reload_success_timestamp_seconds 1001")) << m;

  write("workers: [not, a, number\n");  // not even YAML
  EXPECT_FALSE(r.reload("test").ok);
  std::filesystem::remove(path());  // gone
  const ReloadResult gone = r.reload("test");
  EXPECT_FALSE(gone.ok);
  EXPECT_NE(gone.error.find("cannot read"), std::string::npos) << gone.error;
  EXPECT_EQ(applied, Keys{});
}

TEST_F(ReloaderTest, APartThatCannotBePreparedAppliesNothing) {
  std::vector<std::string> applied;
  bool refuse = true;
  Reloader r = make(&applied, &refuse);
  write(R"(auth: {secrets: ["two"]}
listen: {udp: ["127.0.0.1:3478"]}
)");
  const ReloadResult res = r.reload("test");
  EXPECT_FALSE(res.ok);
  EXPECT_EQ(res.error, "auth: cannot load");
  EXPECT_EQ(applied, Keys{});
  EXPECT_EQ(r.running().auth.rest_secrets, Keys{"one"});
  refuse = false;
  EXPECT_TRUE(r.reload("test").ok);
  EXPECT_EQ(applied, Keys{"two"});
}

TEST_F(ReloaderTest, WithoutAFileEveryReloadFailsSayingSo) {
  Reloader r("", config::Config{}, "", file_loader({}), {});
  const ReloadResult res = r.reload("test");
  EXPECT_FALSE(res.ok);
  EXPECT_NE(res.error.find("embedded default"), std::string::npos) << res.error;
}

}  // namespace
}  // namespace callrelay::app
