// No secret, key or password reaches a log line. Each path that handles one and logs is driven
// with known credentials, in both log formats and at debug level (everything written), and the
// captured stderr is searched for them: minting and revoking through the credential API, a
// wrong, a missing and a right API key, configuration errors with credentials in the wrong
// shape (what a rejected reload logs, and what the terminal shows at start).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "app/reload.hpp"
#include "base/log.hpp"
#include "config/config.hpp"
#include "http/api.hpp"
#include "http/api_keys.hpp"

namespace callrelay {
namespace {

constexpr core::TimeMs kNow = 1'700'000'000'000;
constexpr const char* kApiKey = "apikey-secret-0123456789";
constexpr const char* kRestSecret = "rest-secret-value-42";
constexpr const char* kPassword = "static-password-value";
constexpr const char* kTokenSecret = "token-secret-value-0123456789abcdef";

/// Runs `body` once per format at debug level; returns everything written to stderr.
template <typename F>
std::string logged(F body) {
  std::string all;
  for (const log::Format f : {log::Format::kText, log::Format::kJson}) {
    log::set_format(f);
    log::set_level(log::Level::kDebug);
    log::flush();  // earlier lines are not this capture's
    ::testing::internal::CaptureStderr();
    body();
    log::flush();  // the writer thread has written every line logged above
    all += ::testing::internal::GetCapturedStderr();
  }
  log::set_format(log::Format::kText);
  log::set_level(log::Level::kInfo);
  return all;
}

/// Fails for each of `secrets` found in `text`.
void expect_none_of(const std::string& text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets)
    EXPECT_EQ(text.find(s), std::string::npos) << "'" << s << "' appears in:\n" << text;
}

http::Request request(std::string query, std::string authorization, std::string method = "GET") {
  http::Request r;
  r.method = std::move(method);
  r.path = "/api/v1/turn/credentials";
  r.query = std::move(query);
  r.authorization = std::move(authorization);
  r.client_ip = "192.0.2.1";
  r.size = 100;
  return r;
}

TEST(LogSecrets, CredentialApiLogsKeyNamesAndUsersOnly) {
  http::ApiConfig api;
  api.keys.push_back(http::ApiKey{"backend", kApiKey, 7200, {}});
  core::AuthConfig auth_config;
  auth_config.rest_secrets = {kRestSecret};
  core::Authenticator auth(auth_config);
  http::ApiKeys keys(api.keys);
  http::CredentialApi credentials(api, {"turn:relay.example.com:3478"}, ':', auth, keys);
  std::string password;
  const std::string out = logged([&] {
    const std::string bearer = std::string("Bearer ") + kApiKey;
    const http::Response minted = credentials.credentials(
        request("service=turn&username=alice&ttl=600", bearer), kNow);
    ASSERT_EQ(minted.status, 200) << minted.body;
    password = core::Authenticator::rest_password(kRestSecret, "1700000600:alice");
    http::Request revoke = request("username=1700000600%3Aalice", bearer, "POST");
    revoke.path = "/api/v1/turn/revoke";
    EXPECT_EQ(credentials.revoke(revoke, kNow).status, 200);
    // A near miss of the right key, and a key in the query string.
    EXPECT_EQ(credentials.credentials(request("username=bob", "Bearer apikey-secret-012345678X"),
                                      kNow).status, 401);
    EXPECT_EQ(credentials.credentials(request("username=bob&key=query-key-secret-0987", ""),
                                      kNow).status, 401);
  });
  EXPECT_NE(out.find("backend"), std::string::npos) << out;  // the lines were written
  EXPECT_NE(out.find("rejected API request"), std::string::npos) << out;
  expect_none_of(out, {kApiKey, kRestSecret, password, "apikey-secret-012345678X",
                       "query-key-secret-0987"});
}

TEST(LogSecrets, ConfigurationErrorsMaskCredentialsInTheWrongShape) {
  const std::vector<std::string> files = {
      std::string("auth: {secrets: \"") + kRestSecret + "\"}\n",                  // not a list
      std::string("auth: {secrets: [[\"") + kRestSecret + "\"]]}\n",              // nested
      std::string("auth: {users: {alice: [\"") + kPassword + "\"]}}\n",           // not a string
      std::string("api: {keys: [\"") + kApiKey + "\"]}\n",                        // not a mapping
      std::string("api: {keys: [{name: a, key: [\"") + kApiKey + "\"]}]}\n",
      std::string("calls: {token_secret: [\"") + kTokenSecret + "\"]}\n",
      std::string("calls: {webhook: {url: \"https://h.example\", secret: {x: \"") + kTokenSecret +
          "\"}}}\n",
  };
  for (const std::string& yaml : files) {
    try {
      config::parse(yaml, "test.yaml");
      ADD_FAILURE() << "accepted: " << yaml;
    } catch (const config::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("test.yaml"), std::string::npos) << what;
      expect_none_of(what, {kRestSecret, kPassword, kApiKey, kTokenSecret});
    }
  }
  // Values that are no credential are still quoted back: they help fix the file.
  try {
    config::parse("log: {level: loud}\n", "test.yaml");
    ADD_FAILURE();
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'loud'"), std::string::npos) << e.what();
  }
}

TEST(LogSecrets, ARejectedReloadLogsTheErrorWithoutTheCredential) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("callrelay-log-secrets-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "callrelay.yaml").string();
  const std::string good = "listen: {udp: [\"127.0.0.1:3478\"]}\nstate_dir: " + dir.string() +
                           "\nauth: {secrets: [\"" + kRestSecret + "\"]}\n";
  std::ofstream(path) << good;
  app::Reloader reloader(path, config::parse(good, path), good, app::file_loader({}), {});
  std::ofstream(path) << "listen: {udp: [\"127.0.0.1:3478\"]}\nauth: {secrets: \"" << kRestSecret
                      << "\", users: {alice: [\"" << kPassword << "\"]}}\n";
  const std::string out = logged([&] { EXPECT_FALSE(reloader.reload("test").ok); });
  EXPECT_NE(out.find("config reload (test) rejected"), std::string::npos) << out;
  expect_none_of(out, {kRestSecret, kPassword});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace callrelay
