// POST /api/v1/preflight and /api/v1/preflight/result with plain Request values: the bearer
// token, the credentials asked of the relay, each field of the report and its error, ids that
// are unknown, another user's or too old, the per-user cap, the metrics, and the credentials
// ended (through a fake relay).
#include "calls/signaling/preflight_api.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace callrelay::calls {
namespace {

constexpr int64_t kNowMs = 1'900'000'000'000;
constexpr const char* kSecret = "a-shared-signaling-secret-of-32+bytes";

/// Remembers what it was asked; hands out one server per request.
class FakeRelay : public PreflightRelay {
 public:
  nlohmann::json ice_servers(std::string_view user, std::string_view id, uint32_t ttl_s,
                             TimeMs now) override {
    minted.push_back({std::string(user), std::string(id), ttl_s, now});
    if (!has_uris) return nlohmann::json::array();
    return nlohmann::json::array(
        {{{"urls", {"turn:192.0.2.9:3478?transport=udp", "turns:relay.example.com:5349"}},
          {"username", std::to_string(now / 1000 + ttl_s) + ":" + std::string(user) +
                           ":call=" + std::string(id)},
          {"credential", "secret"}}});
  }
  void end_call(std::string_view id) override { ended.emplace_back(id); }

  struct Mint {
    std::string user, id;
    uint32_t ttl_s;
    TimeMs now;
  };
  std::vector<Mint> minted;
  std::vector<std::string> ended;
  bool has_uris = true;
};

class PreflightApiTest : public ::testing::Test {
 protected:
  PreflightApiTest() {
    api_ = std::make_unique<PreflightApi>(signer_, relay_, &metrics_, PreflightApi::Options{},
                                          [this] {
                                            const std::string n = std::to_string(++next_id_);
                                            return "p_" + std::string(22 - n.size(), 'A') + n;
                                          });
  }

  http::Request request(std::string path, std::string body, const std::string& user = "alice") {
    http::Request r;
    r.method = "POST";
    r.path = std::move(path);
    r.authorization = "Bearer " + signer_.mint(user, "", 600, kNowMs / 1000);
    r.content_type = "application/json";
    r.body = std::move(body);
    r.client_ip = "192.0.2.1";
    return r;
  }
  http::Response call(const http::Request& req, int64_t now = kNowMs) {
    auto r = api_->handle(req, now);
    EXPECT_TRUE(r.has_value());
    return r ? *r : http::Response{};
  }
  /// Starts a preflight for `user`; its id.
  std::string start(const std::string& user = "alice") {
    const http::Response r = call(request(PreflightApi::kPath, "", user));
    EXPECT_EQ(r.status, 200) << r.body;
    return nlohmann::json::parse(r.body, nullptr, false).value("id", "");
  }
  http::Response report(const std::string& body, const std::string& user = "alice",
                        int64_t now = kNowMs) {
    return call(request(PreflightApi::kResultPath, body, user), now);
  }
  static nlohmann::json body_of(const http::Response& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
  }
  /// The report for `id` with `results` (JSON text of the array).
  static std::string report_body(const std::string& id, const std::string& results) {
    return R"({"id": ")" + id + R"(", "results": )" + results + "}";
  }

  TokenSigner signer_{kSecret, 3600};
  FakeRelay relay_;
  PreflightMetrics metrics_;
  int next_id_ = 0;
  std::unique_ptr<PreflightApi> api_;
};

TEST_F(PreflightApiTest, StartHandsOutCredentialsScopedToTheId) {
  const http::Response r = call(request(PreflightApi::kPath, ""));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = body_of(r);
  const std::string id = body["id"];
  EXPECT_EQ(id.size(), 24u);
  EXPECT_EQ(id.substr(0, 2), "p_");
  EXPECT_EQ(body["ttl"], 60);
  ASSERT_EQ(body["iceServers"].size(), 1u);
  EXPECT_EQ(body["iceServers"][0]["username"],
            std::to_string(kNowMs / 1000 + 60) + ":alice:call=" + id);
  ASSERT_EQ(relay_.minted.size(), 1u);
  EXPECT_EQ(relay_.minted[0].user, "alice");
  EXPECT_EQ(relay_.minted[0].id, id);
  EXPECT_EQ(relay_.minted[0].ttl_s, 60u);
  EXPECT_EQ(api_->outstanding(), 1u);
}

TEST_F(PreflightApiTest, RandomIdsHaveTheShape) {
  PreflightApi api(signer_, relay_, nullptr);
  const auto r = api.handle(request(PreflightApi::kPath, ""), kNowMs);
  ASSERT_TRUE(r);
  const std::string id = body_of(*r)["id"];
  ASSERT_EQ(id.size(), 24u);
  EXPECT_EQ(id.substr(0, 2), "p_");
  EXPECT_EQ(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                 2),
            std::string::npos);
}

TEST_F(PreflightApiTest, ValidReportIsCountedAndEndsTheCredentials) {
  const std::string id = start();
  const http::Response r = report(report_body(id, R"([
      {"transport": "udp", "ok": true, "gather_ms": 120, "rtt_ms": 3.5},
      {"transport": "tcp", "ok": false, "gather_ms": 5000, "error": "no relay candidate"},
      {"transport": "tls", "ok": true, "gather_ms": 300.5}])"));
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(relay_.ended, std::vector<std::string>{id});
  EXPECT_EQ(api_->outstanding(), 0u);
  EXPECT_EQ(metrics_.total(PreflightTransport::kUdp, true), 1);
  EXPECT_EQ(metrics_.total(PreflightTransport::kUdp, false), 0);
  EXPECT_EQ(metrics_.total(PreflightTransport::kTcp, false), 1);
  EXPECT_EQ(metrics_.total(PreflightTransport::kTls, true), 1);
  EXPECT_EQ(metrics_.gather_samples(PreflightTransport::kUdp), 1u);
  EXPECT_EQ(metrics_.rtt_samples(PreflightTransport::kUdp), 1u);
  EXPECT_EQ(metrics_.gather_samples(PreflightTransport::kTcp), 0u);  // failed: not timed
  EXPECT_EQ(metrics_.gather_samples(PreflightTransport::kTls), 1u);
  EXPECT_EQ(metrics_.rtt_samples(PreflightTransport::kTls), 0u);
  const std::string text = metrics_.scrape_text();
  EXPECT_NE(text.find(R"(callrelay_preflight_total{outcome="ok",transport="udp"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("callrelay_preflight_rtt_seconds_bucket"), std::string::npos);
  // An id is taken once.
  EXPECT_EQ(report(report_body(id, R"([{"transport": "udp", "ok": true}])")).status, 404);
}

TEST_F(PreflightApiTest, SeriesExistBeforeAnyPreflight) {
  const std::string text = metrics_.scrape_text();
  for (const char* t : {"udp", "tcp", "tls"}) {
    for (const char* o : {"ok", "failed"}) {
      const std::string series = std::string("callrelay_preflight_total{outcome=\"") + o +
                                  "\",transport=\"" + t + "\"} 0";
      EXPECT_NE(text.find(series), std::string::npos) << series;
    }
  }
}

TEST_F(PreflightApiTest, RefusedWithoutAValidToken) {
  http::Request r = request(PreflightApi::kPath, "");
  r.authorization.clear();
  http::Response resp = call(r);
  EXPECT_EQ(resp.status, 401);
  EXPECT_TRUE(body_of(resp)["error"].is_string());
  r.authorization = "Bearer not.a.jwt";
  EXPECT_EQ(call(r).status, 401);
  r.authorization = "Basic " + signer_.mint("alice", "", 600, kNowMs / 1000);
  EXPECT_EQ(call(r).status, 401);
  // Signed with another secret.
  const TokenSigner other("another-signaling-secret-of-32+bytes!", 3600);
  r.authorization = "Bearer " + other.mint("alice", "", 600, kNowMs / 1000);
  EXPECT_EQ(call(r).status, 401);
  // Expired.
  r = request(PreflightApi::kPath, "");
  EXPECT_EQ(call(r, kNowMs + 601'000).status, 401);
  // The result endpoint too.
  http::Request result = request(PreflightApi::kResultPath, "{}");
  result.authorization = "bearer   ";
  EXPECT_EQ(call(result).status, 401);
  EXPECT_TRUE(relay_.minted.empty());
}

TEST_F(PreflightApiTest, EachInvalidFieldIsNamed) {
  const std::string id = start();
  const auto field_of = [&](const std::string& body) {
    const http::Response r = report(body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    return body_of(r).value("field", std::string("?"));
  };
  const auto one = [&](const std::string& entry) {
    return field_of(report_body(id, "[" + entry + "]"));
  };
  EXPECT_EQ(field_of("not json"), "body");
  EXPECT_EQ(field_of("[1]"), "body");
  EXPECT_EQ(field_of(R"({"id": ")" + id + R"(", "results": [], "extra": 1})"), "extra");
  EXPECT_EQ(field_of(R"({"results": [{"transport": "udp", "ok": true}]})"), "id");
  EXPECT_EQ(field_of(R"({"id": 7, "results": [{"transport": "udp", "ok": true}]})"), "id");
  EXPECT_EQ(field_of(R"({"id": "c_AAAAAAAAAAAAAAAAAAAAAA", "results": []})"), "id");
  EXPECT_EQ(field_of(R"({"id": ")" + id + R"("})"), "results");
  EXPECT_EQ(field_of(report_body(id, "[]")), "results");
  EXPECT_EQ(field_of(report_body(id, R"({"transport": "udp"})")), "results");
  EXPECT_EQ(field_of(report_body(id, R"([{"transport":"udp","ok":true},{"transport":"tcp",
      "ok":true},{"transport":"tls","ok":true},{"transport":"udp","ok":true}])")),
            "results");
  EXPECT_EQ(one("7"), "results[0]");
  EXPECT_EQ(one(R"({"ok": true})"), "results[0].transport");
  EXPECT_EQ(one(R"({"transport": "sctp", "ok": true})"), "results[0].transport");
  EXPECT_EQ(one(R"({"transport": "UDP", "ok": true})"), "results[0].transport");
  EXPECT_EQ(one(R"({"transport": "udp"})"), "results[0].ok");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": "yes"})"), "results[0].ok");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": true, "gather_ms": -1})"), "results[0].gather_ms");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": true, "gather_ms": 60001})"),
            "results[0].gather_ms");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": true, "gather_ms": "5"})"), "results[0].gather_ms");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": true, "rtt_ms": 1e9})"), "results[0].rtt_ms");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": true, "rtt_ms": null})"), "results[0].rtt_ms");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": false, "rtt_ms": 3})"), "results[0].rtt_ms");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": false, "error": 5})"), "results[0].error");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": false, "error": ")" + std::string(129, 'x') +
                R"("})"),
            "results[0].error");
  EXPECT_EQ(one(R"({"transport": "udp", "ok": true, "mos": 4})"), "results[0].mos");
  EXPECT_EQ(field_of(report_body(id, R"([{"transport": "tcp", "ok": true},
                                         {"transport": "tcp", "ok": false}])")),
            "results[1].transport");
  EXPECT_EQ(field_of(report_body(id, R"([[[[[[1]]]]]])")), "body");
  EXPECT_EQ(field_of(std::string(5000, ' ') + "{}"), "body");
  // Nothing was counted or ended; the preflight still awaits its result.
  EXPECT_EQ(metrics_.total(PreflightTransport::kUdp, true), 0);
  EXPECT_TRUE(relay_.ended.empty());
  EXPECT_EQ(report(report_body(id, R"([{"transport": "udp", "ok": false,
      "error": ")" + std::string(128, 'x') + R"("}])")).status,
            204);
}

TEST_F(PreflightApiTest, UnknownForeignAndOldIdsAreRefused) {
  const std::string id = start("alice");
  const std::string good = R"([{"transport": "udp", "ok": true, "gather_ms": 10}])";
  EXPECT_EQ(report(report_body("p_AAAAAAAAAAAAAAAAAAAAA9", good)).status, 404);
  const http::Response foreign = report(report_body(id, good), "bob");
  EXPECT_EQ(foreign.status, 404);
  EXPECT_EQ(body_of(foreign)["field"], "id");
  const int64_t late = kNowMs + PreflightApi::Options{}.result_window_ms + 1;
  EXPECT_EQ(report(report_body(id, good), "alice", late).status, 404);
  // The late request expired it: its credentials were ended even without a result.
  EXPECT_EQ(relay_.ended, std::vector<std::string>{id});
  EXPECT_EQ(api_->outstanding(), 0u);
  EXPECT_EQ(metrics_.total(PreflightTransport::kUdp, true), 0);
}

TEST_F(PreflightApiTest, PerUserCapAndItsRelease) {
  std::vector<std::string> ids;
  for (size_t i = 0; i < PreflightApi::Options{}.max_per_user; ++i) ids.push_back(start());
  const http::Response over = call(request(PreflightApi::kPath, ""));
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(relay_.minted.size(), ids.size());
  // Another user is not affected.
  EXPECT_FALSE(start("bob").empty());
  // A result frees a place; so does time.
  EXPECT_EQ(report(report_body(ids[0], R"([{"transport": "udp", "ok": true}])")).status, 204);
  EXPECT_FALSE(start().empty());
  EXPECT_EQ(call(request(PreflightApi::kPath, "")).status, 429);
  api_->expire(kNowMs + PreflightApi::Options{}.result_window_ms + 1);
  EXPECT_EQ(api_->outstanding(), 0u);
  EXPECT_EQ(relay_.ended.size(), ids.size() + 2);  // every one ended once
}

TEST_F(PreflightApiTest, GlobalCap) {
  PreflightApi::Options o;
  o.max_outstanding = 2;
  PreflightApi api(signer_, relay_, nullptr, o);
  EXPECT_EQ(api.handle(request(PreflightApi::kPath, "", "a"), kNowMs)->status, 200);
  EXPECT_EQ(api.handle(request(PreflightApi::kPath, "", "b"), kNowMs)->status, 200);
  EXPECT_EQ(api.handle(request(PreflightApi::kPath, "", "c"), kNowMs)->status, 503);
}

TEST_F(PreflightApiTest, NoCredentialsToHandOutIsA503) {
  relay_.has_uris = false;
  const http::Response r = call(request(PreflightApi::kPath, ""));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(api_->outstanding(), 0u);
}

TEST_F(PreflightApiTest, MethodsPathsAndCors) {
  http::Request r = request(PreflightApi::kPath, "");
  r.method = "GET";
  EXPECT_EQ(call(r).status, 405);
  r.method = "OPTIONS";
  r.authorization.clear();
  const http::Response pre = call(r);
  EXPECT_EQ(pre.status, 204);
  bool allows_authorization = false;
  for (const auto& [name, value] : pre.headers)
    allows_authorization |= name == "Access-Control-Allow-Headers" &&
                            value.find("Authorization") != std::string::npos;
  EXPECT_TRUE(allows_authorization);
  r = request("/api/v1/preflightx", "");
  EXPECT_FALSE(api_->handle(r, kNowMs).has_value());
  r = request("/api/v1/preflight/result/x", "");
  EXPECT_FALSE(api_->handle(r, kNowMs).has_value());
}

TEST_F(PreflightApiTest, DestructionEndsWhatIsOutstanding) {
  const std::string a = start(), b = start("bob");
  api_.reset();
  ASSERT_EQ(relay_.ended.size(), 2u);
  EXPECT_NE(std::find(relay_.ended.begin(), relay_.ended.end(), a), relay_.ended.end());
  EXPECT_NE(std::find(relay_.ended.begin(), relay_.ended.end(), b), relay_.ended.end());
}

}  // namespace
}  // namespace callrelay::calls
