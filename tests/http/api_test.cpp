// The credential API and the routes, driven with plain Request values (no sockets, fixed clock).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http/api.hpp"
#include "http/router.hpp"

namespace callrelay::http {
namespace {

constexpr core::TimeMs kNow = 1'700'000'000'000;  // Unix ms
constexpr const char* kKey = "key-0123456789abcdef";
constexpr const char* kWebKey = "web-0123456789abcdef";
constexpr const char* kSecret = "rest-secret";

ApiConfig api_config() {
  ApiConfig c;
  c.keys.push_back(ApiKey{"backend", kKey, 7200, {}});
  c.keys.push_back(ApiKey{"web", kWebKey, 600, {"https://app.example.com"}});
  c.default_ttl_s = 3600;
  return c;
}

core::AuthConfig auth_config() {
  core::AuthConfig a;
  a.rest_secrets = {kSecret, "old-secret"};
  return a;
}

Request get(std::string query, std::string authorization = "") {
  Request r;
  r.method = "GET";
  r.path = "/api/v1/turn/credentials";
  r.query = std::move(query);
  r.authorization = std::move(authorization);
  r.client_ip = "192.0.2.1";
  r.size = 100;
  return r;
}

class ApiTest : public ::testing::Test {
 protected:
  core::Authenticator auth_{auth_config()};
  ApiKeys keys_{api_config().keys};
  CredentialApi api_{api_config(), {"turn:relay.example.com:3478?transport=udp"}, ':', auth_, keys_};
  Readiness ready_;
  Router router_{4096, api_, ready_, [](core::TimeMs) { return std::string("m 1\n"); }};
};

TEST_F(ApiTest, MintsACredentialTheRelayAccepts) {
  const Response r = api_.credentials(
      get("service=turn&username=alice&ttl=600", std::string("Bearer ") + kKey), kNow);
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string user = "1700000600:alice";
  const std::string pass = core::Authenticator::rest_password(kSecret, user);
  const auto body = nlohmann::ordered_json::parse(r.body, nullptr, false);
  const nlohmann::ordered_json uris = {"turn:relay.example.com:3478?transport=udp"};
  const nlohmann::ordered_json expected = {
      {"username", user},
      {"password", pass},
      {"ttl", 600},
      {"uris", uris},
      {"iceServers", {{{"urls", uris}, {"username", user}, {"credential", pass}}}}};
  EXPECT_EQ(body, expected) << r.body;
  EXPECT_EQ(r.body.back(), '\n');
  // The relay validates it with the first secret.
  const auto found = auth_.lookup(user, kNow);
  ASSERT_FALSE(found.failure);
  EXPECT_EQ(found.candidates.front().key, stun::long_term_key(user, "callrelay", pass));
}

TEST_F(ApiTest, KeyFromQueryParametersAndDefaultTtl) {
  for (const char* param : {"key", "api"}) {
    const Response r =
        api_.credentials(get(std::string("service=turn&username=bob&") + param + "=" + kKey), kNow);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"username\":\"1700003600:bob\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"ttl\":3600"), std::string::npos);
  }
  // The default is cut to the key's own maximum.
  const Response r =
      api_.credentials(get(std::string("service=turn&username=bob&key=") + kWebKey), kNow);
  EXPECT_NE(r.body.find("\"ttl\":600"), std::string::npos) << r.body;
}

TEST_F(ApiTest, PostFormAndJsonBodies) {
  Request form = get("");
  form.method = "POST";
  form.authorization = std::string("bearer ") + kKey;
  form.content_type = "application/x-www-form-urlencoded";
  form.body = "service=turn&username=carol&ttl=60";
  Response r = api_.credentials(form, kNow);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("1700000060:carol"), std::string::npos);

  Request json = form;
  json.content_type = "application/json; charset=utf-8";
  json.body = R"({"service": "turn", "username": "dave", "ttl": 120})";
  r = api_.credentials(json, kNow);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("1700000120:dave"), std::string::npos);

  json.body = R"({"service": "turn", "username": {"nested": 1}})";
  EXPECT_EQ(api_.credentials(json, kNow).status, 400);
  json.content_type = "text/xml";
  EXPECT_EQ(api_.credentials(json, kNow).status, 415);
}

TEST_F(ApiTest, WrongOrMissingKeyIs401) {
  Response r = api_.credentials(get("service=turn&username=alice"), kNow);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("missing API key"), std::string::npos);
  r = api_.credentials(get("service=turn&username=alice", "Bearer wrong-key-0123456789"), kNow);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, "{\"error\":\"invalid API key\"}\n");
  // A key never comes back in any answer.
  r = api_.credentials(get(std::string("service=turn&username=alice&key=") + kKey + "x"), kNow);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body.find(kKey), std::string::npos);
}

TEST_F(ApiTest, BadParametersAre400) {
  const std::string k = std::string("&key=") + kKey;
  const struct {
    std::string query;
    std::string message;
  } cases[] = {
      {"username=alice", "missing parameter 'service'"},
      {"service=stun&username=alice", "must be 'turn'"},
      {"service=turn", "missing parameter 'username'"},
      {"service=turn&username=", "must not be empty"},
      {"service=turn&username=a:b", "must not contain the separator"},
      {"service=turn&username=a%0Ab", "control characters"},
      {"service=turn&username=" + std::string(300, 'u'), "longer than 256"},
      {"service=turn&username=alice&ttl=0", "positive integer"},
      {"service=turn&username=alice&ttl=-5", "positive integer"},
      {"service=turn&username=alice&ttl=12abc", "positive integer"},
      {"service=turn&username=alice&ttl=99999999999", "positive integer"},
      {"service=turn&username=alice&ttl=7201", "above this API key's maximum of 7200 seconds"},
      {"service=turn&username=%zz", "malformed query string"},
  };
  for (const auto& c : cases) {
    const Response r =
        api_.credentials(get(c.query + (c.query.find("%zz") == std::string::npos ? k : "")), kNow);
    EXPECT_EQ(r.status, 400) << c.query << " -> " << r.body;
    EXPECT_NE(r.body.find(c.message), std::string::npos) << c.query << " -> " << r.body;
  }
  EXPECT_EQ(api_.credentials(get("service=turn&username=alice&ttl=7200" + k), kNow).status, 200);
}

TEST_F(ApiTest, FailedKeysAreRateLimitedPerAddress) {
  Request bad = get("service=turn&username=alice", "Bearer wrong-key-0123456789");
  int limited_after = -1;
  for (int i = 0; i < 50 && limited_after < 0; ++i) {
    if (api_.credentials(bad, kNow).status == 429) limited_after = i;
  }
  EXPECT_EQ(limited_after, 10);  // the default burst
  // Even the right key is refused from that address until tokens come back...
  Request good = get("service=turn&username=alice", std::string("Bearer ") + kKey);
  const Response r = api_.credentials(good, kNow);
  EXPECT_EQ(r.status, 429);
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers.front().first, "Retry-After");
  EXPECT_EQ(api_.credentials(good, kNow + 2000).status, 200);
  // ...while other addresses are served.
  good.client_ip = "192.0.2.2";
  EXPECT_EQ(api_.credentials(good, kNow).status, 200);
}

TEST_F(ApiTest, CorsEchoesListedOriginsOnly) {
  Request req = get(std::string("service=turn&username=alice&key=") + kWebKey);
  req.origin = "https://app.example.com";
  Response r = api_.credentials(req, kNow);
  ASSERT_EQ(r.status, 200);
  bool echoed = false;
  for (const auto& [n, v] : r.headers)
    echoed |= n == "Access-Control-Allow-Origin" && v == req.origin;
  EXPECT_TRUE(echoed);
  // The backend key lists no origin: no CORS header for browsers.
  req.query = std::string("service=turn&username=alice&key=") + kKey;
  r = api_.credentials(req, kNow);
  for (const auto& h : r.headers) EXPECT_NE(h.first, "Access-Control-Allow-Origin");
  req.origin = "https://evil.example.com";
  req.query = std::string("service=turn&username=alice&key=") + kWebKey;
  r = api_.credentials(req, kNow);
  for (const auto& h : r.headers) EXPECT_NE(h.first, "Access-Control-Allow-Origin");
}

TEST_F(ApiTest, Preflight) {
  Request pre = get("");
  pre.method = "OPTIONS";
  pre.origin = "https://app.example.com";
  Response r = router_.handle(pre, kNow);
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.headers.at(0),
            (std::pair<std::string, std::string>{"Access-Control-Allow-Origin", pre.origin}));
  pre.origin = "https://evil.example.com";
  EXPECT_EQ(router_.handle(pre, kNow).status, 403);
}

TEST_F(ApiTest, RevokeRefusesTheUsernameUntilItExpires) {
  const std::string user = "1700000600:alice";
  ASSERT_FALSE(auth_.lookup(user, kNow).failure);
  Request rev = get("username=1700000600%3Aalice", std::string("Bearer ") + kKey);
  rev.method = "POST";
  rev.path = "/api/v1/turn/revoke";
  const Response r = router_.handle(rev, kNow);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(auth_.lookup(user, kNow).failure, core::AuthFailure::kRevoked);
  EXPECT_FALSE(auth_.lookup("1700000600:bob", kNow).failure);
  auth_.prune_revocations(kNow + 600'000);
  EXPECT_EQ(auth_.revoked_count(), 0u);
  rev.query = "username=alice";
  EXPECT_EQ(router_.handle(rev, kNow).status, 400);
  rev.query = "username=1700000600%3Aalice";
  rev.authorization = "Bearer nope-nope-nope-nope";
  EXPECT_EQ(router_.handle(rev, kNow).status, 401);
  rev.method = "GET";
  EXPECT_EQ(router_.handle(rev, kNow).status, 405);
}

TEST_F(ApiTest, NoSecretIs503) {
  core::AuthConfig static_only;
  static_only.static_users["bob"] = "pw";
  core::Authenticator auth(static_only);
  CredentialApi api(api_config(), {}, ':', auth, keys_);
  EXPECT_EQ(api.credentials(get(std::string("service=turn&username=a&key=") + kKey), kNow).status,
            503);
}

TEST_F(ApiTest, MintsWithTheFirstSecretInForceAfterAReload) {
  core::AuthConfig rotated = auth_config();
  rotated.rest_secrets = {"new-secret", kSecret};
  auth_.reconfigure(rotated);
  const Response r = api_.credentials(
      get("service=turn&username=alice&ttl=600", std::string("Bearer ") + kKey), kNow);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["password"],
            core::Authenticator::rest_password("new-secret", "1700000600:alice"));
}

TEST_F(ApiTest, RevokeWhenTheListIsFullIs503AndChangesNothing) {
  core::AuthConfig small = auth_config();
  small.max_revocations = 1;
  core::Authenticator auth(small);
  CredentialApi api(api_config(), {}, ':', auth, keys_);
  Request rev = get("username=1700000600%3Aalice", std::string("Bearer ") + kKey);
  rev.method = "POST";
  rev.path = "/api/v1/turn/revoke";
  EXPECT_EQ(api.revoke(rev, kNow).status, 200);
  rev.query = "username=1700000600%3Abob";
  const Response full = api.revoke(rev, kNow);
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_NE(full.body.find("max_revocations"), std::string::npos) << full.body;
  EXPECT_FALSE(auth.lookup("1700000600:bob", kNow).failure);
  EXPECT_EQ(auth.lookup("1700000600:alice", kNow).failure, core::AuthFailure::kRevoked);
}

TEST_F(ApiTest, RoutesHealthReadinessMetricsAndErrors) {
  Request req = get("");
  req.path = "/healthz";
  EXPECT_EQ(router_.handle(req, kNow).status, 200);
  req.path = "/readyz";
  EXPECT_EQ(router_.handle(req, kNow).status, 503);
  ready_.set_listeners_bound(true);
  EXPECT_EQ(router_.handle(req, kNow).status, 200);
  ready_.set_draining(true);
  const Response draining = router_.handle(req, kNow);
  EXPECT_EQ(draining.status, 503);
  EXPECT_NE(draining.body.find("draining"), std::string::npos);
  req.path = "/metrics";
  const Response m = router_.handle(req, kNow);
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, kMetricsContentType);
  EXPECT_EQ(m.body, "m 1\n");
  req.method = "POST";
  EXPECT_EQ(router_.handle(req, kNow).status, 405);
  req.method = "GET";
  req.path = "/nope";
  EXPECT_EQ(router_.handle(req, kNow).status, 404);
  req.size = 4097;
  EXPECT_EQ(router_.handle(req, kNow).status, 413);
}

// Relay workers look usernames up while the HTTP thread revokes and prunes (run it under
// -DCALLRELAY_SANITIZE=ON or TSan to see a race if the lock goes).
TEST(Revocation, ConcurrentWithLookups) {
  core::Authenticator auth(auth_config());
  std::atomic<bool> stop{false};
  std::atomic<int> revoked_seen{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        if (auth.lookup("1700000600:u7", kNow).failure == core::AuthFailure::kRevoked)
          revoked_seen.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    auth.revoke("1700000600:u" + std::to_string(i % 50), kNow + 600'000);
    if (i % 100 == 0) auth.prune_revocations(kNow);
  }
  while (revoked_seen.load() == 0) std::this_thread::yield();
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(auth.revoked_count(), 50u);
  EXPECT_EQ(auth.lookup("1700000600:u7", kNow).failure, core::AuthFailure::kRevoked);
}

TEST(DeriveTurnUris, FromListeners) {
  const auto ep = [](const char* s) { return *stun::Endpoint::parse(s); };
  EXPECT_EQ(
      derive_turn_uris("", {ep("0.0.0.0:3478"), ep("192.0.2.7:3478"), ep("[2001:db8::1]:3478")},
                       {ep("192.0.2.7:3478")}, {ep("192.0.2.7:5349")}),
      (std::vector<std::string>{
          "turn:192.0.2.7:3478?transport=udp", "turn:[2001:db8::1]:3478?transport=udp",
          "turn:192.0.2.7:3478?transport=tcp", "turns:192.0.2.7:5349?transport=tcp"}));
  EXPECT_EQ(derive_turn_uris("relay.example.com", {ep("0.0.0.0:3478"), ep("[::]:3478")}),
            (std::vector<std::string>{"turn:relay.example.com:3478?transport=udp"}));
}

}  // namespace
}  // namespace callrelay::http
