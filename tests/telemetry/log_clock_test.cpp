// The allocation_ended line with two clocks: the core's monotonic times give the duration, the
// wall clock at the end stamps `end`, and `start` is `end - duration`, whatever the wall clock
// did while the allocation lived.
#include <gtest/gtest.h>

#include <string>

#include "base/log.hpp"
#include "telemetry/log_observer.hpp"

namespace callrelay::telemetry {
namespace {

constexpr core::TimeMs kBoot = 42'000;                  // monotonic: counts from the boot
constexpr core::TimeMs kWallEnd = 1'700'000'061'500;  // 2023-11-14T22:14:21.500Z

TEST(LogClock, StartIsTheWallEndMinusTheMonotonicDuration) {
  core::AllocationInfo a;
  a.started = kBoot;
  const std::string j = allocation_json(a, core::EndReason::kExpired, kBoot + 61'500, kWallEnd);
  EXPECT_NE(j.find(R"("start":"2023-11-14T22:13:20.000Z")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("end":"2023-11-14T22:14:21.500Z")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("duration_ms":61500)"), std::string::npos) << j;
}

TEST(LogClock, TimesBeforeTheEpochAreFloored) {
  // A wall clock set far back (or a start computed before 1970) prints a valid time.
  core::AllocationInfo a;
  a.started = kBoot;
  const std::string j = allocation_json(a, core::EndReason::kExpired, kBoot + 1'500, 1'000);
  EXPECT_NE(j.find(R"("start":"1969-12-31T23:59:59.500Z")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("end":"1970-01-01T00:00:01.000Z")"), std::string::npos) << j;
}

/// A wall clock stepped by the test.
class FixedWall final : public core::WallClock {
 public:
  core::TimeMs unix_ms() const override { return now; }
  core::TimeMs now = kWallEnd;
};

TEST(LogClock, ObserverStampsWithItsWallClock) {
  FixedWall wall;
  LogObserver o(&wall);
  core::AllocationInfo a;
  a.started = kBoot;
  log::set_level(log::Level::kInfo);
  log::flush();  // earlier lines are not this capture's
  ::testing::internal::CaptureStderr();  // log lines go to stderr
  o.on_allocation_ended(a, core::EndReason::kExpired, kBoot + 61'500);
  wall.now += 3'600'000;  // a step after the end changes nothing already written
  log::flush();  // the writer thread has written every line logged above
  const std::string line = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(line.find(R"("start":"2023-11-14T22:13:20.000Z")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("end":"2023-11-14T22:14:21.500Z")"), std::string::npos) << line;
  EXPECT_EQ(o.counts().allocations_ended.get(), 1u);
}

}  // namespace
}  // namespace callrelay::telemetry
