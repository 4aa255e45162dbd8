// telemetry::LogObserver: the JSON line of an ended allocation and the event counts.
#include <gtest/gtest.h>

#include <string>

#include "base/log_json.hpp"
#include "telemetry/log_observer.hpp"

namespace callrelay::telemetry {
namespace {

void fill(core::AllocationInfo& a) {
  a.user_id = "al\"ice\\\n";
  a.realm = "example.org";
  a.client.client = *core::Endpoint::parse("192.0.2.1:5000");
  a.client.server = *core::Endpoint::parse("198.51.100.2:3478");
  a.relayed = *core::Endpoint::parse("[2001:db8::1]:61000");
  a.started = 1'700'000'000'000;
  a.peers_contacted = 2;
  a.traffic.bytes_to_peer.add(1000);
  a.traffic.packets_to_peer.add(10);
  a.traffic.bytes_to_client.add(2000);
  a.traffic.packets_to_client.add(20);
}

TEST(LogObserver, AllocationJsonCarriesEveryField) {
  core::AllocationInfo a;
  fill(a);
  const std::string j = allocation_json(a, core::EndReason::kExpired, 1'700'000'061'500);
  // Escaped as every log line is (RFC 8259 section 7's short forms where there is one).
  EXPECT_NE(j.find(R"("user_id":"al\"ice\\\n")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("realm":"example.org")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("transport":"udp")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("client":"192.0.2.1:5000")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("relayed":"[2001:db8::1]:61000")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("start":"2023-11-14T22:13:20.000Z")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("end":"2023-11-14T22:14:21.500Z")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("duration_ms":61500)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("bytes_to_peer":1000,"packets_to_peer":10)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("bytes_to_client":2000,"packets_to_client":20)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("peers_contacted":2)"), std::string::npos) << j;
  EXPECT_NE(j.find(std::string("\"reason\":\"") + core::to_string(core::EndReason::kExpired) + "\""),
            std::string::npos)
      << j;
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  EXPECT_TRUE(log::is_json_object(j)) << j;
}

TEST(LogObserver, AllocationJsonStaysJsonWhateverTheUsernameHolds) {
  // A username is whatever bytes a client sent: not UTF-8, quotes, control characters.
  core::AllocationInfo a;
  fill(a);
  a.user_id = std::string("\xff\xfe\"}\x01\xc3", 6);
  const std::string j = allocation_json(a, core::EndReason::kExpired, 1'700'000'061'500);
  EXPECT_TRUE(log::is_json_object(j)) << j;
  EXPECT_NE(j.find("\"reason\":\"expired\"}"), std::string::npos) << j;
}

TEST(LogObserver, CountsEvents) {
  LogObserver o;
  core::AllocationInfo a;
  fill(a);
  o.on_allocation_created(a);
  o.on_request(stun::Method::kAllocate, core::Transport::kUdp, 401);
  o.on_request(stun::Method::kAllocate, core::Transport::kUdp, 0);
  o.on_auth_failure(core::AuthFailure::kBadIntegrity);
  o.on_peer_denied(core::PeerDenyReason::kLoopback);
  o.on_drop(core::DropReason::kNoPermission);
  EXPECT_EQ(o.counts().allocations_created.get(), 1u);
  EXPECT_EQ(o.counts().requests.get(), 2u);
  EXPECT_EQ(o.counts().error_responses.get(), 1u);
  EXPECT_EQ(o.counts().auth_failures.get(), 1u);
  EXPECT_EQ(o.counts().peers_denied.get(), 1u);
  EXPECT_EQ(o.counts().drops.get(), 1u);
}

}  // namespace
}  // namespace callrelay::telemetry
