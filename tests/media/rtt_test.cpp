// MediaMonitor's round trips from STUN Binding transactions crossing the relay (RFC 8489
// section 5; ICE checks and consent, RFC 8445 section 7.2, RFC 7675).
#include <gtest/gtest.h>

#include "media_test_support.hpp"

namespace callrelay::media::testing {
namespace {

TEST(MediaRtt, BothLegsWithInterleavedTransactions) {
  Meter m;
  m.client(stun(kBindingRequest, tid(1)));  // client -> peer
  m.now_us += 1'000;
  m.peer(stun(kBindingRequest, tid(2)));  // peer -> client
  m.now_us += 4'000;
  m.peer(stun(kBindingSuccess, tid(1)));  // the peer answers after 5 ms: relay-peer-relay
  EXPECT_EQ(m.out.rtt_peer_us.get(), 5'000u);
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 1u);
  EXPECT_EQ(m.out.rtt_client_samples.get(), 0u);
  m.now_us += 3'000;
  m.client(stun(kBindingSuccess, tid(2)));  // the client answers after 7 ms
  EXPECT_EQ(m.out.rtt_client_us.get(), 7'000u);
  EXPECT_EQ(m.out.rtt_client_samples.get(), 1u);

  // An error response is an answer too (e.g. 487 Role Conflict): the trip took as long.
  m.client(stun(kBindingRequest, tid(3)));
  m.now_us += 2'500;
  m.peer(stun(kBindingError, tid(3)));
  EXPECT_EQ(m.out.rtt_peer_us.get(), 2'500u);
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 2u);
  // Three Bindings came from the client: non-media. What the peer sends is not counted.
  EXPECT_EQ(m.out.non_media_packets.get(), 3u);
}

TEST(MediaRtt, UnmatchedAnswersAreIgnored) {
  Meter m;
  m.client(stun(kBindingRequest, tid(1)));
  m.now_us += 1'000;
  m.peer(stun(kBindingSuccess, tid(9)));    // unknown transaction
  m.client(stun(kBindingSuccess, tid(1)));  // the asker answering itself
  m.peer(stun(kBindingRequest, tid(1)));    // a request is not an answer
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 0u);
  EXPECT_EQ(m.out.rtt_client_samples.get(), 0u);
  m.peer(stun(kBindingSuccess, tid(1)));
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 1u);
  m.peer(stun(kBindingSuccess, tid(1)));  // answered once only
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 1u);

  Bytes other = stun(0x0003, tid(4));  // an Allocate, not a Binding
  m.client(other);
  m.peer(stun(0x0103, tid(4)));
  Bytes short_length = stun(kBindingRequest, tid(5), 8);
  short_length.resize(24);  // the length field says 8 attribute bytes, 4 are there
  m.client(short_length);
  m.peer(stun(kBindingSuccess, tid(5)));
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 1u);
}

TEST(MediaRtt, RetransmittedRequestsGiveNoSample) {
  Meter m;
  m.client(stun(kBindingRequest, tid(1)));
  m.now_us += 100'000;
  m.client(stun(kBindingRequest, tid(1)));  // which one the answer is for is unknown
  m.now_us += 1'000;
  m.peer(stun(kBindingSuccess, tid(1)));
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 0u);
}

TEST(MediaRtt, StaleRequestsAreForgotten) {
  Meter m;
  m.client(stun(kBindingRequest, tid(1)));
  m.now_us += 4'000'000;
  m.client(stun(kBindingRequest, tid(2)));
  m.now_us += 1'500'000;  // tid(1) is 5.5 s old, tid(2) 1.5 s
  m.peer(stun(kBindingSuccess, tid(1)));
  m.peer(stun(kBindingSuccess, tid(2)));
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 1u);
  EXPECT_EQ(m.out.rtt_peer_us.get(), 1'500'000u);

  // After a long quiet spell (longer than the 32-bit microsecond clock wraps), nothing old
  // comes back to life.
  m.client(stun(kBindingRequest, tid(3)));
  m.now_us += (int64_t{1} << 32) + 1'000;
  m.peer(stun(kBindingSuccess, tid(3)));
  EXPECT_EQ(m.out.rtt_peer_samples.get(), 1u);
}

TEST(MediaRtt, WhenFullTheOldestPendingRequestGoes) {
  Meter m;
  for (uint8_t i = 0; i < MediaMonitor::kMaxPendingChecks; ++i) {
    m.peer(stun(kBindingRequest, tid(i)));
    m.now_us += 1'000;
  }
  m.client(stun(kBindingSuccess, tid(0)));  // frees the first entry ...
  m.peer(stun(kBindingRequest, tid(10)));   // ... which the newest takes
  m.now_us += 1'000;
  m.peer(stun(kBindingRequest, tid(11)));  // full: replaces tid(1), now the oldest
  m.now_us += 1'000;
  EXPECT_EQ(m.out.rtt_client_samples.get(), 1u);
  m.client(stun(kBindingSuccess, tid(1)));
  EXPECT_EQ(m.out.rtt_client_samples.get(), 1u);
  for (const int i : {2, 3, 10, 11}) m.client(stun(kBindingSuccess, tid(static_cast<uint8_t>(i))));
  EXPECT_EQ(m.out.rtt_client_samples.get(), 5u);
  EXPECT_EQ(m.out.rtt_client_us.get(), 1'000u);  // tid(11), asked 1 ms before
}

TEST(MediaRtt, PendingChecksAlone) {
  PendingChecks<2> checks;
  checks.add(tid(1), 0xffff'ff00u);  // just before the 32-bit wrap
  EXPECT_EQ(checks.answer(tid(1), 0x0000'0100u), 0x200u);
  EXPECT_EQ(checks.size(), 0u);
  checks.add(tid(2), 10);
  checks.expire(10 + PendingChecks<2>::kMaxAgeUs);
  EXPECT_EQ(checks.size(), 1u);
  checks.expire(11 + PendingChecks<2>::kMaxAgeUs);
  EXPECT_EQ(checks.size(), 0u);
}

}  // namespace
}  // namespace callrelay::media::testing
