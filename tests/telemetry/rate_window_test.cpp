// RateWindow: throughput from cumulative byte samples over a sliding window.
#include <gtest/gtest.h>

#include "telemetry/rate_window.hpp"

namespace callrelay::telemetry {
namespace {

TEST(RateWindow, ZeroUntilTwoSamples) {
  RateWindow w(5);
  EXPECT_EQ(w.bytes_per_second(), (std::array<double, 2>{0, 0}));
  w.add(1000, 500, 700);
  EXPECT_EQ(w.bytes_per_second(), (std::array<double, 2>{0, 0}));
  w.add(3000, 2500, 700);
  EXPECT_EQ(w.bytes_per_second(), (std::array<double, 2>{1000, 0}));
}

TEST(RateWindow, ForgetsSamplesOlderThanTheWindow) {
  RateWindow w(3);
  // 1000 B/s for 10 s, then nothing more.
  for (int s = 0; s <= 10; ++s) w.add(s * 1000, static_cast<uint64_t>(s) * 1000, 0);
  EXPECT_DOUBLE_EQ(w.bytes_per_second()[0], 1000);
  w.add(11'000, 10'000, 0);
  w.add(12'000, 10'000, 0);
  // Over the last 3 s (9 s..12 s): 1000 bytes.
  EXPECT_DOUBLE_EQ(w.bytes_per_second()[0], 1000.0 / 3);
  w.add(13'000, 10'000, 0);
  EXPECT_DOUBLE_EQ(w.bytes_per_second()[0], 0);
}

TEST(RateWindow, SameTimeReplacesOlderIsIgnored) {
  RateWindow w(5);
  w.add(0, 0, 0);
  w.add(1000, 100, 100);
  w.add(1000, 300, 100);     // replaces
  w.add(500, 99999, 99999);  // older: ignored
  EXPECT_EQ(w.bytes_per_second(), (std::array<double, 2>{300, 100}));
}

TEST(RateWindow, FastTicksShortenTheSpanButStayCorrect) {
  RateWindow w(2);  // ring of 4 samples
  for (int i = 0; i <= 20; ++i) w.add(i * 100, static_cast<uint64_t>(i) * 100, 0);
  EXPECT_DOUBLE_EQ(w.bytes_per_second()[0], 1000);
}

}  // namespace
}  // namespace callrelay::telemetry
