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
  EXPECT_TRUE(j["quality"].is_object());
  EXPECT_EQ(j.size(), 20u);  // nothing undocumented
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

TEST(RecordJson, QualityHasItsDocumentedShape) {
  const CallRecord r = test::make_record(0, kCreated);
  const nlohmann::json q = to_json(r)["quality"];
  const nlohmann::json audio = q["caller_to_callee"]["audio"];
  const nlohmann::json s = audio["relay"];
  EXPECT_EQ(s["intervals"], 12);
  EXPECT_EQ(s["mean_mos"], 4.3123456789012345);
  EXPECT_EQ(s["worst_mos"], 3.9000000000000004);
  EXPECT_EQ(s["loss_ratio"], 0.004);  // 24 / 6000
  EXPECT_EQ(s["worst_loss_ratio"], 0.02);
  EXPECT_EQ(s["packets_expected"], 6000);
  EXPECT_EQ(s["packets_lost"], 24);
  EXPECT_EQ(s["mean_jitter_ms"], 3.2);
  EXPECT_EQ(s["worst_jitter_ms"], 9.1);
  EXPECT_EQ(s["mean_rtt_ms"], 21 + 1.0 / 3);
  EXPECT_EQ(s["worst_rtt_ms"], 40);
  EXPECT_EQ(s["ms_in_class"],
            (nlohmann::json{{"excellent", 50000}, {"good", 10000}, {"fair", 0}, {"poor", 5000}}));
  EXPECT_EQ(s.size(), 12u);
  EXPECT_EQ(audio["client"], s);
  // Unknown RTTs and summaries of 0 intervals are null.
  EXPECT_TRUE(q["caller_to_callee"]["video"]["relay"]["mean_rtt_ms"].is_null());
  EXPECT_TRUE(q["caller_to_callee"]["video"]["relay"]["worst_rtt_ms"].is_null());
  EXPECT_TRUE(q["caller_to_callee"]["video"]["client"].is_null());
  EXPECT_TRUE(q["callee_to_caller"]["audio"]["relay"].is_null());
  EXPECT_EQ(q["callee_to_caller"]["audio"]["client"]["intervals"], 14);
  EXPECT_TRUE(q["callee_to_caller"]["video"]["relay"].is_null());
  EXPECT_TRUE(q["callee_to_caller"]["video"]["client"].is_null());
  EXPECT_EQ(q["client_underreports"], 1);
  EXPECT_EQ(q["loss_after_relay"], 2);
  EXPECT_EQ(q["video_fallbacks"], nlohmann::json::parse(R"([
      {"party": "caller", "at": 1796237126123, "restored": 1796237156123},
      {"party": "callee", "at": 1796237136123, "restored": 0}])"));
  EXPECT_EQ(q.size(), 5u);
}

TEST(RecordJson, EmptyQualityIsAllNulls) {
  const nlohmann::json q = quality_to_json(CallQuality{});
  for (const char* d : {"caller_to_callee", "callee_to_caller"}) {
    for (const char* k : {"audio", "video"}) {
      EXPECT_EQ(q[d][k], (nlohmann::json{{"relay", nullptr}, {"client", nullptr}})) << d << k;
    }
  }
  EXPECT_EQ(q["video_fallbacks"], nlohmann::json::array());
  EXPECT_EQ(quality_from_json(q), CallQuality{});
}

TEST(RecordJson, QualityRoundTripsExactly) {
  for (int n : {0, 1, 7}) {
    const CallQuality q = test::make_quality(n, kCreated);
    EXPECT_EQ(quality_from_json(quality_to_json(q)), q) << n;
    EXPECT_EQ(quality_from_json(nlohmann::json::parse(quality_to_json(q).dump())), q) << n;
  }
  // From the tracker, as the engine fills it.
  QualityTracker t;
  t.add(score_interval(QualitySource::kRelay, Direction::kCalleeToCaller, MediaKind::kVideo, 0,
                       5000, {917, 13, 7.77, 33.3}));
  t.add(score_interval(QualitySource::kClient, Direction::kCalleeToCaller, MediaKind::kVideo, 0,
                       5000, {911, 29, 8.1, -1}));
  t.compare(Direction::kCalleeToCaller, MediaKind::kVideo, {917, 13, 0, 0}, {911, 60, 0, 0});
  t.video_fallback(Party::kCallee, kCreated);
  t.video_restored(Party::kCallee, kCreated + 31000);
  const auto back = quality_from_json(nlohmann::json::parse(quality_to_json(t.result()).dump()));
  EXPECT_EQ(back, t.result());
}

TEST(RecordJson, RecordsWithoutQualityReadAsEmpty) {
  nlohmann::json j = to_json(test::make_record(4, kCreated));
  j.erase("quality");
  auto r = from_json(j);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->quality.empty());
  j["quality"] = nullptr;
  r = from_json(j);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->quality.empty());
}

TEST(RecordJson, QualityRefusesWrongShapes) {
  const nlohmann::json good = quality_to_json(test::make_quality(0, kCreated));
  ASSERT_TRUE(quality_from_json(good).has_value());
  const std::pair<const char*, nlohmann::json> bad[] = {
      {"", nlohmann::json::array()},
      {"/caller_to_callee", nullptr},
      {"/callee_to_caller/video", "none"},
      {"/caller_to_callee/audio/relay", "S"},
      {"/caller_to_callee/audio/relay/intervals", 0},
      {"/caller_to_callee/audio/relay/intervals", -1},
      {"/caller_to_callee/audio/relay/intervals", 1ull << 33},
      {"/caller_to_callee/audio/relay/mean_mos", "4.3"},
      {"/caller_to_callee/audio/relay/worst_mos", -1},
      {"/caller_to_callee/audio/relay/mean_jitter_ms", nullptr},
      {"/caller_to_callee/audio/relay/packets_lost", 2.5},
      {"/caller_to_callee/audio/relay/worst_rtt_ms", -3},
      {"/caller_to_callee/audio/relay/ms_in_class", nullptr},
      {"/caller_to_callee/audio/relay/ms_in_class/poor", -5},
      {"/client_underreports", -1},
      {"/loss_after_relay", "2"},
      {"/video_fallbacks", nullptr},
      {"/video_fallbacks/0", "caller"},
      {"/video_fallbacks/0/party", "server"},
      {"/video_fallbacks/0/at", "2026-12-02T18:45:06.123Z"},
      {"/video_fallbacks/1/restored", -1},
  };
  for (const auto& [pointer, value] : bad) {
    nlohmann::json j = good;
    j[nlohmann::json::json_pointer(pointer)] = value;
    EXPECT_FALSE(quality_from_json(j).has_value()) << pointer << " = " << value.dump();
  }
  nlohmann::json missing = good;
  missing["caller_to_callee"]["audio"].erase("client");
  EXPECT_FALSE(quality_from_json(missing).has_value());
  nlohmann::json many = good;
  for (size_t i = 0; i < kMaxVideoFallbacks; ++i) {
    many["video_fallbacks"].push_back(good["video_fallbacks"][1]);
  }
  EXPECT_FALSE(quality_from_json(many).has_value());
  // A record whose quality is broken is refused as a whole.
  nlohmann::json record = to_json(test::make_record(0, kCreated));
  record["quality"] = "good";
  EXPECT_FALSE(from_json(record).has_value());
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
