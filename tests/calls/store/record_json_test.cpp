// The record's JSON shape (GET /api/v1/calls and the webhook body), and its exact inverse.
#include "calls/store/record_json.hpp"

#include <gtest/gtest.h>

#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

constexpr TimeMs kCreated = 1796237106123;  // 2026-12-02T18:45:06.123Z

TEST(RecordJson, EveryFieldHasItsDocumentedShape) {
  CallRecord r = test::make_record(1, kCreated);
  const nlohmann::json j = to_json(r);
  EXPECT_EQ(j["id"], "c_1000001");
  EXPECT_EQ(j["caller"], "alice");
  EXPECT_EQ(j["callee"], "bob");
  EXPECT_EQ(j["tenant"], "acme");
  EXPECT_EQ(j["caller_device"], "d_caller1");
  EXPECT_EQ(j["answered_device"], "d_callee1");
  EXPECT_EQ(j["media"], (nlohmann::json{{"audio", true}, {"video", false}}));
  EXPECT_EQ(j["created"], "2026-12-02T18:45:06.123Z");
  EXPECT_EQ(j["answered"], "2026-12-02T18:45:09.123Z");
  EXPECT_EQ(j["connected"], "2026-12-02T18:45:10.623Z");
  EXPECT_EQ(j["ended"], "2026-12-02T18:46:10.623Z");
  EXPECT_EQ(j["outcome"], "completed");
  EXPECT_EQ(j["end_reason"], "user-hangup");
  EXPECT_EQ(j["ended_by"], "callee");
  EXPECT_EQ(j["setup_ms"], 4500);
  EXPECT_EQ(j["duration_ms"], 60000);
  EXPECT_EQ(j["ice_restarts"], 2);
  EXPECT_EQ(j["reconnects"], 1);
  EXPECT_EQ(j["relay"]["allocations"], 3);
  EXPECT_EQ(j["relay"]["bytes_caller_to_callee"], 123456790u);
  EXPECT_EQ(j["relay"]["bytes_callee_to_caller"], 987654321u);
  EXPECT_EQ(j["relay"]["relayed"], true);
  EXPECT_EQ(j.size(), 19u);  // nothing undocumented
}

TEST(RecordJson, WhatNeverHappenedIsNull) {
  CallRecord r;  // a call that failed before anyone answered
  r.id = "c_x";
  r.created = kCreated;
  r.ended = kCreated + 45000;
  const nlohmann::json j = to_json(r);
  for (const char* key :
       {"tenant", "answered_device", "answered", "connected", "setup_ms", "duration_ms"}) {
    EXPECT_TRUE(j[key].is_null()) << key;
  }
  EXPECT_EQ(j["relay"]["relayed"], false);
  EXPECT_EQ(j["outcome"], "failed");
  EXPECT_EQ(j["ended_by"], "server");
}

TEST(RecordJson, FromJsonInvertsToJson) {
  CallRecord full = test::make_record(2, kCreated);
  full.bytes_caller_to_callee = UINT64_MAX;
  full.outcome = Outcome::kPeerDisconnected;
  CallRecord sparse;
  sparse.id = "c_y";
  sparse.created = kCreated;
  for (const CallRecord& r : {full, sparse}) {
    auto back = from_json(to_json(r));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, r);
  }
}

TEST(RecordJson, FromJsonRefusesWrongShapes) {
  const nlohmann::json good = to_json(test::make_record(3, kCreated));
  ASSERT_TRUE(from_json(good).has_value());
  EXPECT_FALSE(from_json(nlohmann::json::array()).has_value());
  EXPECT_FALSE(from_json(nullptr).has_value());
  const std::pair<const char*, nlohmann::json> bad[] = {{"id", 5},
                                                        {"caller", nullptr},
                                                        {"created", "yesterday"},
                                                        {"outcome", "won"},
                                                        {"ended_by", "nobody"},
                                                        {"ice_restarts", -1},
                                                        {"reconnects", 1.5},
                                                        {"ice_restarts", 1ull << 40},
                                                        {"setup_ms", -7},
                                                        {"media", "audio"},
                                                        {"relay", nlohmann::json::array()}};
  for (const auto& [key, value] : bad) {
    nlohmann::json j = good;
    j[key] = value;
    EXPECT_FALSE(from_json(j).has_value()) << key << " = " << value.dump();
  }
  nlohmann::json missing = good;
  missing.erase("callee");
  EXPECT_FALSE(from_json(missing).has_value());
}

TEST(RecordJson, Iso8601FormatsAndParsesExactly) {
  EXPECT_EQ(format_iso8601_ms(kCreated), "2026-12-02T18:45:06.123Z");
  EXPECT_EQ(format_iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_iso8601_ms(1709164800000), "2024-02-29T00:00:00.000Z");
  EXPECT_EQ(parse_iso8601_ms("2026-12-02T18:45:06.123Z"), kCreated);
  EXPECT_EQ(parse_iso8601_ms("2024-02-29T00:00:00.000Z"), 1709164800000);
  for (const char* bad :
       {"", "2026-12-02T18:45:06Z", "2026-12-02T18:45:06.123", "2026-12-02 18:45:06.123Z",
        "2026-02-30T00:00:00.000Z", "2025-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z",
        "2026-12-02T24:00:00.000Z", "2026-12-02T18:60:06.123Z", "2026-12-02T18:45:06.-23Z",
        "2026-12-02T18:45:06.123Z ", "+026-12-02T18:45:06.123Z"}) {
    EXPECT_FALSE(parse_iso8601_ms(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace callrelay::calls
