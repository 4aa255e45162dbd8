// The structured allocation-end record: the Telemetry observer forwards to the LogObserver,
// which writes one JSON line with every field the issue asks for.
#include <gtest/gtest.h>

#include "base/log.hpp"
#include "telemetry/log_observer.hpp"
#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

constexpr core::TimeMs kT0 = 1'700'000'000'000;

TEST(LogRecord, OneJsonLinePerEndedAllocationThroughTheChain) {
  Telemetry t({}, 1, ProcessProbes{});
  LogObserver log_observer;
  core::Observer* o = t.observer_for_worker(0, &log_observer);
  auto a = testing::fake_allocation(3, "alice", kT0);
  a->peers_contacted = 2;
  o->on_allocation_created(*a);
  testing::relay(*a, 1000, 2000, 10);
  const log::Level saved = log::level();
  log::set_level(log::Level::kInfo);
  log::flush();  // earlier lines are not this capture's
  ::testing::internal::CaptureStderr();
  o->on_allocation_ended(*a, core::EndReason::kRefreshZero, kT0 + 61'500);
  log::flush();  // the writer thread has written every line logged above
  const std::string err = ::testing::internal::GetCapturedStderr();
  log::set_level(saved);
  const auto lines = testing::lines(err);
  ASSERT_EQ(lines.size(), 1u) << err;
  const std::string& j = lines[0];
  for (const char* field : {
           R"("event":"allocation_ended")",
           R"("user_id":"alice")",
           R"("realm":"example.org")",
           R"("transport":"udp")",
           R"("client":"192.0.2.1:40003")",
           R"("server":"198.51.100.2:3478")",
           R"("relayed":"203.0.113.5:50000")",
           R"("start":"2023-11-14T22:13:20.000Z")",
           R"("end":"2023-11-14T22:14:21.500Z")",
           R"("bytes_to_peer":1000,"packets_to_peer":10)",
           R"("bytes_to_client":2000,"packets_to_client":10)",
           R"("peers_contacted":2)",
           R"("reason":"refresh_zero")",
       }) {
    EXPECT_NE(j.find(field), std::string::npos) << field << " in " << j;
  }
  EXPECT_EQ(j.find("relayed_additional"), std::string::npos) << j;  // not a dual allocation
  // Never the whole REST username (it is a credential's public half, and carries the expiry).
  EXPECT_EQ(j.find("1700000000:alice"), std::string::npos) << j;
}

TEST(LogRecord, DualAllocationNamesBothRelayedAddresses) {
  auto a = testing::fake_allocation(4, "bob", kT0);
  a->relayed_additional = *core::Endpoint::parse("[2001:db8::7]:50002");
  const std::string j = allocation_json(*a, core::EndReason::kExpired, kT0 + 1000);
  EXPECT_NE(j.find(R"("relayed":"203.0.113.5:50000","relayed_additional":"[2001:db8::7]:50002")"),
            std::string::npos)
      << j;
}

}  // namespace
}  // namespace callrelay::telemetry
