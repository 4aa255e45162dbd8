// The demo's endpoints with plain Request values: a token that the signaling verifier accepts,
// user ids refused like everywhere, the WebSocket URL derived from the page's origin, the
// online list, methods and the per-address budget.
#include "calls/signaling/demo_api.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace callrelay::calls {
namespace {

constexpr int64_t kNowMs = 1'900'000'000'000;

class DemoApiTest : public ::testing::Test {
 protected:
  DemoApiTest() {
    DemoApi::Options o;
    o.fallback_host = "127.0.0.1:9641";
    api_ = std::make_unique<DemoApi>(signer_, [this] { return online_; }, o);
  }
  static http::Request post_token(std::string body, std::string origin = "http://127.0.0.1:9641",
                                  std::string ip = "192.0.2.1") {
    http::Request r;
    r.method = "POST";
    r.path = DemoApi::kTokenPath;
    r.content_type = "application/json";
    r.origin = std::move(origin);
    r.body = std::move(body);
    r.client_ip = std::move(ip);
    return r;
  }
  static http::Request get_online(std::string ip = "192.0.2.1") {
    http::Request r;
    r.method = "GET";
    r.path = DemoApi::kOnlinePath;
    r.client_ip = std::move(ip);
    return r;
  }
  http::Response call(const http::Request& req, int64_t now = kNowMs) {
    auto r = api_->handle(req, now);
    EXPECT_TRUE(r.has_value());
    return r ? *r : http::Response{};
  }
  static nlohmann::json body_of(const http::Response& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
  }

  TokenSigner signer_{"a-shared-signaling-secret-of-32+bytes", 3600};
  std::vector<std::string> online_;
  std::unique_ptr<DemoApi> api_;
};

TEST_F(DemoApiTest, TokenVerifiesWithTheSignalingVerifier) {
  const http::Response r = call(post_token(R"({"user": "alice"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = body_of(r);
  EXPECT_EQ(body["user"], "alice");
  EXPECT_EQ(body["expires"], kNowMs / 1000 + 3600);
  EXPECT_EQ(body["url"], "ws://127.0.0.1:9641/api/v1/signal");
  const auto claims = signer_.verify(body["token"].get<std::string>(), kNowMs / 1000);
  ASSERT_TRUE(std::holds_alternative<TokenClaims>(claims));
  EXPECT_EQ(std::get<TokenClaims>(claims).user, "alice");
  EXPECT_EQ(std::get<TokenClaims>(claims).tenant, "");
  EXPECT_EQ(std::get<TokenClaims>(claims).expires, kNowMs / 1000 + 3600);
  // Another secret's verifier refuses it.
  const TokenSigner other("another-signaling-secret-of-32+bytes!", 3600);
  EXPECT_TRUE(std::holds_alternative<TokenError>(
      other.verify(body["token"].get<std::string>(), kNowMs / 1000)));
}

TEST_F(DemoApiTest, TokenLifetimeIsCappedBySigner) {
  const TokenSigner short_lived("a-shared-signaling-secret-of-32+bytes", 600);
  DemoApi api(short_lived, {}, DemoApi::Options{});
  const auto r = api.handle(post_token(R"({"user": "bob"})"), kNowMs);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body_of(*r)["expires"], kNowMs / 1000 + 600);
}

TEST_F(DemoApiTest, InvalidUsersAndBodiesAreRefused) {
  const auto field_of = [&](const std::string& body) {
    const http::Response r = call(post_token(body, "", "198.51.100." + std::to_string(body.size())));
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    return body_of(r).value("field", std::string("?"));
  };
  EXPECT_EQ(field_of(R"({"user": ""})"), "user");
  EXPECT_EQ(field_of(R"({"user": "a:b"})"), "user");
  EXPECT_EQ(field_of(R"({"user": "tab\there"})"), "user");
  EXPECT_EQ(field_of(R"({"user": ")" + std::string(257, 'u') + R"("})"), "user");
  EXPECT_EQ(field_of(R"({"user": 42})"), "user");
  EXPECT_EQ(field_of(R"({})"), "user");
  EXPECT_EQ(field_of(R"({"user": "alice", "tenant": "acme"})"), "tenant");
  EXPECT_EQ(field_of("user=alice"), "body");
  EXPECT_EQ(field_of(R"(["alice"])"), "body");
  EXPECT_EQ(field_of("{\"user\": \"\xff\"}"), "body");  // not UTF-8
  EXPECT_EQ(field_of(std::string(2000, ' ')), "body");
  // Non-ASCII user ids are fine.
  EXPECT_EQ(call(post_token(R"({"user": "zoë"})")).status, 200);
}

TEST_F(DemoApiTest, SignalUrlFollowsThePagesOrigin) {
  EXPECT_EQ(api_->signal_url("https://demo.example.com"), "wss://demo.example.com/api/v1/signal");
  EXPECT_EQ(api_->signal_url("http://[::1]:9641"), "ws://[::1]:9641/api/v1/signal");
  EXPECT_EQ(api_->signal_url("http://10.0.0.5:8080"), "ws://10.0.0.5:8080/api/v1/signal");
  // Missing, opaque or malformed origins: the listener's own address.
  for (const char* bad : {"", "null", "file://", "http://", "http://a/b", "http://a b",
                          "ftp://host", "http://host\r\nX: y"})
    EXPECT_EQ(api_->signal_url(bad), "ws://127.0.0.1:9641/api/v1/signal") << bad;
  DemoApi::Options tls;
  tls.tls = true;
  tls.fallback_host = "relay.example.com:443";
  const DemoApi secure(signer_, {}, tls);
  EXPECT_EQ(secure.signal_url(""), "wss://relay.example.com:443/api/v1/signal");
}

TEST_F(DemoApiTest, OnlineListsConnectedUsersSorted) {
  EXPECT_EQ(body_of(call(get_online()))["users"], nlohmann::json::array());
  online_ = {"carol", "alice", "bob", "alice"};
  const http::Response r = call(get_online());
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_of(r)["users"], nlohmann::json({"alice", "bob", "carol"}));
}

TEST_F(DemoApiTest, MethodsAndOtherPaths) {
  http::Request r = get_online();
  r.method = "POST";
  EXPECT_EQ(call(r).status, 405);
  r = post_token(R"({"user": "alice"})");
  r.method = "GET";
  EXPECT_EQ(call(r).status, 405);
  r.path = "/demo/index.html";
  EXPECT_FALSE(api_->handle(r, kNowMs).has_value());
  r.path = "/demo/api/tokens";
  EXPECT_FALSE(api_->handle(r, kNowMs).has_value());
}

TEST_F(DemoApiTest, EachAddressHasABudget) {
  const DemoApi::Options o;
  const auto burst = static_cast<int>(o.token_limit.burst);
  for (int i = 0; i < burst; ++i)
    ASSERT_EQ(call(post_token(R"({"user": "alice"})")).status, 200) << i;
  const http::Response over = call(post_token(R"({"user": "alice"})"));
  EXPECT_EQ(over.status, 429);
  bool retry_after = false;
  for (const auto& h : over.headers) retry_after |= h.first == "Retry-After";
  EXPECT_TRUE(retry_after);
  // Another address, and the online list, have budgets of their own.
  EXPECT_EQ(call(post_token(R"({"user": "alice"})", "", "192.0.2.2")).status, 200);
  EXPECT_EQ(call(get_online()).status, 200);
  // The budget refills (one every 5 s).
  EXPECT_EQ(call(post_token(R"({"user": "alice"})"), kNowMs + 5'000).status, 200);
}

}  // namespace
}  // namespace callrelay::calls
