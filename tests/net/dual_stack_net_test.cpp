// IPv6 and dual-stack allocations through the real server on loopback: an IPv4 client asking
// for an IPv6 relay (REQUESTED-ADDRESS-FAMILY) and for both (ADDITIONAL-ADDRESS-FAMILY), an
// IPv6 client on [::1], and peers of both families exchanging data with the client through
// the relay of their own family (RFC 8656 sections 7.2, 8, 11).
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>

#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "relay/net/socket_ops.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::core {
// relay/core's decoder of one XOR-*-ADDRESS attribute (relay/core/server_impl.hpp).
std::optional<Endpoint> decode_xor_address(const stun::MessageView& msg, const stun::Attribute& a);
}  // namespace callrelay::core

namespace callrelay::net {
namespace {

using testing::ipv6_available;
using testing::kNoIpv6;
using testing::loopback;
using testing::Response;
using testing::TurnClient;
using testing::UdpSocket;

constexpr char kSecret[] = "dual-test-secret";
constexpr char kRealm[] = "dual.test";
const stun::Endpoint kLoop6Any = *stun::Endpoint::parse("[::1]:0");

/// A running server on `listen` whose peer policy allows loopback peers of both families.
class DualServer {
 public:
  explicit DualServer(std::vector<stun::Endpoint> listen)
      : auth_(auth_config()), nonces_(key(), 600), policy_(peers()) {
    ServerSettings s;
    s.listen_udp = std::move(listen);
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.workers = 1;
    server_ = std::make_unique<Server>(s, SharedAuth{auth_, nonces_, policy_},
                                       [](unsigned) -> core::Observer* { return nullptr; });
    server_->start();
  }
  ~DualServer() {
    server_->stop();
    server_->join();
  }
  TurnClient client(size_t listener, const stun::Endpoint& local) const {
    const std::string username = std::to_string(now_ms() / 1000 + 3600) + ":dual";
    stun::Endpoint to = server_->listening().at(listener);
    if (is_unspecified(to))
      to = to.is_v4() ? loopback(to.port)
                      : *stun::Endpoint::parse("[::1]:" + std::to_string(to.port));
    return TurnClient(to, username, core::Authenticator::rest_password(kSecret, username), kRealm,
                      local);
  }

 private:
  static core::AuthConfig auth_config() {
    core::AuthConfig a;
    a.realm = kRealm;
    a.rest_secrets = {kSecret};
    return a;
  }
  static std::array<uint8_t, 32> key() {
    std::array<uint8_t, 32> k{};
    k.fill(9);
    return k;
  }
  static core::PeerPolicyConfig peers() {
    core::PeerPolicyConfig p;
    p.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
    p.allow.push_back(*core::Cidr::parse("::1/128"));
    return p;
  }
  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  std::unique_ptr<Server> server_;
};

TurnClient::Attrs family(uint16_t type, uint8_t f) {
  return [=](stun::MessageBuilder& b) { b.add_bytes(type, std::vector<uint8_t>{f, 0, 0, 0}); };
}

/// Every XOR-RELAYED-ADDRESS of a response, in order (MessageView::xor_address reads only
/// the first; relay/core's attribute decoder reads each).
std::vector<stun::Endpoint> relayed(const Response& r) {
  std::vector<stun::Endpoint> out;
  if (!r.msg) return out;
  for (const auto& a : r.msg->attributes()) {
    if (a.type != stun::attr::kXorRelayedAddress) continue;
    if (const auto e = core::decode_xor_address(*r.msg, a)) out.push_back(*e);
  }
  return out;
}

std::optional<Response> allocate(TurnClient& c, const TurnClient::Attrs& extra) {
  c.request(
      stun::Method::kAllocate, [](stun::MessageBuilder& b) { b.add_requested_transport(17); },
      /*sign=*/false);  // the 401 round: the client keeps the nonce
  return c.request(stun::Method::kAllocate, [&](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
    if (extra) extra(b);
  });
}

/// Sends `payload` to `peer` in a Send indication and expects it at `peer_socket` from `relay`.
void expect_relayed_to_peer(TurnClient& c, UdpSocket& peer_socket, const stun::Endpoint& relay,
                            const std::vector<uint8_t>& payload) {
  c.send_raw(c.build(
      stun::Method::kSend, stun::Class::kIndication,
      [&](stun::MessageBuilder& b) {
        b.add_xor_address(stun::attr::kXorPeerAddress, peer_socket.local());
        b.add_bytes(stun::attr::kData, payload);
      },
      false));
  stun::Endpoint from;
  const auto got = peer_socket.receive(testing::kWaitMs, &from);
  ASSERT_TRUE(got) << "nothing reached the peer " << peer_socket.local().to_string();
  EXPECT_EQ(*got, payload);
  EXPECT_EQ(from, relay) << "sent from the relay of the peer's family";
}

/// The peer answers at `relay`; the client gets a Data indication naming the peer.
void expect_relayed_to_client(TurnClient& c, UdpSocket& peer_socket, const stun::Endpoint& relay,
                              const std::vector<uint8_t>& payload) {
  peer_socket.send_to(relay, payload);
  const auto got = c.socket().receive();
  ASSERT_TRUE(got) << "nothing came back from " << relay.to_string();
  const auto m = stun::MessageView::parse(*got);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), stun::Method::kData);
  EXPECT_EQ(m->xor_address(stun::attr::kXorPeerAddress),
            std::optional<stun::Endpoint>(peer_socket.local()));
  const auto data = m->data();
  ASSERT_TRUE(data);
  EXPECT_EQ(std::vector<uint8_t>(data->begin(), data->end()), payload);
}

TEST(DualStackServer, IPv4ClientGetsADualAllocationOnLoopback) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  DualServer server({loopback(0)});
  auto c = server.client(0, loopback(0));
  const auto r = allocate(c, family(stun::attr::kAdditionalAddressFamily, 0x02));
  ASSERT_TRUE(r && r->msg);
  ASSERT_EQ(r->error_code(), 0);
  EXPECT_FALSE(r->msg->find(stun::attr::kAddressErrorCode));
  const auto relays = relayed(*r);
  ASSERT_EQ(relays.size(), 2u);
  EXPECT_EQ(relays[0].ip_string(), "127.0.0.1");
  EXPECT_EQ(relays[1].ip_string(), "::1");

  UdpSocket peer4(loopback(0));
  UdpSocket peer6(kLoop6Any);
  ASSERT_TRUE(peer4.ok() && peer6.ok());
  const auto perm = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer4.local());
    b.add_xor_address(stun::attr::kXorPeerAddress, peer6.local());
  });
  ASSERT_TRUE(perm);
  ASSERT_EQ(perm->error_code(), 0);
  expect_relayed_to_peer(c, peer4, relays[0], {1, 2, 3});
  expect_relayed_to_peer(c, peer6, relays[1], {4, 5, 6, 7});
  expect_relayed_to_client(c, peer4, relays[0], {8});
  expect_relayed_to_client(c, peer6, relays[1], {9, 10});

  // Deleting the IPv6 half leaves IPv4 relaying; the IPv6 family then gets 443.
  const auto del = c.request(stun::Method::kRefresh, [](stun::MessageBuilder& b) {
    family(stun::attr::kRequestedAddressFamily, 0x02)(b);
    b.add_u32(stun::attr::kLifetime, 0);
  });
  ASSERT_TRUE(del);
  EXPECT_EQ(del->error_code(), 0);
  const auto again = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer6.local());
  });
  ASSERT_TRUE(again);
  EXPECT_EQ(again->error_code(), 443);
  expect_relayed_to_peer(c, peer4, relays[0], {11});
}

TEST(DualStackServer, IPv4ClientRequestsAnIPv6Relay) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  DualServer server({loopback(0)});
  auto c = server.client(0, loopback(0));
  const auto r = allocate(c, family(stun::attr::kRequestedAddressFamily, 0x02));
  ASSERT_TRUE(r && r->msg);
  ASSERT_EQ(r->error_code(), 0);
  const auto relays = relayed(*r);
  ASSERT_EQ(relays.size(), 1u);
  EXPECT_EQ(relays[0].ip_string(), "::1");
  UdpSocket peer4(loopback(0));
  UdpSocket peer6(kLoop6Any);
  const auto mismatch = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer4.local());
  });
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->error_code(), 443);
  const auto perm = c.request(stun::Method::kChannelBind, [&](stun::MessageBuilder& b) {
    b.add_channel_number(0x4000);
    b.add_xor_address(stun::attr::kXorPeerAddress, peer6.local());
  });
  ASSERT_TRUE(perm);
  ASSERT_EQ(perm->error_code(), 0);
  expect_relayed_to_peer(c, peer6, relays[0], {1, 2});
}

TEST(DualStackServer, IPv6ClientOnIPv6Listener) {
  ASSERT_TRUE(ipv6_available()) << kNoIpv6;
  DualServer server({kLoop6Any});
  auto c = server.client(0, kLoop6Any);
  const auto r = allocate(c, family(stun::attr::kRequestedAddressFamily, 0x02));
  ASSERT_TRUE(r && r->msg);
  ASSERT_EQ(r->error_code(), 0);
  const auto relays = relayed(*r);
  ASSERT_EQ(relays.size(), 1u);
  EXPECT_EQ(relays[0].ip_string(), "::1");
  EXPECT_EQ(r->msg->xor_address(stun::attr::kXorMappedAddress),
            std::optional<stun::Endpoint>(c.socket().local()));
  UdpSocket peer6(kLoop6Any);
  const auto perm = c.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer6.local());
  });
  ASSERT_TRUE(perm);
  ASSERT_EQ(perm->error_code(), 0);
  expect_relayed_to_peer(c, peer6, relays[0], {42});
  expect_relayed_to_client(c, peer6, relays[0], {43, 44});
}

TEST(DualStackServer, WildcardIPv4OnlyServerRefusesIPv6With440) {
  DualServer server({*stun::Endpoint::parse("0.0.0.0:0")});
  auto c = server.client(0, loopback(0));
  const auto r = allocate(c, family(stun::attr::kRequestedAddressFamily, 0x02));
  ASSERT_TRUE(r && r->msg);
  EXPECT_EQ(r->error_code(), 440);
  // A dual request gets its IPv4 half and ADDRESS-ERROR-CODE 440 for IPv6.
  const auto d = allocate(c, family(stun::attr::kAdditionalAddressFamily, 0x02));
  ASSERT_TRUE(d && d->msg);
  ASSERT_EQ(d->error_code(), 0);
  EXPECT_EQ(relayed(*d).size(), 1u);
  const auto aec = d->msg->find(stun::attr::kAddressErrorCode);
  ASSERT_TRUE(aec);
  const auto v = d->msg->value(*aec);
  ASSERT_GE(v.size(), 4u);
  EXPECT_EQ(v[0], 0x02);
  EXPECT_EQ(v[2] * 100 + v[3], 440);
}

}  // namespace
}  // namespace callrelay::net
