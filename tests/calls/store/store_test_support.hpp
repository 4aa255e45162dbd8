// Fixtures shared by the record storage tests: records with every field set, a scratch
// directory removed after each test, and a raw SQLite handle.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "calls/core/record.hpp"

namespace callrelay::calls::test {

/// A summary with figures that need every bit of a double to come back equal.
inline QualitySummary make_summary(int n, bool rtt_known) {
  QualitySummary s;
  s.intervals = 12 + static_cast<uint32_t>(n);
  s.mean_mos = 4.3123456789012345 - n * 0.01;
  s.worst_mos = 3.9000000000000004;
  s.expected = 6000 + static_cast<uint64_t>(n);
  s.lost = 24;
  s.worst_loss_ratio = 0.02;
  s.mean_jitter_ms = 3.2;
  s.worst_jitter_ms = 9.1;
  s.mean_rtt_ms = rtt_known ? 21 + 1.0 / 3 : -1;
  s.worst_rtt_ms = rtt_known ? 40 : -1;
  s.ms_in_class = {50000, 10000, 0, 5000 + n};
  return s;
}

/// Quality with relay and client figures, summaries of 0 intervals (written as null), both
/// disagreement counts and a restored and an open video fallback.
inline CallQuality make_quality(int n, TimeMs created) {
  CallQuality q;
  auto& forward = q.streams[static_cast<size_t>(Direction::kCallerToCallee)];
  auto& back = q.streams[static_cast<size_t>(Direction::kCalleeToCaller)];
  forward[static_cast<size_t>(MediaKind::kAudio)] = {make_summary(n, true), make_summary(n, true)};
  forward[static_cast<size_t>(MediaKind::kVideo)].relay = make_summary(n + 1, false);
  back[static_cast<size_t>(MediaKind::kAudio)].client = make_summary(n + 2, true);
  q.client_underreports = 1;
  q.loss_after_relay = 2 + static_cast<uint32_t>(n);
  q.video_fallbacks = {{Party::kCaller, created + 20000, created + 50000},
                       {Party::kCallee, created + 30000, 0}};
  return q;
}

/// A record whose every field differs from its default and from record `n + 1`'s.
inline CallRecord make_record(int n, TimeMs created) {
  CallRecord r;
  r.id = "c_" + std::to_string(1000000 + n);
  r.caller = "alice";
  r.callee = "bob";
  r.tenant = "acme";
  r.caller_device = "d_caller" + std::to_string(n);
  r.answered_device = "d_callee" + std::to_string(n);
  r.media = {true, n % 2 == 0};
  r.created = created;
  r.answered = created + 3000;
  r.connected = created + 4500;
  r.ended = created + 64500;
  r.outcome = Outcome::kCompleted;
  r.end_reason = "user-hangup";
  r.ended_by = Party::kCallee;
  r.setup_ms = 4500;
  r.ice_restarts = 2;
  r.reconnects = 1;
  r.bytes_caller_to_callee = 123456789 + static_cast<uint64_t>(n);
  r.bytes_callee_to_caller = 987654321;
  r.relay_allocations = 3;
  r.quality = make_quality(n, created);
  return r;
}

/// A fresh directory under the test temp dir, removed with everything in it at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "callrelay-store-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// A second, raw handle on the file, as an operator's sqlite3 shell would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open");
  }
  ~RawDb() { sqlite3_close(db_); }
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sqlite3_errmsg(db_));
    }
  }
  std::string text(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out = "<error>";
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace callrelay::calls::test
