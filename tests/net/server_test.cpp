// The UDP server end to end on loopback: real workers, real core, a test client and an echo
// peer driven from the test thread.
#include "relay/net/server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "relay/core/auth.hpp"
#include "relay/stun/channel_data.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::net {
namespace {

using testing::bytes;
using testing::ipv6_available;
using testing::kNoIpv6;
using testing::loopback;
using testing::TurnClient;
using testing::UdpSocket;

constexpr char kSecret[] = "net-test-secret";
constexpr char kRealm[] = "net.test";

/// Counts what the core reports; called on worker threads.
class CountingObserver : public core::Observer {
 public:
  void on_allocation_created(const core::AllocationInfo&) override { ++created; }
  void on_allocation_ended(const core::AllocationInfo& a, core::EndReason reason,
                           core::TimeMs) override {
    std::lock_guard<std::mutex> lock(mu);
    ended.push_back(reason);
    to_peer_packets += a.traffic.packets_to_peer.get();
    to_client_packets += a.traffic.packets_to_client.get();
  }
  std::atomic<int> created{0};
  std::mutex mu;
  std::vector<core::EndReason> ended;
  uint64_t to_peer_packets = 0, to_client_packets = 0;
};

/// A running server on 127.0.0.1:0 allowing loopback peers.
class ServerFixture {
 public:
  explicit ServerFixture(unsigned workers, bool allow_loopback = true,
                         std::vector<stun::Endpoint> listen = {loopback(0)})
      : auth_(auth_config()), nonces_(key(), 600), policy_(peers(allow_loopback)) {
    ServerSettings s;
    s.listen_udp = std::move(listen);
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.workers = workers;
    server_ = std::make_unique<Server>(s, SharedAuth{auth_, nonces_, policy_},
                                       [this](unsigned) { return &observer_; });
    server_->start();
  }
  ~ServerFixture() { stop(); }
  void stop() {
    if (!server_) return;
    server_->stop();
    server_->join();
    server_.reset();
  }
  stun::Endpoint endpoint(size_t i = 0) const { return server_->listening().at(i); }
  const std::vector<stun::Endpoint>& listening() const { return server_->listening(); }
  /// A client of listener 0 (or of `server`, from `local`).
  TurnClient client(int64_t expiry_offset_s = 3600, std::optional<stun::Endpoint> server = {},
                    const stun::Endpoint& local = loopback(0)) const {
    const auto now_s = now_ms() / 1000;
    const std::string username = std::to_string(now_s + expiry_offset_s) + ":alice";
    return TurnClient(server.value_or(endpoint()), username,
                      core::Authenticator::rest_password(kSecret, username), kRealm, local);
  }
  CountingObserver& observer() { return observer_; }

 private:
  static core::AuthConfig auth_config() {
    core::AuthConfig a;
    a.realm = kRealm;
    a.rest_secrets = {kSecret};
    return a;
  }
  static std::array<uint8_t, 32> key() {
    std::array<uint8_t, 32> k{};
    k.fill(7);
    return k;
  }
  static core::PeerPolicyConfig peers(bool allow_loopback) {
    core::PeerPolicyConfig p;
    if (allow_loopback) p.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
    return p;
  }
  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  CountingObserver observer_;
  std::unique_ptr<Server> server_;
};

bool binding_works(TurnClient& c) {
  const auto r = c.request(stun::Method::kBinding, {}, /*sign=*/false);
  if (!r || !r->msg || r->error_code() != 0) return false;
  return r->msg->xor_address(stun::attr::kXorMappedAddress) ==
         std::optional<stun::Endpoint>(c.socket().local());
}

TEST(Server, AnswersBindingWithTheClientsAddress) {
  ServerFixture f(1);
  EXPECT_EQ(f.endpoint().ip_string(), "127.0.0.1");
  EXPECT_NE(f.endpoint().port, 0);
  auto c = f.client();
  EXPECT_TRUE(binding_works(c));
}

TEST(Server, AllocatePermissionChannelAndDataBothWays) {
  ServerFixture f(2);
  auto c = f.client();
  UdpSocket peer;
  ASSERT_TRUE(peer.ok());

  const auto relayed = c.allocate();
  ASSERT_TRUE(relayed) << "Allocate failed";
  ASSERT_TRUE(c.last_401) << "no 401 challenge first";
  EXPECT_EQ(c.last_401->error_code(), 401);
  EXPECT_TRUE(c.last_401->msg->string(stun::attr::kNonce));
  EXPECT_EQ(relayed->ip_string(), "127.0.0.1");
  EXPECT_GE(relayed->port, 61000);
  EXPECT_LE(relayed->port, 65000);

  const auto perm = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  });
  ASSERT_TRUE(perm);
  ASSERT_EQ(perm->error_code(), 0);

  // Send indication -> datagram at the peer, from the relayed address.
  c.send_raw(c.build(
      stun::Method::kSend, stun::Class::kIndication,
      [&](stun::MessageBuilder& b) {
        b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
        b.add_string(stun::attr::kData, "hello");
      },
      false));
  stun::Endpoint from;
  auto got = peer.receive(testing::kWaitMs, &from);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, bytes("hello"));
  EXPECT_EQ(from, *relayed);

  // Peer datagram -> Data indication at the client.
  peer.send_to(*relayed, bytes("world"));
  auto data = c.socket().receive();
  ASSERT_TRUE(data);
  const auto ind = stun::MessageView::parse(*data);
  ASSERT_TRUE(ind);
  EXPECT_EQ(ind->method(), stun::Method::kData);
  EXPECT_EQ(ind->xor_address(stun::attr::kXorPeerAddress),
            std::optional<stun::Endpoint>(peer.local()));
  ASSERT_TRUE(ind->data());
  EXPECT_EQ(std::vector<uint8_t>(ind->data()->begin(), ind->data()->end()), bytes("world"));

  // ChannelBind, then ChannelData round trip through an echo at the peer.
  const auto bind = c.request(stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
    b.add_channel_number(0x4001);
    b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  });
  ASSERT_TRUE(bind);
  ASSERT_EQ(bind->error_code(), 0);
  std::vector<uint8_t> frame(4);
  stun::write_channel_data_header(std::span<uint8_t, 4>(frame.data(), 4), 0x4001, 5);
  for (char ch : std::string("ping!")) frame.push_back(static_cast<uint8_t>(ch));
  for (int i = 0; i < 3; ++i) {
    c.send_raw(frame);
    got = peer.receive(testing::kWaitMs, &from);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, bytes("ping!"));
    peer.send_to(from, *got);  // echo
    const auto back = c.socket().receive();
    ASSERT_TRUE(back);
    const auto cd = stun::parse_channel_data(*back);
    ASSERT_TRUE(cd);
    EXPECT_EQ(cd->channel, 0x4001);
    EXPECT_EQ(std::vector<uint8_t>(cd->payload.begin(), cd->payload.end()), bytes("ping!"));
  }

  // Refresh with lifetime 0 deletes the allocation and closes its relay socket.
  const auto refresh = c.request(
      stun::Method::kRefresh, [](stun::MessageBuilder& b) { b.add_u32(stun::attr::kLifetime, 0); });
  ASSERT_TRUE(refresh);
  EXPECT_EQ(refresh->error_code(), 0);
  peer.send_to(*relayed, bytes("late"));
  EXPECT_FALSE(c.socket().receive(200));
  f.stop();
  std::lock_guard<std::mutex> lock(f.observer().mu);
  ASSERT_EQ(f.observer().ended.size(), 1u);
  EXPECT_EQ(f.observer().ended[0], core::EndReason::kRefreshZero);
  EXPECT_EQ(f.observer().to_peer_packets, 4u);
  EXPECT_EQ(f.observer().to_client_packets, 4u);
}

TEST(Server, BadCredentialGets401) {
  ServerFixture f(1);
  auto c = f.client(-60);  // REST username expired a minute ago
  const auto r = c.request(stun::Method::kAllocate,
                           [](stun::MessageBuilder& b) { b.add_requested_transport(17); });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error_code(), 401);
}

TEST(Server, PeerPolicyRefusesLoopbackByDefault) {
  ServerFixture f(1, /*allow_loopback=*/false);
  auto c = f.client();
  ASSERT_TRUE(c.allocate());
  const auto r = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, loopback(9));
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error_code(), 403);
}

TEST(Server, GarbageAndHugeDatagramsDoNotStopIt) {
  ServerFixture f(1);
  auto c = f.client();
  std::vector<uint8_t> huge(65507, 0);  // largest UDP payload over IPv4
  huge[0] = 0x00;                       // looks like STUN
  c.send_raw(huge);
  huge[0] = 0x40;  // looks like ChannelData
  c.send_raw(huge);
  std::vector<uint8_t> stunish = c.build(stun::Method::kBinding, stun::Class::kRequest, {}, false);
  stunish[3] = 0xFC;  // length overruns the datagram
  c.send_raw(stunish);
  for (int i = 0; i < 64; ++i) {
    std::vector<uint8_t> g(static_cast<size_t>(1 + i * 37 % 700));
    for (size_t j = 0; j < g.size(); ++j)
      g[j] = static_cast<uint8_t>(j * 131 + static_cast<size_t>(i));
    c.send_raw(g);
  }
  c.send_raw({});  // empty datagram
  // Error responses (400) may arrive for some of these; the Binding must still be answered.
  EXPECT_TRUE(binding_works(c));
}

TEST(Server, SecondServerOnTheSamePortFailsToBind) {
  ServerFixture f(2);
  core::Authenticator auth(core::AuthConfig{});
  core::NonceCodec nonces({}, 600);
  core::PeerPolicy policy;
  ServerSettings s;
  s.listen_udp = {f.endpoint()};
  s.relay.port_min = 61000;
  s.relay.port_max = 65000;
  s.workers = 1;
  EXPECT_THROW(Server(s, SharedAuth{auth, nonces, policy}), BindError);
  auto c = f.client();
  EXPECT_TRUE(binding_works(c));  // the first one is unaffected
}

TEST(Server, ManyClientsAcrossWorkers) {
  ServerFixture f(3);
  for (int i = 0; i < 12; ++i) {
    auto c = f.client();
    EXPECT_TRUE(binding_works(c)) << "client " << i;
  }
}

TEST(Server, ReservationTokenWorksFromAnotherPortOfTheSameHost) {
  // RFC 8656 section 7.2: EVEN-PORT(R) reserves port+1 for a later Allocate with the token,
  // usually from another port of the same client. With several workers that Allocate may
  // reach another worker than the reservation's, which claims it from the shared registry.
  ServerFixture f(3);
  for (int round = 0; round < 4; ++round) {
    auto rtp = f.client();
    auto rtcp = f.client();
    std::optional<uint64_t> token;
    const auto r = rtp.request(stun::Method::kAllocate, [](stun::MessageBuilder& b) {
      b.add_requested_transport(17);
      const uint8_t reserve[1] = {0x80};
      b.add_bytes(stun::attr::kEvenPort, reserve);
    });
    ASSERT_TRUE(r);
    ASSERT_EQ(r->error_code(), 0);
    token = r->msg->reservation_token();
    ASSERT_TRUE(token);
    const auto first = r->msg->xor_address(stun::attr::kXorRelayedAddress);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->port % 2, 0);
    const auto second = rtcp.allocate(
        [&](stun::MessageBuilder& b) { b.add_u64(stun::attr::kReservationToken, *token); });
    ASSERT_TRUE(second) << "round " << round;
    EXPECT_EQ(second->port, first->port + 1);
  }
}

/// Sends a Binding request to `to` and checks the answer comes from exactly `to` (IP_PKTINFO
/// on a wildcard listener) and maps the client's address.
void expect_binding_from(TurnClient& c, const stun::Endpoint& to) {
  c.send_raw(c.build(stun::Method::kBinding, stun::Class::kRequest, {}, false));
  stun::Endpoint from;
  const auto raw = c.socket().receive(testing::kWaitMs, &from);
  ASSERT_TRUE(raw);
  EXPECT_EQ(from, to);
  const auto msg = stun::MessageView::parse(*raw);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->xor_address(stun::attr::kXorMappedAddress),
            std::optional<stun::Endpoint>(c.socket().local()));
}

TEST(Server, WildcardListenerAnswersFromTheAddressTheClientReached) {
  ServerFixture f(2, true, {*stun::Endpoint::parse("0.0.0.0:0")});
  ASSERT_EQ(f.endpoint().ip_string(), "0.0.0.0");
  const stun::Endpoint reached = loopback(f.endpoint().port);
  auto c = f.client(3600, reached);
  expect_binding_from(c, reached);
  // The relay socket binds the address the client reached, not the wildcard.
  const auto relayed = c.allocate();
  ASSERT_TRUE(relayed);
  EXPECT_EQ(relayed->ip_string(), "127.0.0.1");
  // A second loopback address reaches the same wildcard socket; answers come from it.
  const stun::Endpoint other = stun::Endpoint::v4({127, 0, 0, 2}, f.endpoint().port);
  auto c2 = f.client(3600, other);
  expect_binding_from(c2, other);
}

TEST(Server, Ipv6Listener) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  const auto v6 = stun::Endpoint::parse("[::1]:0");
  ServerFixture f(2, true, {loopback(0), *stun::Endpoint::parse("[::]:0")});
  ASSERT_EQ(f.listening().size(), 2u);
  const stun::Endpoint reached =
      *stun::Endpoint::parse("[::1]:" + std::to_string(f.endpoint(1).port));
  auto c = f.client(3600, reached, *v6);
  expect_binding_from(c, reached);
  // RFC 8656 section 7.2: without REQUESTED-ADDRESS-FAMILY the relayed address is IPv4; it
  // binds the IPv4 listen address since the client reached us over IPv6.
  const auto relayed4 = c.allocate();
  ASSERT_TRUE(relayed4);
  EXPECT_EQ(relayed4->ip_string(), "127.0.0.1");
  auto c6 = f.client(3600, reached, *v6);
  const auto relayed6 = c6.allocate([](stun::MessageBuilder& b) {
    const uint8_t family[4] = {0x02, 0, 0, 0};
    b.add_bytes(stun::attr::kRequestedAddressFamily, family);
  });
  ASSERT_TRUE(relayed6);
  EXPECT_EQ(relayed6->ip_string(), "::1");
}

TEST(Server, ShutdownEndsLiveAllocations) {
  ServerFixture f(2);
  auto a = f.client();
  auto b = f.client();
  ASSERT_TRUE(a.allocate());
  ASSERT_TRUE(b.allocate());
  EXPECT_EQ(f.observer().created.load(), 2);
  f.stop();
  std::lock_guard<std::mutex> lock(f.observer().mu);
  ASSERT_EQ(f.observer().ended.size(), 2u);
  for (const auto r : f.observer().ended) EXPECT_EQ(r, core::EndReason::kShutdown);
}

}  // namespace
}  // namespace callrelay::net
