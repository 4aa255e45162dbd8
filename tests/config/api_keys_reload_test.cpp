// API keys replaced by a configuration reload: requests after it match the new keys only, a
// key handed out before stays readable, and the failure budget is kept.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "http/api_keys.hpp"

namespace callrelay::http {
namespace {

ApiKey key(std::string name, std::string value, std::string origin = "", bool admin = false) {
  ApiKey k;
  k.name = std::move(name);
  k.key = std::move(value);
  if (!origin.empty()) k.allowed_origins.push_back(std::move(origin));
  k.admin = admin;
  return k;
}

TEST(ApiKeysReload, NewKeysMatchOldOnesNoLongerDo) {
  ApiKeys keys({key("app", "old-key-0123456789", "https://old.example")});
  const ApiKey* before = keys.match("old-key-0123456789");
  ASSERT_NE(before, nullptr);
  keys.reconfigure({key("app", "new-key-0123456789", "https://new.example"),
                    key("ops", "ops-key-0123456789", "", true)});
  EXPECT_EQ(keys.match("old-key-0123456789"), nullptr);
  const ApiKey* app = keys.match("new-key-0123456789");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->name, "app");
  const ApiKey* ops = keys.match("ops-key-0123456789");
  ASSERT_NE(ops, nullptr);
  EXPECT_TRUE(ops->admin);
  EXPECT_FALSE(keys.origin_allowed_by_any("https://old.example"));
  EXPECT_TRUE(keys.origin_allowed_by_any("https://new.example"));
  // A request being served with the old key can still read it.
  EXPECT_EQ(before->key, "old-key-0123456789");
  EXPECT_EQ(keys.keys().size(), 2u);
}

TEST(ApiKeysReload, TheSameKeysAgainGiveTheSameEntries) {
  const std::vector<ApiKey> set = {key("a", "a-key-0123456789"), key("b", "b-key-0123456789")};
  ApiKeys keys(set);
  const ApiKey* a = keys.match("a-key-0123456789");
  keys.reconfigure({});
  EXPECT_EQ(keys.match("a-key-0123456789"), nullptr);
  keys.reconfigure(set);
  EXPECT_EQ(keys.match("a-key-0123456789"), a);
  // A changed definition (admin now) is a new entry; the old one stays readable.
  keys.reconfigure({key("a", "a-key-0123456789", "", true)});
  const ApiKey* admin_a = keys.match("a-key-0123456789");
  ASSERT_NE(admin_a, nullptr);
  EXPECT_NE(admin_a, a);
  EXPECT_TRUE(admin_a->admin);
  EXPECT_FALSE(a->admin);
}

TEST(ApiKeysReload, MatchingGoesOnWhileKeysAreReplaced) {
  ApiKeys keys({key("k", "stable-key-0123456789")});
  std::thread reloads([&keys] {
    for (int i = 0; i < 2000; ++i)
      keys.reconfigure({key("k", "stable-key-0123456789"),
                        key("x" + std::to_string(i % 7), "extra-" + std::to_string(i % 7))});
  });
  int matched = 0;
  for (int i = 0; i < 2000; ++i) matched += keys.match("stable-key-0123456789") != nullptr;
  reloads.join();
  EXPECT_EQ(matched, 2000);
}

}  // namespace
}  // namespace callrelay::http
