// POST /api/v1/signal/token with plain Request values: the API key, each field and its error,
// JSON and form bodies, the preflight, and a token the signer verifies.
#include "calls/signaling/token_api.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace callrelay::calls {
namespace {

constexpr int64_t kNowMs = 1'900'000'000'000;
constexpr const char* kKey = "backend-key-0123456789";
constexpr const char* kOrigin = "https://app.example.com";

class TokenApiTest : public ::testing::Test {
 protected:
  http::Request post(std::string body, std::string type = "application/json") {
    http::Request r;
    r.method = "POST";
    r.path = SignalTokenApi::kPath;
    r.authorization = std::string("Bearer ") + kKey;
    r.content_type = std::move(type);
    r.body = std::move(body);
    r.client_ip = "192.0.2.1";
    return r;
  }
  nlohmann::json body_of(const http::Response& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
  }

  TokenSigner signer_{"a-shared-signaling-secret-of-32+bytes", 3600};
  http::ApiKeys keys_{{http::ApiKey{"backend", kKey, 600, {kOrigin}}}};
  SignalTokenApi api_{signer_, keys_};
};

TEST_F(TokenApiTest, MintsATokenTheSignerAccepts) {
  const http::Response r =
      api_.handle(post(R"({"user": "alice", "tenant": "acme", "ttl": 120})"), kNowMs);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = body_of(r);
  EXPECT_EQ(body["user"], "alice");
  EXPECT_EQ(body["tenant"], "acme");
  EXPECT_EQ(body["expires"], kNowMs / 1000 + 120);
  const auto claims = signer_.verify(body["token"].get<std::string>(), kNowMs / 1000);
  ASSERT_TRUE(std::holds_alternative<TokenClaims>(claims));
  EXPECT_EQ(std::get<TokenClaims>(claims).user, "alice");
  EXPECT_EQ(std::get<TokenClaims>(claims).tenant, "acme");
  EXPECT_EQ(std::get<TokenClaims>(claims).expires, kNowMs / 1000 + 120);
  EXPECT_EQ(r.headers.at(0), (std::pair<std::string, std::string>{"Cache-Control", "no-store"}));
}

TEST_F(TokenApiTest, FormBodyDefaultTtlAndNoTenant) {
  const http::Response r = api_.handle(post("user=bob", ""), kNowMs);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = body_of(r);
  EXPECT_EQ(body["expires"], kNowMs / 1000 + SignalTokenApi::kDefaultTtlS);
  EXPECT_TRUE(body["tenant"].is_null());
  // The maximum ttl is the signer's, not the API key's TURN credential maximum.
  EXPECT_EQ(api_.handle(post("user=bob&ttl=3600", ""), kNowMs).status, 200);
}

TEST_F(TokenApiTest, ApiKeyRequired) {
  http::Request r = post(R"({"user": "alice"})");
  r.authorization.clear();
  EXPECT_EQ(api_.handle(r, kNowMs).status, 401);
  r.authorization = "Bearer wrong-key-0123456789";
  const http::Response denied = api_.handle(r, kNowMs);
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.body.find("token"), std::string::npos);
  r.authorization.clear();
  r.query = std::string("key=") + kKey;
  EXPECT_EQ(api_.handle(r, kNowMs).status, 200);
}

TEST_F(TokenApiTest, BadFieldsAre400NamingTheField) {
  const struct {
    std::string body;
    std::string field;
  } cases[] = {
      {R"({})", "'user'"},
      {R"({"user": ""})", "'user'"},
      {R"({"user": "a:b"})", "'user'"},
      {R"({"user": "a\nb"})", "'user'"},
      {R"({"user": ")" + std::string(257, 'u') + R"("})", "'user'"},
      {R"({"user": "alice", "tenant": ""})", "'tenant'"},
      {R"({"user": "alice", "tenant": "a b"})", "'tenant'"},
      {R"({"user": "alice", "tenant": ")" + std::string(65, 't') + R"("})", "'tenant'"},
      {R"({"user": "alice", "ttl": 0})", "'ttl'"},
      {R"({"user": "alice", "ttl": 3601})", "'ttl'"},
      {R"({"user": "alice", "ttl": -1})", "'ttl'"},
      {R"({"user": "alice", "ttl": 1.5})", "'ttl'"},
      {R"({"user": "alice", "ttl": "soon"})", "'ttl'"},
  };
  for (const auto& c : cases) {
    const http::Response r = api_.handle(post(c.body), kNowMs);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.field), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(api_.handle(post(R"({"user": ["alice"]})"), kNowMs).status, 400);
  EXPECT_EQ(api_.handle(post("<user/>", "text/xml"), kNowMs).status, 415);
}

TEST_F(TokenApiTest, MethodsAndPreflight) {
  http::Request r = post("");
  r.method = "GET";
  const http::Response get = api_.handle(r, kNowMs);
  EXPECT_EQ(get.status, 405);
  r.method = "OPTIONS";
  r.origin = kOrigin;
  const http::Response pre = api_.handle(r, kNowMs);
  EXPECT_EQ(pre.status, 204);
  bool methods = false;
  for (const auto& [n, v] : pre.headers) methods |= n == "Access-Control-Allow-Methods";
  EXPECT_TRUE(methods);
  r.origin = "https://evil.example.com";
  EXPECT_EQ(api_.handle(r, kNowMs).status, 403);
  // CORS on a success for the key's origin.
  http::Request ok = post(R"({"user": "alice"})");
  ok.origin = kOrigin;
  const http::Response minted = api_.handle(ok, kNowMs);
  bool cors = false;
  for (const auto& [n, v] : minted.headers)
    cors |= n == "Access-Control-Allow-Origin" && v == kOrigin;
  EXPECT_TRUE(cors);
}

}  // namespace
}  // namespace callrelay::calls
