// The failed-attempt limiter: burst, refill, per-IP isolation and the bounded table.
#include <gtest/gtest.h>

#include "http/rate_limiter.hpp"

namespace callrelay::http {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

TEST(FailureLimiter, BurstThenRefill) {
  FailureLimiter lim(FailureLimiter::Options{3, 0.5, 100});
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(lim.allowed("10.0.0.1", kT0));
    lim.record_failure("10.0.0.1", kT0);
  }
  EXPECT_FALSE(lim.allowed("10.0.0.1", kT0));
  EXPECT_EQ(lim.retry_after_s("10.0.0.1", kT0), 2u);
  EXPECT_TRUE(lim.allowed("10.0.0.2", kT0));  // other addresses are unaffected
  EXPECT_FALSE(lim.allowed("10.0.0.1", kT0 + 1999));
  EXPECT_TRUE(lim.allowed("10.0.0.1", kT0 + 2000));
  lim.record_failure("10.0.0.1", kT0 + 2000);
  EXPECT_FALSE(lim.allowed("10.0.0.1", kT0 + 2000));
}

TEST(FailureLimiter, TableStaysBounded) {
  FailureLimiter lim(FailureLimiter::Options{2, 0.5, 8});
  for (int i = 0; i < 100; ++i) lim.record_failure("10.0.1." + std::to_string(i), kT0);
  EXPECT_LE(lim.tracked(), 8u);
  // The most recent attacker is still limited after its second failure.
  lim.record_failure("10.0.1.99", kT0);
  EXPECT_FALSE(lim.allowed("10.0.1.99", kT0));
}

TEST(FailureLimiter, FullBucketsAreForgottenFirst) {
  FailureLimiter lim(FailureLimiter::Options{2, 1.0, 2});
  lim.record_failure("a", kT0);
  lim.record_failure("b", kT0 + 10'000);
  lim.record_failure("b", kT0 + 10'000);  // b is limited, a has refilled
  lim.record_failure("c", kT0 + 10'000);  // evicts a, not b
  EXPECT_FALSE(lim.allowed("b", kT0 + 10'000));
  EXPECT_EQ(lim.tracked(), 2u);
}

}  // namespace
}  // namespace callrelay::http
