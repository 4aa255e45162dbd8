// TURN over TCP against a real server on 127.0.0.1:0: Allocate, relaying to a UDP peer with
// ChannelData and Send indications, coalesced and split writes, the allocation ending with its
// connection, garbage, oversized frames, slow-loris and idle connections.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "relay/stun/channel_data.hpp"
#include "tests/streams/stream_fixture.hpp"

namespace callrelay::net {
namespace {

using testing::Bytes;
using testing::StreamClient;
using testing::StreamServerFixture;
using testing::UdpSocket;

Bytes binding_request(StreamClient& c, uint16_t padding = 0) {
  return c.build(
      stun::Method::kBinding, stun::Class::kRequest,
      [padding](stun::MessageBuilder& b) {
        if (padding) b.add_bytes(0x8026, Bytes(padding, 0x55));
      },
      /*sign=*/false);
}

Bytes channel_data(uint16_t channel, const Bytes& payload) {
  Bytes out(4);
  stun::write_channel_data_header(std::span<uint8_t, 4>(out.data(), 4), channel,
                                  static_cast<uint16_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize((out.size() + 3) & ~size_t{3}, 0);  // streams pad ChannelData
  return out;
}

bool is_success(const std::optional<testing::Response>& r) {
  return r && r->msg && r->error_code() == 0;
}

TEST(StreamServer, AllocatesOverTcpAndRelaysToAUdpPeer) {
  StreamServerFixture f(2);
  StreamClient c(f.tcp());
  ASSERT_TRUE(c.ok()) << c.error();
  f.login(c);

  // Binding answers with the client's TCP address.
  const auto b = c.request(stun::Method::kBinding, {}, /*sign=*/false);
  ASSERT_TRUE(is_success(b));
  EXPECT_EQ(b->msg->xor_address(stun::attr::kXorMappedAddress),
            std::optional<stun::Endpoint>(c.local()));

  const auto relayed = c.allocate();
  ASSERT_TRUE(relayed.has_value());
  UdpSocket peer;
  ASSERT_TRUE(is_success(c.request(stun::Method::kChannelBind, [&](stun::MessageBuilder& m) {
    m.add_channel_number(0x4001);
    m.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  })));

  // A ChannelData frame of 5 bytes (3 padding) and a Send indication in one write.
  Bytes both = channel_data(0x4001, {1, 2, 3, 4, 5});
  const Bytes send = c.build(
      stun::Method::kSend, stun::Class::kIndication,
      [&](stun::MessageBuilder& m) {
        m.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
        m.add_bytes(stun::attr::kData, Bytes{9, 8, 7});
      },
      /*sign=*/false);
  both.insert(both.end(), send.begin(), send.end());
  ASSERT_TRUE(c.send_all(both));
  stun::Endpoint from;
  const auto first = peer.receive(testing::kWaitMs, &from);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, (Bytes{1, 2, 3, 4, 5}));
  EXPECT_EQ(from, *relayed);
  const auto second = peer.receive();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, (Bytes{9, 8, 7}));

  // Peer -> client: ChannelData, padded on the stream.
  peer.send_to(*relayed, Bytes{42, 43, 44, 45, 46, 47, 48});
  const auto back = c.read_frame();
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->size(), 12u) << "4 header + 7 payload + 1 padding";
  const auto cd = stun::parse_channel_data(*back);
  ASSERT_TRUE(cd.has_value());
  EXPECT_EQ(cd->channel, 0x4001);
  EXPECT_EQ(Bytes(cd->payload.begin(), cd->payload.end()), (Bytes{42, 43, 44, 45, 46, 47, 48}));
}

TEST(StreamServer, SplitAndCoalescedRequestsAreAllAnswered) {
  StreamServerFixture f(1);
  StreamClient c(f.tcp());
  ASSERT_TRUE(c.ok()) << c.error();
  Bytes stream;
  std::vector<stun::TransactionId> ids;
  for (int i = 0; i < 20; ++i) {
    const Bytes r = binding_request(c, static_cast<uint16_t>(i * 4));
    ids.push_back(stun::MessageView::parse(r)->transaction_id());
    stream.insert(stream.end(), r.begin(), r.end());
  }
  // Odd-sized writes cut frames anywhere; TCP_NODELAY sends each at once.
  for (size_t pos = 0; pos < stream.size();) {
    const size_t n = std::min<size_t>(37, stream.size() - pos);
    ASSERT_TRUE(c.send_all(std::span<const uint8_t>(stream).subspan(pos, n)));
    pos += n;
  }
  for (const auto& id : ids) {
    const auto frame = c.read_frame();
    ASSERT_TRUE(frame.has_value());
    const auto msg = stun::MessageView::parse(*frame);
    ASSERT_TRUE(msg.has_value());
    EXPECT_EQ(msg->transaction_id(), id);
  }
}

TEST(StreamServer, ClosingTheConnectionEndsTheAllocation) {
  StreamServerFixture f(2);
  StreamClient c(f.tcp());
  ASSERT_TRUE(c.ok()) << c.error();
  f.login(c);
  ASSERT_TRUE(c.allocate().has_value());
  c.close();
  EXPECT_TRUE(f.observer().wait_for(core::EndReason::kTransportClosed));
}

TEST(StreamServer, GarbageClosesTheConnection) {
  StreamServerFixture f(1);
  StreamClient c(f.tcp());
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(c.send_all(binding_request(c)));
  ASSERT_TRUE(c.read_frame().has_value());
  const Bytes rtp = {0x80, 0x60, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 1};
  ASSERT_TRUE(c.send_all(rtp));
  EXPECT_TRUE(c.closed_by_server());
}

TEST(StreamServer, FramesAboveTheMaximumCloseTheConnection) {
  StreamLimits limits;
  limits.max_frame_bytes = 548;
  StreamServerFixture f(1, limits);
  StreamClient c(f.tcp());
  ASSERT_TRUE(c.ok()) << c.error();
  const Bytes edge = binding_request(c, 516);  // 20 + 4 + 516 + FINGERPRINT 8 = 548
  ASSERT_EQ(edge.size(), 548u);
  ASSERT_TRUE(c.send_all(edge));
  const auto answer = c.read_frame();
  ASSERT_TRUE(answer.has_value()) << "a frame of exactly the maximum is served";
  const Bytes header = {0x40, 0x01, 0x03, 0xE8};  // ChannelData announcing 1000 bytes
  ASSERT_TRUE(c.send_all(header));
  EXPECT_TRUE(c.closed_by_server());
}

TEST(StreamServer, SlowLorisIsClosedByTheIdleTimeout) {
  StreamLimits limits;
  limits.idle_timeout_ms = 200;
  StreamServerFixture f(1, limits);
  StreamClient c(f.tcp());
  ASSERT_TRUE(c.ok()) << c.error();
  // One byte at a time of a 1020-byte message: bytes keep coming, no frame completes. The
  // server must close long before the message (20 s at this pace) could complete.
  const Bytes slow = binding_request(c, 996);
  bool closed = false;
  for (size_t i = 0; i < slow.size() && !closed; ++i) {
    if (!c.send_all(std::span<const uint8_t>(slow).subspan(i, 1))) break;
    closed = c.closed_by_server(20);
  }
  EXPECT_TRUE(closed || c.closed_by_server());
}

TEST(StreamServer, IdleConnectionsCloseButActiveOnesStay) {
  StreamLimits limits;
  limits.idle_timeout_ms = 300;
  StreamServerFixture f(1, limits);
  StreamClient idle(f.tcp());
  StreamClient active(f.tcp());
  ASSERT_TRUE(idle.ok() && active.ok());
  // The active client completes a request every 30 ms while the idle one says nothing.
  bool idle_closed = false;
  for (int i = 0; i < 200 && !idle_closed; ++i) {
    ASSERT_TRUE(active.send_all(binding_request(active)));
    ASSERT_TRUE(active.read_frame().has_value()) << "active connection closed at round " << i;
    idle_closed = idle.closed_by_server(30);
  }
  EXPECT_TRUE(idle_closed);
  ASSERT_TRUE(active.send_all(binding_request(active)));
  EXPECT_TRUE(active.read_frame().has_value());
}

TEST(StreamServer, ManyClientsOnTwoWorkers) {
  StreamServerFixture f(2);
  std::vector<std::unique_ptr<StreamClient>> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<StreamClient>(f.tcp()));
    ASSERT_TRUE(clients.back()->ok());
    f.login(*clients.back());
    ASSERT_TRUE(clients.back()->allocate().has_value()) << "client " << i;
  }
  // Each one's allocation is its own: a peer reaches each client through its relay.
  UdpSocket peer;
  for (auto& c : clients) {
    ASSERT_TRUE(
        is_success(c->request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& m) {
          m.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
        })));
  }
}

TEST(StreamServer, ConnectionLimitRefusesExtraConnections) {
  StreamLimits limits;
  limits.max_connections = 1;
  StreamServerFixture f(1, limits);
  StreamClient first(f.tcp());
  ASSERT_TRUE(first.ok()) << first.error();
  ASSERT_TRUE(first.send_all(binding_request(first)));
  ASSERT_TRUE(first.read_frame().has_value());
  StreamClient second(f.tcp());  // accepted by the kernel, closed by the server
  EXPECT_TRUE(second.closed_by_server());
  ASSERT_TRUE(first.send_all(binding_request(first)));
  EXPECT_TRUE(first.read_frame().has_value());
}

}  // namespace
}  // namespace callrelay::net
