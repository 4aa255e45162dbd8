// The io_uring data path: UringRelay on its own over loopback sockets (multishot receive into
// provided buffers, sends of several sockets in one submit, datagrams to one peer joined into
// segmented sends, cancel, running out of buffers),
// and whole servers relaying ChannelData with relay.io forced to io_uring and to epoll.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "relay/net/socket_ops.hpp"
#include "relay/net/udp_batch.hpp"
#include "relay/net/uring_relay.hpp"
#include "relay/stun/channel_data.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::net {
namespace {

using testing::loopback;
using testing::TurnClient;
using testing::UdpSocket;

struct Got {
  core::RelayId id;
  stun::Endpoint peer;
  std::vector<uint8_t> payload;
  bool headroom_writable;
};

struct Collect final : UringRelay::Sink {
  std::vector<Got> got;
  void on_relay_datagram(core::RelayId id, const stun::Endpoint& peer, std::span<uint8_t> slot,
                         size_t len) override {
    const bool room = slot.size() >= core::kPeerHeadroom + len + core::kPeerTailroom;
    // The core writes its framing into the headroom and tailroom: they must be ours to write.
    if (room) {
      std::memset(slot.data(), 0x5A, core::kPeerHeadroom);
      std::memset(slot.data() + core::kPeerHeadroom + len, 0x5A, core::kPeerTailroom);
    }
    got.push_back(Got{id, peer,
                      {slot.data() + core::kPeerHeadroom, slot.data() + core::kPeerHeadroom + len},
                      room});
  }
};

/// A bound non-blocking relay-like socket on 127.0.0.1 (closed by the test or at exit).
struct RelayFd {
  RelayFd() {
    const OpenResult r = open_udp(loopback(0), UdpOptions{});
    fd = r.fd;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (fd >= 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      local = *from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
    }
  }
  ~RelayFd() {
    if (fd >= 0) ::close(fd);
  }
  int fd = -1;
  stun::Endpoint local;
};

/// Harvests (returning buffers after each batch) until `want` datagrams arrived or ~2 s passed.
void harvest_until(UringRelay& ring, Collect& sink, size_t want) {
  for (int spin = 0; spin < 2000 && sink.got.size() < want; ++spin) {
    if (ring.harvest(sink, 32) == 0) ::usleep(1000);
    ring.release_buffers();
  }
}

class UringRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Containers with Docker's default seccomp profile refuse io_uring_setup: the server then
    // runs the epoll path (covered by the epoll cases), and these cases cannot run.
    if (!uring_unavailable().empty()) GTEST_SKIP() << "io_uring unavailable: " << uring_unavailable();
  }
  asio::io_context ctx;
};

TEST_F(UringRelayTest, ReceivesFromManySocketsWithTheirPeerAndRoomToFrame) {
  UringRelay ring(ctx);
  RelayFd a, b;
  ASSERT_GE(a.fd, 0);
  ASSERT_GE(b.fd, 0);
  ring.watch(a.fd, 3);
  ring.watch(b.fd, 7);
  ring.submit();
  UdpSocket peer;
  for (int i = 0; i < 5; ++i) {
    peer.send_to(a.local, testing::bytes("to a " + std::to_string(i)));
    peer.send_to(b.local, testing::bytes("to b " + std::to_string(i)));
  }
  Collect sink;
  harvest_until(ring, sink, 10);
  ASSERT_EQ(sink.got.size(), 10u);
  std::map<core::RelayId, std::vector<std::string>> by_id;
  for (const Got& g : sink.got) {
    EXPECT_EQ(g.peer, peer.local());
    EXPECT_TRUE(g.headroom_writable);
    by_id[g.id].emplace_back(g.payload.begin(), g.payload.end());
  }
  ASSERT_EQ(by_id[3].size(), 5u);
  ASSERT_EQ(by_id[7].size(), 5u);
  for (int i = 0; i < 5; ++i) {  // in order per socket
    EXPECT_EQ(by_id[3][static_cast<size_t>(i)], "to a " + std::to_string(i));
    EXPECT_EQ(by_id[7][static_cast<size_t>(i)], "to b " + std::to_string(i));
  }
  EXPECT_EQ(ring.received(), 10u);
}

TEST_F(UringRelayTest, SendsOfSeveralSocketsLeaveInOneSubmitInOrder) {
  UringRelay ring(ctx);
  RelayFd a, b;
  UdpSocket peer;
  std::vector<std::vector<uint8_t>> payloads;
  for (int i = 0; i < 40; ++i) payloads.push_back(testing::bytes("datagram " + std::to_string(i)));
  for (int i = 0; i < 40; ++i) ring.send(i % 2 == 0 ? a.fd : b.fd, peer.local(), payloads[static_cast<size_t>(i)]);
  // Nothing leaves before the submit.
  EXPECT_FALSE(peer.receive(50).has_value());
  ring.submit();
  std::vector<std::string> from_a, from_b;
  for (int i = 0; i < 40; ++i) {
    stun::Endpoint from;
    const auto got = peer.receive(testing::kWaitMs, &from);
    ASSERT_TRUE(got) << "datagram " << i << " missing";
    (from == a.local ? from_a : from_b).emplace_back(got->begin(), got->end());
    EXPECT_TRUE(from == a.local || from == b.local) << from.to_string();
  }
  ASSERT_EQ(from_a.size(), 20u);
  ASSERT_EQ(from_b.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(from_a[static_cast<size_t>(i)], "datagram " + std::to_string(2 * i));
    EXPECT_EQ(from_b[static_cast<size_t>(i)], "datagram " + std::to_string(2 * i + 1));
  }
  Collect sink;
  for (int spin = 0; spin < 200 && ring.sent() < 40; ++spin) {
    if (ring.harvest(sink, 32) == 0) ::usleep(1000);
  }
  EXPECT_EQ(ring.sent(), 40u);
  EXPECT_EQ(ring.send_errors(), 0u);
  EXPECT_TRUE(sink.got.empty());
}

/// `n` bytes of `tag` then the index, so that each datagram is told apart by its content.
std::vector<uint8_t> datagram(char tag, int index, size_t n) {
  std::vector<uint8_t> d(n, static_cast<uint8_t>(tag));
  d[0] = static_cast<uint8_t>(index);
  return d;
}

TEST_F(UringRelayTest, DatagramsToOnePeerLeaveAsOneSegmentedSend) {
  if (!udp_gso_supported(AF_INET)) GTEST_SKIP() << "no UDP segmentation offload here";
  UringRelay ring(ctx);
  ring.set_gso(true);
  RelayFd a, b;
  ASSERT_GE(a.fd, 0);
  ASSERT_GE(b.fd, 0);
  UdpSocket peer;
  // What the peer must see from each socket, in order.
  std::vector<std::vector<uint8_t>> want_a, want_b;
  std::vector<std::vector<uint8_t>> keep;  // payloads stay valid until the submit
  const auto send = [&](RelayFd& s, std::vector<uint8_t> d) {
    keep.push_back(std::move(d));
    (&s == &a ? want_a : want_b).push_back(keep.back());
    ring.send(s.fd, peer.local(), keep.back());
  };
  keep.reserve(64);
  // a: ten of 100 bytes and a shorter last one: one send of 11 segments.
  for (int i = 0; i < 10; ++i) send(a, datagram('a', i, 100));
  send(a, datagram('a', 10, 40));
  // b: three of 100 bytes: one send of 3.
  for (int i = 0; i < 3; ++i) send(b, datagram('b', i, 100));
  // a again, after b: a send of its own; a longer datagram cannot be a segment of the shorter
  // ones, so 100 then 300, 300: one alone, then one send of 2.
  send(a, datagram('a', 11, 100));
  send(a, datagram('a', 12, 300));
  send(a, datagram('a', 13, 300));
  // An empty datagram never joins (it would vanish inside a segmented send), nor do others
  // join it.
  send(b, {});
  send(b, datagram('b', 3, 100));
  ring.submit();
  std::vector<std::vector<uint8_t>> from_a, from_b;
  const size_t total = want_a.size() + want_b.size();
  for (size_t i = 0; i < total; ++i) {
    stun::Endpoint from;
    const auto got = peer.receive(testing::kWaitMs, &from);
    ASSERT_TRUE(got) << "datagram " << i << " of " << total << " missing";
    ASSERT_TRUE(from == a.local || from == b.local) << from.to_string();
    (from == a.local ? from_a : from_b).push_back(*got);
  }
  EXPECT_FALSE(peer.receive(50).has_value()) << "more datagrams than were sent";
  EXPECT_EQ(from_a, want_a);
  EXPECT_EQ(from_b, want_b);
  Collect sink;
  for (int spin = 0; spin < 200 && ring.sent() < total; ++spin) {
    if (ring.harvest(sink, 32) == 0) ::usleep(1000);
  }
  EXPECT_EQ(ring.sent(), total);
  EXPECT_EQ(ring.send_errors(), 0u);
  // a's 11, b's 3 and a's two of 300 bytes; the rest went alone.
  EXPECT_EQ(ring.gso_sends(), 3u);
}

TEST_F(UringRelayTest, InterleavedDatagramsOfSocketsAndPeersJoinOneSendPerPeerInOrder) {
  if (!udp_gso_supported(AF_INET)) GTEST_SKIP() << "no UDP segmentation offload here";
  UringRelay ring(ctx);
  ring.set_gso(true);
  RelayFd a, b;
  ASSERT_GE(a.fd, 0);
  ASSERT_GE(b.fd, 0);
  UdpSocket p1, p2;
  // As a batch of clients' datagrams arrives: a to p1, b to p1, a to p2, in turn, 8 rounds.
  std::map<std::pair<int, int>, std::vector<std::vector<uint8_t>>> want;  // (socket, peer)
  std::vector<std::vector<uint8_t>> keep;
  keep.reserve(64);
  const auto send = [&](RelayFd& s, int peer_index, std::vector<uint8_t> d) {
    keep.push_back(std::move(d));
    want[{s.fd, peer_index}].push_back(keep.back());
    ring.send(s.fd, (peer_index == 1 ? p1 : p2).local(), keep.back());
  };
  for (int i = 0; i < 8; ++i) {
    send(a, 1, datagram('a', i, 100));
    send(b, 1, datagram('b', i, 100));
    send(a, 2, datagram('A', i, 100));
  }
  ring.submit();
  std::map<std::pair<int, int>, std::vector<std::vector<uint8_t>>> got;
  for (int peer_index : {1, 2}) {
    UdpSocket& peer = peer_index == 1 ? p1 : p2;
    const size_t expected = peer_index == 1 ? 16 : 8;
    for (size_t i = 0; i < expected; ++i) {
      stun::Endpoint from;
      const auto d = peer.receive(testing::kWaitMs, &from);
      ASSERT_TRUE(d) << "peer " << peer_index << ": datagram " << i << " missing";
      ASSERT_TRUE(from == a.local || from == b.local) << from.to_string();
      got[{from == a.local ? a.fd : b.fd, peer_index}].push_back(*d);
    }
    EXPECT_FALSE(peer.receive(50).has_value()) << "more datagrams than were sent";
  }
  // Each (socket, peer) pair received its own datagrams, all of them, in the order queued.
  EXPECT_EQ(got, want);
  Collect sink;
  for (int spin = 0; spin < 200 && ring.sent() < 24; ++spin) {
    if (ring.harvest(sink, 32) == 0) ::usleep(1000);
  }
  EXPECT_EQ(ring.sent(), 24u);
  EXPECT_EQ(ring.send_errors(), 0u);
  // One segmented send per (socket, peer), though no two of a pair's datagrams were queued
  // next to each other.
  EXPECT_EQ(ring.gso_sends(), 3u);
}

TEST_F(UringRelayTest, WithoutSegmentationOffloadEachDatagramIsASendOfItsOwn) {
  UringRelay ring(ctx);
  ring.set_gso(false);
  RelayFd a;
  ASSERT_GE(a.fd, 0);
  UdpSocket peer;
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < 5; ++i) sent.push_back(datagram('x', i, 100));
  for (const auto& d : sent) ring.send(a.fd, peer.local(), d);
  ring.submit();
  for (const auto& d : sent) {
    const auto got = peer.receive();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, d);
  }
  Collect sink;
  for (int spin = 0; spin < 200 && ring.sent() < 5; ++spin) {
    if (ring.harvest(sink, 32) == 0) ::usleep(1000);
  }
  EXPECT_EQ(ring.sent(), 5u);
  EXPECT_EQ(ring.gso_sends(), 0u);
}

TEST_F(UringRelayTest, UnwatchStopsDeliveryAndFreesThePort) {
  UringRelay ring(ctx);
  auto a = std::make_unique<RelayFd>();
  const stun::Endpoint where = a->local;
  ring.watch(a->fd, 1);
  ring.submit();
  UdpSocket peer;
  peer.send_to(where, testing::bytes("before"));
  Collect sink;
  harvest_until(ring, sink, 1);
  ASSERT_EQ(sink.got.size(), 1u);
  ring.unwatch(1);
  EXPECT_FALSE(ring.watching(1));
  a.reset();  // closes the descriptor
  // The cancelled request let go of the socket: the port can be bound again at once.
  const OpenResult again = open_udp(where, UdpOptions{});
  ASSERT_GE(again.fd, 0) << "port still held: " << error_text(again.error);
  peer.send_to(where, testing::bytes("after"));
  // The new socket is not watched; nothing more reaches the sink.
  for (int i = 0; i < 20; ++i) {
    ring.harvest(sink, 32);
    ::usleep(1000);
  }
  EXPECT_EQ(sink.got.size(), 1u);
  ::close(again.fd);
}

TEST_F(UringRelayTest, OutOfBuffersThenResumesOnceReturned) {
  UringRelay ring(ctx);
  RelayFd a;
  int big = 4 << 20;
  ::setsockopt(a.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  ring.watch(a.fd, 0);
  ring.submit();
  UdpSocket peer;
  const size_t total = UringRelay::kBuffers + 100;
  // Sent in bursts the socket buffer holds; buffers are not returned in between, so the
  // multishot receive ends with ENOBUFS after kBuffers datagrams and must be re-armed.
  Collect sink;
  for (size_t i = 0; i < total; ++i) peer.send_to(a.local, testing::bytes(std::to_string(i)));
  for (int spin = 0; spin < 500 && sink.got.size() < UringRelay::kBuffers; ++spin) {
    if (ring.harvest(sink, 1024) == 0) ::usleep(1000);
  }
  EXPECT_EQ(sink.got.size(), UringRelay::kBuffers) << "one buffer per datagram until returned";
  ring.release_buffers();
  harvest_until(ring, sink, total);
  ASSERT_EQ(sink.got.size(), total);
  for (size_t i = 0; i < total; ++i) {
    EXPECT_EQ(std::string(sink.got[i].payload.begin(), sink.got[i].payload.end()),
              std::to_string(i));
  }
}

TEST(RelayIoSetting, ParsesAndNames) {
  EXPECT_EQ(parse_relay_io("auto"), RelayIo::kAuto);
  EXPECT_EQ(parse_relay_io("io_uring"), RelayIo::kUring);
  EXPECT_EQ(parse_relay_io("epoll"), RelayIo::kEpoll);
  EXPECT_FALSE(parse_relay_io("uring").has_value());
  EXPECT_FALSE(parse_relay_io("").has_value());
  EXPECT_STREQ(to_string(RelayIo::kUring), "io_uring");
  EXPECT_EQ(resolve_relay_io(RelayIo::kEpoll), RelayIo::kEpoll);
  EXPECT_EQ(resolve_relay_io(RelayIo::kUring), RelayIo::kUring);
  // auto follows CALLRELAY_RELAY_IO when it is set (the epoll variants of the real-client
  // tests), and otherwise what works here.
  const char* old = std::getenv("CALLRELAY_RELAY_IO");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("CALLRELAY_RELAY_IO", "epoll", 1);
  EXPECT_EQ(resolve_relay_io(RelayIo::kAuto), RelayIo::kEpoll);
  ::setenv("CALLRELAY_RELAY_IO", "io_uring", 1);
  EXPECT_EQ(resolve_relay_io(RelayIo::kAuto), RelayIo::kUring);
  ::unsetenv("CALLRELAY_RELAY_IO");
  EXPECT_EQ(resolve_relay_io(RelayIo::kAuto), RelayIo::kEpoll);  // auto: the Asio path for now
  if (old != nullptr) ::setenv("CALLRELAY_RELAY_IO", saved.c_str(), 1);
}

// A whole server relaying ChannelData both ways, many allocations at once, with each backend.
class ServerRelayIo : public ::testing::TestWithParam<RelayIo> {
 protected:
  void TearDown() override { set_relay_io(RelayIo::kAuto); }
};

TEST_P(ServerRelayIo, RelaysChannelDataBothWaysForManyAllocations) {
  if (GetParam() == RelayIo::kUring && !uring_unavailable().empty()) {
    GTEST_SKIP() << "io_uring unavailable: " << uring_unavailable();
  }
  set_relay_io(GetParam());
  core::AuthConfig ac;
  ac.realm = "io.test";
  ac.rest_secrets = {"io-secret"};
  const core::Authenticator auth(ac);
  const core::NonceCodec nonces({}, 600);
  core::PeerPolicyConfig pc;
  pc.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
  const core::PeerPolicy policy(pc);
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.relay.port_min = 40000;
  s.relay.port_max = 40999;
  s.workers = 2;
  Server server(s, SharedAuth{auth, nonces, policy});
  server.start();

  constexpr int kClients = 8;
  const std::string user = std::to_string(now_ms() / 1000 + 3600) + ":io";
  std::vector<std::unique_ptr<TurnClient>> clients;
  UdpSocket peer;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<TurnClient>(
        server.listening().at(0), user, core::Authenticator::rest_password("io-secret", user),
        "io.test"));
    TurnClient& c = *clients.back();
    ASSERT_TRUE(c.allocate());
    const auto bind = c.request(stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
      b.add_channel_number(0x4000);
      b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
    });
    ASSERT_TRUE(bind && bind->error_code() == 0);
  }
  for (int round = 0; round < 20; ++round) {
    std::map<std::string, int> relay_of;  // relayed address -> client
    for (int i = 0; i < kClients; ++i) {
      std::vector<uint8_t> frame(4 + 160, static_cast<uint8_t>(i));
      stun::write_channel_data_header(std::span<uint8_t, 4>(frame.data(), 4), 0x4000, 160);
      clients[static_cast<size_t>(i)]->send_raw(frame);
    }
    for (int i = 0; i < kClients; ++i) {
      stun::Endpoint from;
      const auto got = peer.receive(testing::kWaitMs, &from);
      ASSERT_TRUE(got && got->size() == 160) << "round " << round;
      relay_of[from.to_string()] = (*got)[0];
      peer.send_to(from, *got);  // echoed back through the same relay socket
    }
    ASSERT_EQ(relay_of.size(), static_cast<size_t>(kClients)) << "one relay socket each";
    for (int i = 0; i < kClients; ++i) {
      const auto back = clients[static_cast<size_t>(i)]->socket().receive();
      ASSERT_TRUE(back && back->size() == 164) << "client " << i << " round " << round;
      EXPECT_EQ((*back)[4], static_cast<uint8_t>(i)) << "a client got another's datagram";
    }
  }
  server.stop();
  server.join();
}

std::string backend_name(const ::testing::TestParamInfo<RelayIo>& p) {
  return p.param == RelayIo::kUring ? "io_uring" : "epoll";
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerRelayIo,
                         ::testing::Values(RelayIo::kUring, RelayIo::kEpoll), backend_name);

}  // namespace
}  // namespace callrelay::net
