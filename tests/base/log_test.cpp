// The structured logger in both formats: text lines as journald wants them, JSON lines that an
// independent parser reads back with every field typed, records merged rather than nested, the
// rate-limited path, and the bounded list of recent warnings the admin status shows.
#include "base/log.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace callrelay::log {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// Sets format and level for one test and puts the defaults back after it.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_level(Level::kInfo);
    set_format(Format::kText);
    clear_recent_lines();
  }
  void TearDown() override {
    set_level(Level::kInfo);
    set_format(Format::kText);
    clear_recent_lines();
  }
  /// What `write` sent to stderr, line by line.
  template <typename F>
  std::vector<std::string> captured(F write) {
    flush();  // earlier lines are not this capture's
    ::testing::internal::CaptureStderr();
    write();
    flush();  // the writer thread has written every line logged above
    return split_lines(::testing::internal::GetCapturedStderr());
  }
};

TEST_F(LogTest, TextLinesAreTheMessageWithTheLevelPrefix) {
  const auto lines = captured([] {
    info("listener.bound", {{"transport", "udp"}, {"address", "127.0.0.1:3478"}},
         "listening udp ", "127.0.0.1:3478");
    warn("drain.signal", {}, "SIGHUP: ignored");
    error("http.thread_stopped", {{"error", "boom"}}, "http: server thread stopped: boom");
    debug("tcp.connected", {}, "not written at info level");
  });
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "listening udp 127.0.0.1:3478");
  EXPECT_EQ(lines[1], "warning: SIGHUP: ignored");
  EXPECT_EQ(lines[2], "error: http: server thread stopped: boom");
  set_level(Level::kDebug);
  EXPECT_EQ(captured([] { debug("tcp.connected", {}, "now ", 1); }),
            std::vector<std::string>{"debug: now 1"});
}

TEST_F(LogTest, JsonLinesCarryTimeLevelEventTypedFieldsAndMessage) {
  set_format(Format::kJson);
  const auto lines = captured([] {
    info("listener.bound",
         {{"transport", "udp"}, {"port", uint16_t{3478}}, {"delta", -3}, {"ratio", 0.25},
          {"tls", false}, {"name", std::string("x\"y")}},
         "listening udp ", 3478);
  });
  ASSERT_EQ(lines.size(), 1u);
  const auto j = nlohmann::ordered_json::parse(lines[0]);
  ASSERT_TRUE(j.is_object());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"time", "level", "event", "transport", "port",
                                            "delta", "ratio", "tls", "name", "message"}));
  EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << j["time"];
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["event"], "listener.bound");
  EXPECT_EQ(j["port"], 3478);
  EXPECT_EQ(j["delta"], -3);
  EXPECT_EQ(j["ratio"], 0.25);
  EXPECT_EQ(j["tls"], false);
  EXPECT_EQ(j["name"], "x\"y");
  EXPECT_EQ(j["message"], "listening udp 3478");
}

TEST_F(LogTest, JsonLevelsAndHostileTextStayOneValidObjectPerLine) {
  set_format(Format::kJson);
  set_level(Level::kDebug);
  const std::string hostile = "bad\nline {\"event\":\"forged\"}\xff\x01";
  const auto lines = captured([&] {
    warn("a.b", {{"user", hostile}}, hostile);
    error("c.d", {}, "e");
    debug("e.f", {}, "g");
  });
  ASSERT_EQ(lines.size(), 3u);
  const auto w = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(w["level"], "warn");
  EXPECT_EQ(w["event"], "a.b");
  EXPECT_EQ(w["message"], "bad\nline {\"event\":\"forged\"}\xef\xbf\xbd\x01");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["level"], "error");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["level"], "debug");
}

TEST_F(LogTest, RecordsAreWrittenAsTheyAreInTextAndMergedInJson) {
  const std::string rec = R"({"event":"allocation_ended","user_id":"alice","bytes":12})";
  EXPECT_EQ(captured([&] { record(Level::kInfo, rec, "allocation ended"); }),
            std::vector<std::string>{rec});
  set_format(Format::kJson);
  const auto lines = captured([&] { record(Level::kInfo, rec, "allocation ended"); });
  ASSERT_EQ(lines.size(), 1u);
  const auto j = nlohmann::ordered_json::parse(lines[0]);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"time", "level", "event", "user_id", "bytes",
                                            "message"}));
  EXPECT_EQ(j["event"], "allocation_ended");
  EXPECT_EQ(j["bytes"], 12);
  EXPECT_EQ(j["message"], "allocation ended");
}

TEST_F(LogTest, ARecordThatIsNotOneObjectIsQuotedNotSpliced) {
  set_format(Format::kJson);
  for (const std::string bad : {R"({"event":"x"},{"event":"y"})", R"({"user":"a"})", "[1]",
                                R"({"event":"x","a":)"}) {
    const auto lines = captured([&] { record(Level::kInfo, bad, "m"); });
    ASSERT_EQ(lines.size(), 1u) << bad;
    const auto j = nlohmann::json::parse(lines[0]);
    EXPECT_EQ(j["event"], "log.bad_record");
    EXPECT_EQ(j["record"], bad);
  }
}

TEST_F(LogTest, LimitedLinesSayHowManyWereLeftOut) {
  set_format(Format::kJson);
  RateLimit limit(1, 1'000'000'000);  // one line, then a window longer than the test
  base::LimitCounters counters;
  const auto first = captured([&] {
    for (int i = 0; i < 4; ++i)
      limited(limit, &counters, Level::kWarn, "tcp.refused", {{"client", "192.0.2.1:1"}}, "no");
  });
  ASSERT_EQ(first.size(), 1u);
  EXPECT_FALSE(nlohmann::json::parse(first[0]).contains("suppressed"));
  EXPECT_EQ(counters.hits(base::Limit::kLogSuppressed), 3u);
  RateLimit next(5, 1000);
  uint64_t ignored = 0;
  ASSERT_TRUE(next.allow(0, &ignored));  // the first window
  for (int i = 0; i < 4; ++i) next.allow(0, &ignored);
  EXPECT_FALSE(next.allow(0, &ignored));  // over budget: one left out
  const auto later = captured([&] {
    limited(next, &counters, Level::kWarn, "tcp.refused", {{"client", "192.0.2.1:1"}}, "no");
  });
  ASSERT_EQ(later.size(), 1u);
  const auto j = nlohmann::json::parse(later[0]);
  EXPECT_EQ(j["suppressed"], 1);
  EXPECT_EQ(j["client"], "192.0.2.1:1");
  EXPECT_EQ(j["message"], "no (1 similar lines left out)");
}

TEST_F(LogTest, RecentLinesKeepTheLastWarningsAndErrorsOnly) {
  captured([] {
    info("a.info", {}, "not kept");
    for (int i = 0; i < 60; ++i) warn("a.warn", {}, "warning ", i);
    error("a.error", {}, "last");
  });
  const auto recent = recent_lines();
  ASSERT_EQ(recent.size(), kRecentLines);
  EXPECT_EQ(recent.front().message, "warning 11");  // 61 kept lines, the oldest 11 gone
  EXPECT_EQ(recent.back().event, "a.error");
  EXPECT_EQ(recent.back().level, Level::kError);
  EXPECT_EQ(recent.back().message, "last");
  EXPECT_GT(recent.back().unix_ms, 1'700'000'000'000);
  // A level that filters warnings out keeps none of them either.
  clear_recent_lines();
  set_level(Level::kError);
  captured([] { warn("a.warn", {}, "filtered"); });
  EXPECT_TRUE(recent_lines().empty());
}

TEST_F(LogTest, RecentLinesAreSafeFromManyThreads) {
  set_level(Level::kError);
  flush();  // earlier lines are not this capture's
  ::testing::internal::CaptureStderr();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        error("thread.error", {{"thread", t}}, "line ", i);
        (void)recent_lines();
      }
    });
  }
  for (auto& th : threads) th.join();
  flush();  // the writer thread has written every line logged above
  const auto lines = split_lines(::testing::internal::GetCapturedStderr());
  EXPECT_EQ(lines.size(), 800u);  // every line whole: none torn or merged
  EXPECT_EQ(recent_lines().size(), kRecentLines);
}

TEST_F(LogTest, ParsesLevelsAndFormats) {
  EXPECT_EQ(parse_format("json"), Format::kJson);
  EXPECT_EQ(parse_format("text"), Format::kText);
  EXPECT_EQ(parse_format("JSON"), std::nullopt);
  EXPECT_EQ(parse_level("warning"), Level::kWarn);
  EXPECT_EQ(level_name(Level::kWarn), "warn");
}

}  // namespace
}  // namespace callrelay::log
