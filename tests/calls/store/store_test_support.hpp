// Fixtures shared by the record storage tests: records with every field set, and a scratch
// directory removed after each test.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "calls/core/record.hpp"

namespace callrelay::calls::test {

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

}  // namespace callrelay::calls::test
