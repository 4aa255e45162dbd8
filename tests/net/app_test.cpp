// The app's helpers: command line, the state-directory secret, minting REST credentials.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "app/cli.hpp"
#include "app/credentials.hpp"

namespace callrelay::app {
namespace {

TEST(AppCredentials, MintMatchesAnIndependentHmac) {
  // Expected value from: printf '1700000000:alice' | openssl dgst -sha1 -hmac testsecret -binary |
  // base64
  const auto c = mint_credential("testsecret", "alice", 1700000000, ':');
  EXPECT_EQ(c.username, "1700000000:alice");
  EXPECT_EQ(c.password, "xZKofrfxA71u/OUNpsn3mAi1q24=");
}

TEST(AppCredentials, StateSecretIsCreatedPrivateAndReused) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("callrelay-app-test-" + std::to_string(::getpid())) / "state";
  std::filesystem::remove_all(dir.parent_path());
  const StateSecret first = load_or_create_secret(dir.string());
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.secret.size(), 64u);
  EXPECT_EQ(first.secret.find_first_not_of("0123456789abcdef"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(first.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const StateSecret again = load_or_create_secret(dir.string());
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.secret, first.secret);
  std::filesystem::remove_all(dir.parent_path());
}

TEST(AppCli, ParsesServeAndMintForms) {
  auto r = parse_command_line({"--config", "a.yaml", "--state-dir=/tmp/x"});
  ASSERT_TRUE(r.cli) << r.error;
  EXPECT_EQ(r.cli->command, CommandLine::Command::kServe);
  EXPECT_EQ(r.cli->config_path, "a.yaml");
  EXPECT_EQ(r.cli->state_dir, std::optional<std::string>("/tmp/x"));

  r = parse_command_line({"--config", "a.yaml", "--check-config"});
  ASSERT_TRUE(r.cli);
  EXPECT_EQ(r.cli->command, CommandLine::Command::kCheckConfig);

  r = parse_command_line({"mint-credential", "bob", "--ttl", "60"});
  ASSERT_TRUE(r.cli) << r.error;
  EXPECT_EQ(r.cli->command, CommandLine::Command::kMintCredential);
  EXPECT_EQ(r.cli->user, "bob");
  EXPECT_EQ(r.cli->ttl_s, 60);
}

TEST(AppCli, RejectsMistakes) {
  EXPECT_FALSE(parse_command_line({"--config"}).cli);
  EXPECT_FALSE(parse_command_line({"--bogus"}).cli);
  EXPECT_FALSE(parse_command_line({"mint-credential"}).cli);
  EXPECT_FALSE(parse_command_line({"mint-credential", "bob", "--ttl", "-5"}).cli);
  EXPECT_FALSE(parse_command_line({"mint-credential", "bob", "--ttl", "12x"}).cli);
}

}  // namespace
}  // namespace callrelay::app
