// ApiKeys: matching, the shared failure budget per address, CORS, and the budget holding under
// concurrent handlers (the HTTP listener runs several threads).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "http/api_keys.hpp"

namespace callrelay::http {
namespace {

constexpr core::TimeMs kNow = 1'700'000'000'000;
constexpr const char* kKey = "key-0123456789abcdef";
constexpr const char* kWebKey = "web-0123456789abcdef";
constexpr const char* kOrigin = "https://app.example.com";

std::vector<ApiKey> keys() {
  return {ApiKey{"backend", kKey, 7200, {}}, ApiKey{"web", kWebKey, 600, {kOrigin}}};
}

Request request(std::string authorization, std::string ip = "192.0.2.1") {
  Request r;
  r.method = "GET";
  r.path = "/api/v1/calls";
  r.authorization = std::move(authorization);
  r.client_ip = std::move(ip);
  return r;
}

bool has_header(const Response& r, const std::string& name, const std::string& value) {
  for (const auto& [n, v] : r.headers)
    if (n == name && v == value) return true;
  return false;
}

TEST(ApiKeys, MatchesEachKeyAndNothingElse) {
  ApiKeys k(keys());
  ASSERT_NE(k.match(kKey), nullptr);
  EXPECT_EQ(k.match(kKey)->name, "backend");
  EXPECT_EQ(k.match(kWebKey)->name, "web");
  EXPECT_EQ(k.match(""), nullptr);
  EXPECT_EQ(k.match(std::string(kKey) + "x"), nullptr);
  EXPECT_EQ(k.match(std::string(kKey).substr(1)), nullptr);
  ApiKeys none({});
  EXPECT_EQ(none.match(""), nullptr);
}

TEST(ApiKeys, AuthorizeFromHeaderOrParameters) {
  ApiKeys k(keys());
  auto got = k.authorize(request(std::string("Bearer  ") + kKey + " "), {}, kNow);
  ASSERT_TRUE(std::holds_alternative<const ApiKey*>(got));
  EXPECT_EQ(std::get<const ApiKey*>(got)->name, "backend");
  got = k.authorize(request(""), {{"api", kWebKey}}, kNow);
  ASSERT_TRUE(std::holds_alternative<const ApiKey*>(got));
  EXPECT_EQ(std::get<const ApiKey*>(got)->name, "web");
  got = k.authorize(request(""), {}, kNow);
  ASSERT_TRUE(std::holds_alternative<Response>(got));
  EXPECT_EQ(std::get<Response>(got).status, 401);
  EXPECT_TRUE(has_header(std::get<Response>(got), "WWW-Authenticate", "Bearer"));
  EXPECT_NE(std::get<Response>(got).body.find("missing API key"), std::string::npos);
}

TEST(ApiKeys, CorsForAllowedOriginsOnly) {
  ApiKeys k(keys());
  Request req = request("Bearer nope");
  req.origin = kOrigin;
  // An error before any key matched: readable by an origin some key allows.
  auto got = k.authorize(req, {}, kNow);
  EXPECT_TRUE(has_header(std::get<Response>(got), "Access-Control-Allow-Origin", kOrigin));
  // The backend key lists no origin.
  EXPECT_FALSE(has_header(k.with_cors(Response{}, req, k.match(kKey)),
                          "Access-Control-Allow-Origin", kOrigin));
  EXPECT_TRUE(has_header(k.with_cors(Response{}, req, k.match(kWebKey)),
                         "Access-Control-Allow-Origin", kOrigin));
  const Response pre = k.preflight(req, "GET, OPTIONS");
  EXPECT_EQ(pre.status, 204);
  EXPECT_TRUE(has_header(pre, "Access-Control-Allow-Methods", "GET, OPTIONS"));
  req.origin = "https://evil.example.com";
  EXPECT_EQ(k.preflight(req, "GET, OPTIONS").status, 403);
  EXPECT_FALSE(has_header(k.with_cors(Response{}, req, k.match(kWebKey)),
                          "Access-Control-Allow-Origin", req.origin));
}

TEST(ApiKeys, OneFailureBudgetPerAddressAcrossEndpoints) {
  ApiKeys k(keys());
  for (int i = 0; i < 10; ++i) {
    Request r = request("Bearer wrong");
    r.path = i % 2 ? "/api/v1/calls" : "/api/v1/signal/token";
    EXPECT_EQ(std::get<Response>(k.authorize(r, {}, kNow)).status, 401);
  }
  const auto limited = k.authorize(request(std::string("Bearer ") + kKey), {}, kNow);
  ASSERT_TRUE(std::holds_alternative<Response>(limited));
  EXPECT_EQ(std::get<Response>(limited).status, 429);
  EXPECT_TRUE(has_header(std::get<Response>(limited), "Retry-After", "2"));
  EXPECT_TRUE(std::holds_alternative<const ApiKey*>(
      k.authorize(request(std::string("Bearer ") + kKey, "192.0.2.9"), {}, kNow)));
}

// Handlers on several threads spend one budget: exactly `burst` failures get 401, every
// further attempt 429, whatever the interleaving (a torn bucket would let more through).
TEST(ApiKeys, BudgetHoldsUnderConcurrentHandlers) {
  ApiKeys k(keys(), FailureLimiter::Options{10, 0, 4096});
  std::atomic<int> unauthorized{0}, limited{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        const auto got = k.authorize(request("Bearer wrong"), {}, kNow);
        const int status = std::get<Response>(got).status;
        (status == 401 ? unauthorized : limited).fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(unauthorized.load(), 10);
  EXPECT_EQ(limited.load(), 1990);
}

}  // namespace
}  // namespace callrelay::http
