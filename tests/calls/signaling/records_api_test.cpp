// GET /api/v1/calls and /api/v1/calls/{id} with plain Request values: every parameter reaches
// the store as a RecordQuery (a fake store records it), every bad parameter is a 400 naming it,
// and paging works end to end on a real SqliteStore.
#include "calls/signaling/records_api.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "calls/store/record_json.hpp"
#include "calls/store/sqlite_store.hpp"

namespace callrelay::calls {
namespace {

constexpr int64_t kNowMs = 1'900'000'000'000;
constexpr const char* kKey = "backend-key-0123456789";
constexpr TimeMs kCreated = 1'764'700'000'000;  // 2025-12-02T18:26:40Z

std::string call_id(int n) {
  std::string id = "c_" + std::string(22, 'A');
  const std::string digits = std::to_string(n);
  id.replace(id.size() - digits.size(), digits.size(), digits);
  return id;
}

CallRecord record(int n, TimeMs created) {
  CallRecord r;
  r.id = call_id(n);
  r.caller = "alice";
  r.callee = n % 2 ? "bob" : "carol";
  r.caller_device = "d_a";
  r.created = created;
  r.ended = created + 1000;
  r.outcome = n % 2 ? Outcome::kCompleted : Outcome::kMissed;
  r.end_reason = "user-hangup";
  return r;
}

/// Records the last query; "bad" cursors throw as a real store does.
class FakeStore : public RecordStore {
 public:
  void put(const CallRecord& r) override { records[r.id] = r; }
  RecordPage query(const RecordQuery& q) override {
    last = q;
    if (q.cursor == "bad") throw std::invalid_argument("malformed cursor");
    if (fail) throw std::runtime_error("disk I/O error");
    RecordPage page;
    for (const auto& [id, r] : records) page.records.push_back(r);
    page.next_cursor = next;
    return page;
  }
  std::optional<CallRecord> get(std::string_view id) override {
    const auto it = records.find(std::string(id));
    if (it == records.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, CallRecord> records;
  std::optional<RecordQuery> last;
  std::string next;
  bool fail = false;
};

http::Request get(std::string path, std::string query = "") {
  http::Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  r.authorization = std::string("Bearer ") + kKey;
  r.client_ip = "192.0.2.1";
  return r;
}

class RecordsApiTest : public ::testing::Test {
 protected:
  http::Response list(std::string query) {
    return api_.handle(get("/api/v1/calls", query), kNowMs);
  }

  FakeStore store_;
  http::ApiKeys keys_{{http::ApiKey{"backend", kKey, 600, {}}}};
  RecordsApi api_{store_, keys_};
};

TEST_F(RecordsApiTest, ListsRecordsInTheirJsonShape) {
  store_.put(record(1, kCreated));
  store_.next = "opaque-cursor";
  const http::Response r = list("");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_EQ(body["calls"].size(), 1u);
  EXPECT_EQ(body["calls"][0], to_json(record(1, kCreated)));
  EXPECT_EQ(body["next_cursor"], "opaque-cursor");
  ASSERT_TRUE(store_.last);
  EXPECT_EQ(store_.last->limit, 100u);
  EXPECT_FALSE(store_.last->user || store_.last->tenant || store_.last->outcome ||
               store_.last->since || store_.last->until);
  store_.next.clear();
  EXPECT_TRUE(nlohmann::json::parse(list("").body)["next_cursor"].is_null());
}

TEST_F(RecordsApiTest, EveryParameterReachesTheQuery) {
  ASSERT_EQ(list("user=bob&tenant=acme&outcome=missed&since=2025-12-02T18:26:40Z"
                 "&until=1764700001234&limit=1000&cursor=abc")
                .status,
            200);
  const RecordQuery& q = *store_.last;
  EXPECT_EQ(q.user, "bob");
  EXPECT_EQ(q.tenant, "acme");
  EXPECT_EQ(q.outcome, Outcome::kMissed);
  EXPECT_EQ(q.since, kCreated);
  EXPECT_EQ(q.until, 1'764'700'001'234);
  EXPECT_EQ(q.limit, 1000u);
  EXPECT_EQ(q.cursor, "abc");
}

TEST_F(RecordsApiTest, TimesInRfc3339OrUnixMilliseconds) {
  EXPECT_EQ(parse_time_param("2025-12-02T18:26:40Z"), kCreated);
  EXPECT_EQ(parse_time_param("2025-12-02T18:26:40.5Z"), kCreated + 500);
  EXPECT_EQ(parse_time_param("2025-12-02T18:26:40.123456Z"), kCreated + 123);
  EXPECT_EQ(parse_time_param("1764700000000"), kCreated);
  for (const char* bad :
       {"", "yesterday", "2025-12-02", "2025-12-02T18:26:40", "2025-12-02T18:26:40+01:00",
        "2025-12-02T18:26:40.Z", "2025-02-30T00:00:00Z", "2025-12-02T18:26:40.1xZ", "-5",
        "99999999999999999999"}) {
    EXPECT_FALSE(parse_time_param(bad)) << bad;
  }
}

TEST_F(RecordsApiTest, BadParametersAre400NamingThem) {
  const struct {
    std::string query;
    std::string name;
  } cases[] = {
      {"user=", "'user'"},
      {"user=a:b", "'user'"},
      {"tenant=a%20b", "'tenant'"},
      {"outcome=hung-up", "'outcome'"},
      {"since=yesterday", "'since'"},
      {"until=2025-12-02", "'until'"},
      {"since=2000&until=1000", "'since' is after 'until'"},
      {"limit=0", "'limit'"},
      {"limit=1001", "'limit'"},
      {"limit=ten", "'limit'"},
      {"cursor=bad", "'cursor'"},
      {"cursor=" + std::string(600, 'c'), "'cursor'"},
      {"colour=red", "unknown parameter 'colour'"},
      {"user=%zz", "malformed query string"},
  };
  for (const auto& c : cases) {
    const http::Response r = list(c.query);
    EXPECT_EQ(r.status, 400) << c.query << " -> " << r.body;
    EXPECT_NE(r.body.find(c.name), std::string::npos) << c.query << " -> " << r.body;
  }
  for (const Outcome o : kAllOutcomes)
    EXPECT_EQ(list(std::string("outcome=") + to_string(o)).status, 200) << to_string(o);
}

TEST_F(RecordsApiTest, OneRecordByIdAndItsErrors) {
  store_.put(record(7, kCreated));
  http::Response r = api_.handle(get("/api/v1/calls/" + call_id(7)), kNowMs);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body), to_json(record(7, kCreated)));
  EXPECT_EQ(api_.handle(get("/api/v1/calls/" + call_id(8)), kNowMs).status, 404);
  for (const std::string& bad :
       std::vector<std::string>{"", "c_short", "x" + call_id(7).substr(1), call_id(7) + "/more"})
    EXPECT_EQ(api_.handle(get("/api/v1/calls/" + bad), kNowMs).status, 400) << bad;
}

TEST_F(RecordsApiTest, KeyMethodsPathsAndStoreFailures) {
  http::Request r = get("/api/v1/calls");
  r.authorization.clear();
  EXPECT_EQ(api_.handle(r, kNowMs).status, 401);
  r = get("/api/v1/calls/" + call_id(1));
  r.authorization = "Bearer wrong-key-0123456789";
  EXPECT_EQ(api_.handle(r, kNowMs).status, 401);
  r = get("/api/v1/calls");
  r.method = "DELETE";
  EXPECT_EQ(api_.handle(r, kNowMs).status, 405);
  EXPECT_EQ(api_.handle(get("/api/v1/callsign"), kNowMs).status, 404);
  store_.fail = true;
  const http::Response failed = list("");
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.body.find("disk"), std::string::npos);  // details stay in the log
}

TEST(RecordsApiOnSqlite, PagesThroughEveryRecordOnce) {
  std::string dir = ::testing::TempDir() + "callrelay-records-api-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  {
    SqliteStore store(dir + "/calls.sqlite3");
    for (int i = 1; i <= 25; ++i) store.put(record(i, kCreated + i * 1000));
    http::ApiKeys keys({http::ApiKey{"backend", kKey, 600, {}}});
    RecordsApi api(store, keys);
    std::vector<std::string> seen;
    std::string cursor;
    do {
      const http::Response r =
          api.handle(get("/api/v1/calls", "outcome=completed&limit=4&cursor=" + cursor), kNowMs);
      ASSERT_EQ(r.status, 200) << r.body;
      const auto body = nlohmann::json::parse(r.body);
      for (const auto& c : body["calls"]) seen.push_back(c["id"]);
      cursor = body["next_cursor"].is_null() ? "" : body["next_cursor"].get<std::string>();
    } while (!cursor.empty());
    ASSERT_EQ(seen.size(), 13u);           // the odd ones completed
    EXPECT_EQ(seen.front(), call_id(25));  // newest first
    EXPECT_EQ(seen.back(), call_id(1));
    EXPECT_EQ(api.handle(get("/api/v1/calls", "cursor=not-a-cursor"), kNowMs).status, 400);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace callrelay::calls
