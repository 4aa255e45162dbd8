// The state directory's admin key: made once with mode 0600 from the random source, read back
// on later starts, refused when the file holds no key, and never made predictable.
#include "app/admin_key.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace callrelay::app {
namespace {

class AdminKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "callrelay-admin-key-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    state_ = (root_ / "state").string();
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
  std::string state_;
};

bool failing_random(uint8_t*, size_t) { return false; }

TEST_F(AdminKeyTest, MadeOnceThenReadBack) {
  const AdminKeyFile first = load_or_create_admin_key(state_);
  EXPECT_TRUE(first.created);
  EXPECT_TRUE(first.warning.empty()) << first.warning;
  EXPECT_EQ(first.path, state_ + "/admin-key");
  EXPECT_EQ(first.key.size(), 43u);  // 32 bytes as unpadded base64url
  EXPECT_EQ(first.key.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(first.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  const AdminKeyFile again = load_or_create_admin_key(state_);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.key, first.key);
  EXPECT_EQ(read_admin_key(state_), std::optional<std::string>(first.key));
}

TEST_F(AdminKeyTest, RandomFailureStopsTheStart) {
  EXPECT_THROW(load_or_create_admin_key(state_, &failing_random), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(state_ + "/admin-key"));
}

TEST_F(AdminKeyTest, ExistingKeyIsKeptEvenWhenRandomFails) {
  std::filesystem::create_directories(state_);
  std::ofstream(state_ + "/admin-key") << "  operator-chosen-key-0123456789\n";
  ::chmod((state_ + "/admin-key").c_str(), 0600);
  const AdminKeyFile f = load_or_create_admin_key(state_, &failing_random);
  EXPECT_EQ(f.key, "operator-chosen-key-0123456789");
  EXPECT_TRUE(f.warning.empty());
}

TEST_F(AdminKeyTest, FileWithoutAKeyIsRefused) {
  std::filesystem::create_directories(state_);
  for (const char* bad : {"", "\n", "short", "has a space in the middle of it"}) {
    std::ofstream(state_ + "/admin-key", std::ios::trunc) << bad;
    try {
      load_or_create_admin_key(state_);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("delete it"), std::string::npos) << e.what();
    }
    EXPECT_THROW(read_admin_key(state_), std::runtime_error);
  }
}

TEST_F(AdminKeyTest, ReadableByOthersWarns) {
  std::filesystem::create_directories(state_);
  std::ofstream(state_ + "/admin-key") << "operator-chosen-key-0123456789\n";
  ::chmod((state_ + "/admin-key").c_str(), 0644);
  const AdminKeyFile f = load_or_create_admin_key(state_);
  EXPECT_EQ(f.key, "operator-chosen-key-0123456789");
  EXPECT_NE(f.warning.find("chmod 600"), std::string::npos);
}

TEST_F(AdminKeyTest, StateDirUnderAFileWarnsWithoutAKey) {
  std::ofstream(root_ / "plain-file") << "x";
  const AdminKeyFile f = load_or_create_admin_key((root_ / "plain-file" / "state").string());
  // A path under a regular file cannot be created even by root (ENOTDIR), unlike a directory
  // without write permission, so this runs wherever the tests do.
  EXPECT_TRUE(f.key.empty());
  EXPECT_NE(f.warning.find("--key"), std::string::npos);
}

TEST_F(AdminKeyTest, AbsentFileReadsNothing) { EXPECT_EQ(read_admin_key(state_), std::nullopt); }

TEST(AdminApiKey, MarkedAdmin) {
  const http::ApiKey k = admin_api_key("k-0123456789abcdef", 3600);
  EXPECT_TRUE(k.admin);
  EXPECT_EQ(k.name, kAdminKeyName);
  EXPECT_EQ(k.key, "k-0123456789abcdef");
  EXPECT_EQ(k.max_ttl_s, 3600u);
}

}  // namespace
}  // namespace callrelay::app
