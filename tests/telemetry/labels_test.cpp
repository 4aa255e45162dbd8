// Bounded label sets and label sanitizing.
#include <gtest/gtest.h>

#include <set>

#include "telemetry/metric_labels.hpp"

namespace callrelay::telemetry {
namespace {

TEST(Labels, UnknownCodesAndMethodsShareOneSlot) {
  EXPECT_EQ(code_label(code_index(0)), "success");
  EXPECT_EQ(code_label(code_index(401)), "401");
  EXPECT_EQ(code_label(code_index(508)), "508");
  EXPECT_EQ(code_label(code_index(499)), "other");
  EXPECT_EQ(code_label(code_index(65535)), "other");
  EXPECT_EQ(method_label(method_index(stun::Method::kChannelBind)), "channel_bind");
  EXPECT_EQ(method_label(method_index(static_cast<stun::Method>(0x0FFF))), "other");
}

TEST(Labels, EveryCodeMapsIntoTheFixedSet) {
  std::set<std::string_view> seen;
  for (uint32_t c = 0; c <= 0xFFFF; ++c) {
    const size_t i = code_index(static_cast<uint16_t>(c));
    ASSERT_LT(i, kCodes);
    seen.insert(code_label(i));
  }
  EXPECT_EQ(seen.size(), kCodes);
}

TEST(Labels, SecretIndexSlots) {
  EXPECT_EQ(secret_label(secret_index(-1)), "static");
  EXPECT_EQ(secret_label(secret_index(0)), "0");
  EXPECT_EQ(secret_label(secret_index(7)), "7");
  EXPECT_EQ(secret_label(secret_index(8)), "other");
  EXPECT_EQ(secret_label(secret_index(1000)), "other");
}

TEST(Labels, EnumLabelsAreTheCoreNames) {
  EXPECT_EQ(end_reason_label(0), "refresh_zero");
  EXPECT_EQ(end_reason_label(static_cast<size_t>(core::EndReason::kCallEnded)), "call_ended");
  EXPECT_EQ(kEndReasons, static_cast<size_t>(core::EndReason::kDrained) + 1);
  EXPECT_EQ(auth_failure_label(static_cast<size_t>(core::AuthFailure::kRevoked)), "revoked");
  EXPECT_EQ(deny_reason_label(static_cast<size_t>(core::PeerDenyReason::kPrivate)), "private");
  EXPECT_EQ(drop_reason_label(static_cast<size_t>(core::DropReason::kNoChannel)), "no_channel");
  EXPECT_EQ(transport_label(transport_index(core::Transport::kTls)), "tls");
  EXPECT_EQ(family_label(family_index(stun::Family::kIPv6)), "ipv6");
  core::AllocationInfo dual;
  dual.relayed_additional = *core::Endpoint::parse("[2001:db8::1]:1");
  EXPECT_EQ(family_label(family_index(dual)), "dual");
}

TEST(Labels, SanitizeKeepsUtf8AndReplacesTheRest) {
  EXPECT_EQ(sanitize_label("alice"), "alice");
  EXPECT_EQ(sanitize_label("j\xC3\xBCrgen"), "j\xC3\xBCrgen");  // ü
  EXPECT_EQ(sanitize_label("a\xFF"
                           "b"),
            "a\xEF\xBF\xBD"
            "b");                                       // invalid byte
  EXPECT_EQ(sanitize_label("a\xC3"), "a\xEF\xBF\xBD");  // truncated sequence
  EXPECT_EQ(sanitize_label("a\xED\xA0\x80"), "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_label("a\nb\x7f"), "a?b?");
  EXPECT_EQ(sanitize_label(std::string(300, 'x')).size(), 128u);
  // Cut on a character boundary: 127 ASCII bytes leave no room for a 2-byte character.
  EXPECT_EQ(sanitize_label(std::string(127, 'x') + "\xC3\xBC"), std::string(127, 'x'));
}

}  // namespace
}  // namespace callrelay::telemetry
