// Routes other modules add and the WebSocket path, driven with plain Request values.
#include <gtest/gtest.h>

#include "http/router.hpp"

namespace callrelay::http {
namespace {

constexpr core::TimeMs kNow = 1'700'000'000'000;

class FakeEndpoint : public WsEndpoint {
 public:
  std::variant<Accepted, Response> on_upgrade(const Request& req) override {
    seen = req.query;
    if (req.query != "token=good") return json_error(401, "bad token");
    return Accepted{42};
  }
  void on_open(uint64_t, std::shared_ptr<WsConnection>) override {}
  void on_message(uint64_t, std::string) override {}
  void on_close(uint64_t) override {}
  size_t max_message_bytes() const override { return 1024; }
  std::string seen;
};

class RouterTest : public ::testing::Test {
 protected:
  Request req(std::string method, std::string path) {
    Request r;
    r.method = std::move(method);
    r.path = std::move(path);
    r.client_ip = "192.0.2.1";
    r.size = 100;
    return r;
  }
  Request upgrade(std::string query) {
    Request r = req("GET", "/api/v1/signal");
    r.query = std::move(query);
    r.upgrade = "websocket";
    r.connection_upgrade = true;
    r.sec_websocket_key = "dGhlIHNhbXBsZSBub25jZQ==";
    r.sec_websocket_version = "13";
    return r;
  }

  core::Authenticator auth_{core::AuthConfig{}};
  ApiKeys keys_{{}};
  CredentialApi api_{ApiConfig{}, {}, ':', auth_, keys_};
  Readiness ready_;
  Router router_{4096, api_, ready_, {}};
  FakeEndpoint endpoint_;
};

TEST_F(RouterTest, AddedRoutesInOrderAfterTheBuiltInOnes) {
  std::vector<std::string> calls;
  router_.add_route("/sdk/", [&](const Request& r, core::TimeMs) -> std::optional<Response> {
    calls.push_back("first " + r.path);
    if (r.path != "/sdk/callrelay.js") return std::nullopt;  // passes
    Response out;
    out.content_type = "application/javascript; charset=utf-8";
    out.body = "export {};\n";
    out.headers.emplace_back("Cache-Control", "public, max-age=300");
    return out;
  });
  router_.add_route("/", [&](const Request& r, core::TimeMs) -> std::optional<Response> {
    calls.push_back("second " + r.path);
    Response out;
    out.content_type = "text/html; charset=utf-8";
    out.body = "<!doctype html>";
    return out;
  });
  const Response js = router_.handle(req("GET", "/sdk/callrelay.js"), kNow);
  EXPECT_EQ(js.content_type, "application/javascript; charset=utf-8");
  EXPECT_EQ(js.headers.at(0).second, "public, max-age=300");
  const Response html = router_.handle(req("GET", "/sdk/other"), kNow);
  EXPECT_EQ(html.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(calls, (std::vector<std::string>{"first /sdk/callrelay.js", "first /sdk/other",
                                             "second /sdk/other"}));
  // Built-in routes come first; oversized requests never reach a handler.
  EXPECT_EQ(router_.handle(req("GET", "/healthz"), kNow).body, "ok\n");
  Request big = req("GET", "/sdk/callrelay.js");
  big.size = 5000;
  EXPECT_EQ(router_.handle(big, kNow).status, 413);
  EXPECT_EQ(calls.size(), 3u);
}

TEST_F(RouterTest, UnmatchedPathIs404) {
  router_.add_route("/api/v1/calls", [](const Request&, core::TimeMs) { return std::nullopt; });
  EXPECT_EQ(router_.handle(req("GET", "/api/v1/calls"), kNow).status, 404);
}

TEST_F(RouterTest, WebSocketUpgrades) {
  EXPECT_FALSE(router_.route_upgrade(upgrade("token=good"), kNow));  // no endpoint yet
  router_.set_websocket("/api/v1/signal", &endpoint_);
  auto got = router_.route_upgrade(upgrade("token=good"), kNow);
  ASSERT_TRUE(got);
  const auto& acc = std::get<WsAccept>(*got);
  EXPECT_EQ(acc.session, 42u);
  EXPECT_EQ(acc.endpoint, &endpoint_);
  EXPECT_EQ(acc.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  // The endpoint's refusal comes back as it made it.
  got = router_.route_upgrade(upgrade("token=bad"), kNow);
  EXPECT_EQ(std::get<Response>(*got).status, 401);
  EXPECT_EQ(endpoint_.seen, "token=bad");
  Request r = upgrade("token=good");
  r.sec_websocket_version = "8";
  EXPECT_EQ(std::get<Response>(*router_.route_upgrade(r, kNow)).status, 426);
  r = upgrade("token=good");
  r.sec_websocket_key = "short";
  EXPECT_EQ(std::get<Response>(*router_.route_upgrade(r, kNow)).status, 400);
  // Not upgrades: other paths, other methods, no Connection: upgrade.
  r = upgrade("token=good");
  r.path = "/healthz";
  EXPECT_FALSE(router_.route_upgrade(r, kNow));
  r = upgrade("token=good");
  r.connection_upgrade = false;
  EXPECT_FALSE(router_.route_upgrade(r, kNow));
  r = upgrade("token=good");
  r.method = "POST";
  EXPECT_FALSE(router_.route_upgrade(r, kNow));
  // A plain request on the WebSocket path: 426.
  const Response plain = router_.handle(req("GET", "/api/v1/signal"), kNow);
  EXPECT_EQ(plain.status, 426);
}

}  // namespace
}  // namespace callrelay::http
