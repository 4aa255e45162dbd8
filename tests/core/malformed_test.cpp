// Malformed input never crashes the server: it is dropped or answered with 400, and the server
// keeps serving afterwards.
#include <random>

#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;

TEST(Malformed, GarbageTruncationsAndHugeDatagramsAreSurvived) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.channel_bind(c, 0x4000, ep("93.184.216.34:1"), kT0).code(), 0);
  const auto valid = c.build(Method::kRefresh, [](stun::MessageBuilder& b) { b.add_u32(at::kLifetime, 600); },
                             true, c.next_tid());
  // Every truncation of a valid request.
  for (size_t n = 0; n < valid.size(); ++n) {
    const std::vector<uint8_t> cut(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(n));
    const Output out = h.server->on_client_packet(c.tuple, cut, kT0);
    if (out.kind == Output::Kind::kToClient) {
      const auto m = stun::MessageView::parse(out.data);
      ASSERT_TRUE(m);
      EXPECT_EQ(m->cls(), stun::Class::kError);
    } else {
      EXPECT_EQ(out.kind, Output::Kind::kNone);
    }
  }
  // Random bytes, random bit flips of valid messages, and 64 KiB datagrams.
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> buf;
    if (i % 3 == 0) {
      buf.resize(rng() % 200);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
    } else if (i % 3 == 1) {
      buf = valid;
      for (int k = 0; k < 3; ++k) buf[rng() % buf.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    } else {
      buf.assign(4 + rng() % 64, 0);
      stun::write_channel_data_header(std::span<uint8_t, 4>(buf.data(), 4), static_cast<uint16_t>(0x4000 + rng() % 3),
                                      static_cast<uint16_t>(rng() % 128));
    }
    (void)h.server->on_client_packet(c.tuple, buf, kT0);
  }
  std::vector<uint8_t> huge(65536, 0x00);
  huge[0] = 0x00;
  huge[1] = 0x01;
  huge[2] = 0xFF;
  huge[3] = 0xFC;
  EXPECT_EQ(h.server->on_client_packet(c.tuple, huge, kT0).kind, Output::Kind::kNone);
  std::vector<uint8_t> huge_cd(65536, 0x41);
  (void)h.server->on_client_packet(c.tuple, huge_cd, kT0);
  // Still serving.
  EXPECT_EQ(h.server->allocation_count(), 1u);
  EXPECT_EQ(h.refresh(c, 600, kT0).code(), 0);
  EXPECT_EQ(h.request(c, Method::kBinding, {}, kT0, false).code(), 0);
}

TEST(Malformed, RequestWithOverrunningAttributeGets400) {
  Harness h;
  Client c = h.rest_client();
  auto req = c.build(Method::kBinding, [](stun::MessageBuilder& b) { b.add_u32(at::kLifetime, 1); }, false,
                     c.next_tid());
  ASSERT_EQ(req.size(), 28u);
  req[22] = 0x00;
  req[23] = 0x40;  // LIFETIME claims 64 bytes
  const auto r = h.send(req, c.tuple, kT0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code(), 400);
  EXPECT_EQ(r->view().transaction_id(), stun::MessageView::parse(r->bytes)->transaction_id());
  EXPECT_EQ(h.observer.drops, std::vector<DropReason>{DropReason::kMalformed});
}

TEST(Malformed, BadFingerprintAndStrayResponsesAreDropped) {
  Harness h;
  Client c = h.rest_client();
  c.fingerprint = true;
  auto req = c.build(Method::kBinding, {}, false, c.next_tid());
  req.back() ^= 1;
  EXPECT_FALSE(h.send(req, c.tuple, kT0));
  const auto response = c.build(Method::kBinding, {}, false, c.next_tid(), stun::Class::kSuccess);
  EXPECT_FALSE(h.send(response, c.tuple, kT0));
  EXPECT_EQ(h.observer.drops.size(), 2u);
  // A Binding indication (keepalive) is silently accepted.
  const auto keepalive = c.build(Method::kBinding, {}, false, c.next_tid(), stun::Class::kIndication);
  EXPECT_FALSE(h.send(keepalive, c.tuple, kT0));
  EXPECT_EQ(h.observer.drops.size(), 2u);
}

TEST(Malformed, PeerBuffersTooSmallAreDropped) {
  Harness h;
  Client c = h.rest_client();
  h.allocate(c, kT0);
  ASSERT_EQ(h.create_permission(c, ep("93.184.216.34:1"), kT0).code(), 0);
  std::vector<uint8_t> small(kPeerHeadroom + 10);
  EXPECT_EQ(h.server->on_peer_packet(0, ep("93.184.216.34:1"), small, 10, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.observer.drops.back(), DropReason::kMalformed);
  EXPECT_EQ(h.server->on_peer_packet(0, ep("93.184.216.34:1"), small, 1000, kT0).kind, Output::Kind::kNone);
  // The largest payload that fits a Data indication still works; one that cannot is dropped.
  std::vector<uint8_t> big(kPeerHeadroom + 65535 + kPeerTailroom);
  EXPECT_EQ(h.server->on_peer_packet(0, ep("93.184.216.34:1"), big, 65535, kT0).kind, Output::Kind::kNone);
  EXPECT_EQ(h.server->on_peer_packet(0, ep("93.184.216.34:1"), big, 65000, kT0).kind, Output::Kind::kToClient);
}

}  // namespace
}  // namespace callrelay::core::testing
