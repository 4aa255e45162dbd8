// The operator endpoints (AdminApi) driven with plain Request values and recording actions:
// every route's content, key checks (401 without, 403 for an application key), methods, and
// bad bodies (malformed ids, both or neither parameter, oversized values, unknown ids).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/log.hpp"
#include "http/admin_api.hpp"

namespace callrelay::http {
namespace {

using Json = nlohmann::json;

constexpr core::TimeMs kNow = 1'700'000'000'000;
constexpr const char* kAdmin = "Bearer admin-0123456789abcdef";
constexpr const char* kApp = "Bearer app-0123456789abcdef";

std::vector<ApiKey> keys() {
  ApiKey admin{"ops", "admin-0123456789abcdef", 3600, {}};
  admin.admin = true;
  return {admin, ApiKey{"app", "app-0123456789abcdef", 3600, {}}};
}

Request request(std::string method, std::string path, std::string auth, std::string body = "",
                std::string query = "") {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.authorization = std::move(auth);
  r.body = std::move(body);
  r.query = std::move(query);
  if (!r.body.empty()) r.content_type = "application/json";
  r.client_ip = "192.0.2.1";
  r.size = 100 + r.body.size();
  return r;
}

AdminAllocation allocation(std::string id, std::string user) {
  AdminAllocation a;
  a.id = std::move(id);
  a.user = std::move(user);
  a.transport = "udp";
  a.family = "ipv4";
  a.client = "127.0.0.1:5000";
  a.relayed = {"127.0.0.1:61000"};
  a.age_s = 12.5;
  a.bytes = {1200, 900};
  a.rate = {100.0, 75.0};
  return a;
}

class AdminApiTest : public ::testing::Test {
 protected:
  AdminApiTest() {
    AdminApi::Actions a;
    a.end_user = [this](const std::string& user) {
      ended_users_.push_back(user);
      return user == "carol" ? size_t{2} : size_t{0};
    };
    a.end_allocation = [this](unsigned worker, uint64_t id) {
      ended_ids_.emplace_back(worker, id);
      return worker == 0 && id == 17;
    };
    a.drain = [](std::optional<uint32_t> s) { return s.value_or(30); };
    a.status = [] {
      AdminStatus s;
      s.version = "0.9.0";
      s.uptime_s = 123;
      s.workers = 2;
      s.allocations_by_transport = {2, 1, 0};
      s.relay_ports_in_use = 3;
      s.relay_ports_total = 4001;
      return s;
    };
    a.allocations = [] {
      AdminAllocation q = allocation("1-4", "bob");
      q.quality = AdminAllocationQuality{0.01, 3.2};
      q.call_id = "c_AAAAAAAAAAAAAAAAAAAAAA";
      return std::vector<AdminAllocation>{allocation("0-17", "alice"), q};
    };
    api_ = std::make_unique<AdminApi>(keys_, std::move(a));
  }

  void with_calls() {
    AdminApi::CallActions c;
    c.calls = [this]() -> std::optional<std::vector<AdminCall>> {
      if (!signaling_up_) return std::nullopt;
      AdminCall ringing{"c_ring", "ringing", "carol", "dave", 1.0, 0, std::nullopt};
      AdminCall active{
          "c_live", "active", "alice", "bob", 3.1, 2, AdminCallQuality{4.2, 0.0, 2.0, 40.0}};
      return std::vector<AdminCall>{ringing, active};
    };
    c.end_call = [this](const std::string& id) -> std::optional<bool> {
      if (!signaling_up_) return std::nullopt;
      ended_calls_.push_back(id);
      return id == "c_live";
    };
    c.connections = [] { return size_t{2}; };
    api_->set_calls(std::move(c));
  }

  /// The route's answer (it must serve the path) and its body parsed.
  std::pair<Response, Json> call(const Request& req) {
    auto r = api_->handle(req, kNow);
    EXPECT_TRUE(r.has_value()) << req.path;
    if (!r) return {};
    return {*r, Json::parse(r->body, nullptr, false)};
  }

  ApiKeys keys_{keys()};
  std::unique_ptr<AdminApi> api_;
  std::vector<std::string> ended_users_, ended_calls_;
  std::vector<std::pair<unsigned, uint64_t>> ended_ids_;
  bool signaling_up_ = true;
};

TEST_F(AdminApiTest, StatusReportsTheRelayCallsAndRecentErrors) {
  with_calls();
  log::clear_recent_lines();
  log::warn("test.warning", {{"what", "disk"}}, "the disk is slow");
  const auto [r, body] = call(request("GET", "/api/v1/admin/status", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body["version"], "0.9.0");
  EXPECT_EQ(body["uptime_s"], 123);
  EXPECT_EQ(body["workers"], 2);
  EXPECT_EQ(body["draining"], false);
  EXPECT_TRUE(body["drain_deadline_s"].is_null());
  EXPECT_EQ(body["allocations"],
            Json::parse(R"({"total":3,"by_transport":{"udp":2,"tcp":1,"tls":0}})"));
  EXPECT_EQ(body["calls"], Json::parse(R"({"ringing":1,"connecting":0,"active":1})"));
  EXPECT_EQ(body["signaling_connections"], 2);
  EXPECT_EQ(body["relay_ports"], Json::parse(R"({"in_use":3,"total":4001})"));
  ASSERT_EQ(body["recent_errors"].size(), 1u) << r.body;
  const Json& e = body["recent_errors"][0];
  EXPECT_EQ(e["level"], "warn");
  EXPECT_EQ(e["event"], "test.warning");
  EXPECT_EQ(e["message"], "the disk is slow");
  EXPECT_EQ(e["time"].get<std::string>().size(), 24u);  // 2026-12-03T08:00:00.123Z
  log::clear_recent_lines();
}

TEST_F(AdminApiTest, StatusWithoutCallsAndWhileDraining) {
  AdminApi::Actions a;
  a.status = [] {
    AdminStatus s;
    s.draining = true;
    s.drain_deadline_s = 25;
    return s;
  };
  AdminApi api(keys_, std::move(a));
  const auto r = api.handle(request("GET", "/api/v1/admin/status", kAdmin), kNow);
  ASSERT_TRUE(r && r->status == 200);
  const Json body = Json::parse(r->body);
  EXPECT_EQ(body["draining"], true);
  EXPECT_EQ(body["drain_deadline_s"], 25);
  EXPECT_EQ(body["calls"], Json::parse(R"({"ringing":0,"connecting":0,"active":0})"));
  EXPECT_EQ(body["signaling_connections"], 0);
}

TEST_F(AdminApiTest, AllocationsListEveryOneAndFilterByUser) {
  auto [r, body] = call(request("GET", "/api/v1/admin/allocations", kAdmin));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(body["allocations"].size(), 2u);
  EXPECT_EQ(body["allocations"][0], Json::parse(R"({"id":"0-17","user":"alice","transport":"udp",
      "family":"ipv4","client":"127.0.0.1:5000","relayed":["127.0.0.1:61000"],"age_s":12.5,
      "bytes":{"client_to_peer":1200,"peer_to_client":900},
      "rate_bytes_per_s":{"client_to_peer":100.0,"peer_to_client":75.0},
      "quality":null,"call_id":null})"));
  EXPECT_EQ(body["allocations"][1]["quality"],
            Json::parse(R"({"loss_ratio":0.01,"jitter_ms":3.2})"));
  EXPECT_EQ(body["allocations"][1]["call_id"], "c_AAAAAAAAAAAAAAAAAAAAAA");
  const auto has = [&](const Response& resp, const std::string& name) {
    for (const auto& [k, v] : resp.headers)
      if (k == name) return true;
    return false;
  };
  EXPECT_TRUE(has(r, "Cache-Control"));

  std::tie(r, body) = call(request("GET", "/api/v1/admin/allocations", kAdmin, "", "user=bob"));
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(body["allocations"].size(), 1u);
  EXPECT_EQ(body["allocations"][0]["id"], "1-4");
  std::tie(r, body) = call(request("GET", "/api/v1/admin/allocations", kAdmin, "", "user=nobody"));
  EXPECT_EQ(body["allocations"], Json::array());
  EXPECT_EQ(call(request("GET", "/api/v1/admin/allocations", kAdmin, "", "user=")).first.status,
            400);
  EXPECT_EQ(
      call(request("GET", "/api/v1/admin/allocations", kAdmin, "", "user=" + std::string(300, 'u')))
          .first.status,
      400);
}

TEST_F(AdminApiTest, CallsListedWithQualityOrNull) {
  auto [r, body] = call(request("GET", "/api/v1/admin/calls", kAdmin));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body, Json::parse(R"({"calls":[]})"));  // calls off: none
  with_calls();
  std::tie(r, body) = call(request("GET", "/api/v1/admin/calls", kAdmin));
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(body["calls"].size(), 2u);
  EXPECT_TRUE(body["calls"][0]["quality"].is_null());
  EXPECT_EQ(body["calls"][1], Json::parse(R"({"id":"c_live","state":"active","caller":"alice",
      "callee":"bob","age_s":3.1,"allocations":2,
      "quality":{"mos":4.2,"loss_ratio":0.0,"jitter_ms":2.0,"rtt_ms":40.0}})"));
  signaling_up_ = false;
  EXPECT_EQ(call(request("GET", "/api/v1/admin/calls", kAdmin)).first.status, 503);
  EXPECT_EQ(call(request("GET", "/api/v1/admin/status", kAdmin)).first.status, 503);
}

TEST_F(AdminApiTest, EndByUserOrAllocationId) {
  auto [r, body] =
      call(request("POST", "/api/v1/admin/allocations/end", kAdmin, R"({"user":"carol"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body["ended"], 2);
  EXPECT_EQ(ended_users_, std::vector<std::string>{"carol"});
  std::tie(r, body) =
      call(request("POST", "/api/v1/admin/allocations/end", kAdmin, R"({"allocation":"0-17"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body["ended"], 1);
  std::tie(r, body) =
      call(request("POST", "/api/v1/admin/allocations/end", kAdmin, R"({"allocation":"1-17"})"));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(body["error"].get<std::string>().find("1-17"), std::string::npos);
  const std::vector<std::pair<unsigned, uint64_t>> asked = {{0, 17}, {1, 17}};
  EXPECT_EQ(ended_ids_, asked);
}

TEST_F(AdminApiTest, EndRefusesBadBodies) {
  for (const char* bad :
       {R"({})", R"({"user":""})", R"({"user":"a","allocation":"0-1"})", R"({"allocation":"17"})",
        R"({"allocation":"-1-2"})", R"({"allocation":"0-"})", R"({"allocation":"0-1x"})",
        R"({"allocation":"+1-2"})", R"({"allocation":"99999999-1"})",
        R"({"allocation":"0-99999999999999999999999"})", R"({"user":[1]})", R"(not json)"}) {
    const auto r =
        api_->handle(request("POST", "/api/v1/admin/allocations/end", kAdmin, bad), kNow);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
    EXPECT_TRUE(Json::parse(r->body, nullptr, false).contains("error")) << r->body;
  }
  const auto r = api_->handle(request("POST", "/api/v1/admin/allocations/end", kAdmin,
                                      R"({"user":")" + std::string(300, 'u') + R"("})"),
                              kNow);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(ended_users_.empty());
  EXPECT_TRUE(ended_ids_.empty());
}

TEST_F(AdminApiTest, EndACall) {
  auto [r, body] = call(request("POST", "/api/v1/admin/calls/end", kAdmin, R"({"call":"c_live"})"));
  EXPECT_EQ(r.status, 404) << r.body;  // calls off
  with_calls();
  std::tie(r, body) =
      call(request("POST", "/api/v1/admin/calls/end", kAdmin, R"({"call":"c_live"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body["ended"], true);
  std::tie(r, body) =
      call(request("POST", "/api/v1/admin/calls/end", kAdmin, R"({"call":"c_gone"})"));
  EXPECT_EQ(r.status, 404);
  for (const char* bad : {R"({})", R"({"call":""})", R"({"call":"c/../x"})", R"({"call":"c x"})"}) {
    EXPECT_EQ(call(request("POST", "/api/v1/admin/calls/end", kAdmin, bad)).first.status, 400)
        << bad;
  }
  const std::string long_id(AdminApi::kMaxCallIdBytes + 1, 'c');
  EXPECT_EQ(
      call(request("POST", "/api/v1/admin/calls/end", kAdmin, R"({"call":")" + long_id + R"("})"))
          .first.status,
      400);
  EXPECT_EQ(ended_calls_, (std::vector<std::string>{"c_live", "c_gone"}));
  signaling_up_ = false;
  EXPECT_EQ(
      call(request("POST", "/api/v1/admin/calls/end", kAdmin, R"({"call":"c_live"})")).first.status,
      503);
}

TEST_F(AdminApiTest, ConfigIsWhatTheActionGives) {
  EXPECT_EQ(call(request("GET", "/api/v1/admin/config", kAdmin)).first.status, 404);
  api_->set_config([] { return Json::parse(R"({"auth":{"secrets":["***"]}})"); });
  const auto [r, body] = call(request("GET", "/api/v1/admin/config", kAdmin));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body["auth"]["secrets"][0], "***");
}

TEST_F(AdminApiTest, KeysAndMethodsAreChecked) {
  with_calls();
  api_->set_config([] { return Json::object(); });
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"GET", "/api/v1/admin/status"},
      {"GET", "/api/v1/admin/allocations"},
      {"GET", "/api/v1/admin/calls"},
      {"GET", "/api/v1/admin/config"},
      {"POST", "/api/v1/admin/allocations/end"},
      {"POST", "/api/v1/admin/calls/end"},
      {"POST", "/api/v1/admin/drain"}};
  int address = 10;  // each route from its own address: failures spend a per-address budget
  for (const auto& [method, path] : routes) {
    const std::string body = method == "POST" ? R"({"user":"carol","call":"c_live"})" : "";
    const auto from = [&](Request r) {
      r.client_ip = "192.0.2." + std::to_string(address);
      return r;
    };
    EXPECT_EQ(call(from(request(method, path, "", body))).first.status, 401) << path;
    EXPECT_EQ(call(from(request(method, path, "Bearer wrong-key-0000000000", body))).first.status,
              401)
        << path;
    EXPECT_EQ(call(from(request(method, path, kApp, body))).first.status, 403) << path;
    ++address;
    const auto wrong = call(request(method == "GET" ? "POST" : "GET", path, kAdmin));
    EXPECT_EQ(wrong.first.status, 405) << path;
  }
  EXPECT_TRUE(ended_users_.empty());
  EXPECT_TRUE(ended_calls_.empty());
  EXPECT_FALSE(api_->handle(request("GET", "/api/v1/admin/reload", kAdmin), kNow).has_value());
}

TEST_F(AdminApiTest, DrainTakesAnOptionalDeadline) {
  auto [r, body] = call(request("POST", "/api/v1/admin/drain", kAdmin, R"({"deadline_s":0})"));
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(body["deadline_s"], 0);
  std::tie(r, body) = call(request("POST", "/api/v1/admin/drain", kAdmin));
  EXPECT_EQ(body["deadline_s"], 30);
  for (const char* bad : {R"({"deadline_s":-1})", R"({"deadline_s":"x"})",
                          R"({"deadline_s":99999999999})", R"({"deadline_s":1.5})"})
    EXPECT_EQ(call(request("POST", "/api/v1/admin/drain", kAdmin, bad)).first.status, 400) << bad;
}

TEST(AdminIds, ParseAndTimes) {
  EXPECT_EQ(parse_allocation_id("0-17"), (std::pair<unsigned, uint64_t>{0, 17}));
  EXPECT_EQ(parse_allocation_id("12-18446744073709551615"),
            (std::pair<unsigned, uint64_t>{12, UINT64_MAX}));
  EXPECT_FALSE(parse_allocation_id("12-18446744073709551616"));
  EXPECT_FALSE(parse_allocation_id("0--1"));
  EXPECT_FALSE(parse_allocation_id(""));
  EXPECT_EQ(rfc3339_ms(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace callrelay::http
