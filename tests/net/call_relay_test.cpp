// app::RelayForCalls: call-scoped credentials (format, reuse, refusals), and against a real
// server on loopback: the allocations they make are counted for the call, and ending the call
// ends them and revokes the credentials; the media the call's allocations relay is measured
// with the payload types the call service hands over.
#include "app/call_relay.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "relay/core/auth.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::app {
namespace {

using net::testing::bytes;
using net::testing::EndWatcher;
using net::testing::loopback;
using net::testing::TurnClient;
using net::testing::UdpSocket;

constexpr char kSecret[] = "calls-secret";
constexpr char kRealm[] = "calls.test";
constexpr char kCallA[] = "c_Yq3x-_abcdefghijklmnop";
constexpr char kCallB[] = "c_0123456789ABCDEFGHIJKL";
constexpr calls::TimeMs kT0 = 1'700'000'000'500;
constexpr uint32_t kTtl = 900;

/// A running two-worker relay whose observer chains go through a CallTraffic, and a
/// RelayForCalls over them.
class RelayForCallsTest : public ::testing::Test {
 protected:
  RelayForCallsTest() : auth_(auth_config()), nonces_(key(), 600), policy_(peers()) {
    net::ServerSettings s;
    s.listen_udp = {loopback(0)};
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.workers = 2;
    server_ = std::make_unique<net::Server>(
        s, net::SharedAuth{auth_, nonces_, policy_},
        [this](unsigned i) { return traffic_.observer_for_worker(i, &watcher_); });
    server_->start();
    relay_ = std::make_unique<RelayForCalls>(auth_, *server_, traffic_, settings());
  }
  ~RelayForCallsTest() override {
    server_->stop();
    server_->join();
  }

  CallCredentialSettings settings(char separator = ':') const {
    CallCredentialSettings c;
    c.uris = {"turn:" + server_->listening().at(0).to_string() + "?transport=udp",
              "turn:relay.example.com:3478?transport=tcp"};
    c.rest_secret = kSecret;
    c.separator = separator;
    c.ttl_s = kTtl;
    return c;
  }
  /// A client using the single RTCIceServer of `ice` (credentials valid now, on the real clock).
  TurnClient client(const nlohmann::json& ice) const {
    EXPECT_EQ(ice.size(), 1u) << ice.dump();
    return TurnClient(server_->listening().at(0), ice.at(0).at("username").get<std::string>(),
                      ice.at(0).at("credential").get<std::string>(), kRealm);
  }

  static core::AuthConfig auth_config() {
    core::AuthConfig a;
    a.realm = kRealm;
    a.rest_secrets = {kSecret, "older-secret"};
    return a;
  }
  static std::array<uint8_t, 32> key() {
    std::array<uint8_t, 32> k{};
    k.fill(5);
    return k;
  }
  static core::PeerPolicyConfig peers() {
    core::PeerPolicyConfig p;
    p.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
    return p;
  }

  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  EndWatcher watcher_;
  telemetry::CallTraffic traffic_;
  std::unique_ptr<net::Server> server_;
  std::unique_ptr<RelayForCalls> relay_;
};

TEST_F(RelayForCallsTest, MintsCallScopedRestCredentials) {
  const nlohmann::json ice = relay_->ice_servers("alice", kCallA, kT0);
  ASSERT_TRUE(ice.is_array());
  ASSERT_EQ(ice.size(), 1u);
  const std::string expected_user = "1700000900:alice:call=" + std::string(kCallA);
  EXPECT_EQ(ice[0].at("username"), expected_user);
  EXPECT_EQ(ice[0].at("credential"), core::Authenticator::rest_password(kSecret, expected_user));
  EXPECT_EQ(ice[0].at("urls"), nlohmann::json(settings().uris));
  EXPECT_EQ(ice[0].size(), 3u);
  // The relay reads it back as user alice in call kCallA, valid until the expiry.
  const auto found = auth_.lookup(expected_user, kT0);
  ASSERT_FALSE(found.failure);
  EXPECT_EQ(found.candidates.at(0).user_id, "alice");
  EXPECT_EQ(found.candidates.at(0).call_id, kCallA);
  EXPECT_EQ(found.candidates.at(0).expires, 1'700'000'900'000);
  EXPECT_EQ(relay_->minted_call_count(), 1u);

  RelayForCalls dotted(auth_, *server_, traffic_, settings('.'));
  EXPECT_EQ(dotted.ice_servers("bob", kCallB, kT0)[0].at("username"),
            "1700000900.bob.call=" + std::string(kCallB));
}

TEST_F(RelayForCallsTest, ReusesCredentialsWhileMoreThanHalfTheirLifetimeIsLeft) {
  const auto name = [&](const char* user, const char* call, calls::TimeMs now) {
    return relay_->ice_servers(user, call, now).at(0).at("username").get<std::string>();
  };
  const std::string first = name("alice", kCallA, kT0);
  EXPECT_EQ(name("alice", kCallA, kT0 + 400'000), first);
  EXPECT_NE(name("bob", kCallA, kT0 + 400'000), first);
  EXPECT_NE(name("alice", kCallB, kT0 + 400'000), first);
  // 900 s lifetime: at 451 s from minting less than half is left.
  const std::string second = name("alice", kCallA, kT0 + 451'000);
  EXPECT_EQ(second, "1700001351:alice:call=" + std::string(kCallA));
}

TEST_F(RelayForCallsTest, NothingToHandOutGivesAnEmptyList) {
  EXPECT_EQ(relay_->ice_servers("alice", "c_short", kT0), nlohmann::json::array());
  EXPECT_EQ(relay_->ice_servers("alice", "", kT0), nlohmann::json::array());
  EXPECT_EQ(relay_->ice_servers("", kCallA, kT0), nlohmann::json::array());
  EXPECT_EQ(relay_->ice_servers(std::string(257, 'a'), kCallA, kT0), nlohmann::json::array());
  CallCredentialSettings no_secret = settings();
  no_secret.rest_secret.clear();
  RelayForCalls without_secret(auth_, *server_, traffic_, no_secret);
  EXPECT_EQ(without_secret.ice_servers("alice", kCallA, kT0), nlohmann::json::array());
  CallCredentialSettings no_uris = settings();
  no_uris.uris.clear();
  RelayForCalls without_uris(auth_, *server_, traffic_, no_uris);
  EXPECT_EQ(without_uris.ice_servers("alice", kCallA, kT0), nlohmann::json::array());
  EXPECT_EQ(relay_->minted_call_count(), 0u);
}

TEST_F(RelayForCallsTest, ExpiredCredentialsAreForgotten) {
  relay_->ice_servers("alice", kCallA, kT0);
  relay_->ice_servers("bob", kCallB, kT0 + 100'000);
  EXPECT_EQ(relay_->minted_call_count(), 2u);
  // Past the first call's expiry (and a minute after the last prune): only the second is left,
  // with the call just minted.
  relay_->ice_servers("carol", "c_CCCCCCCCCCCCCCCCCCCCCC", kT0 + 901'000);
  EXPECT_EQ(relay_->minted_call_count(), 2u);
  relay_->end_call(kCallB);
  EXPECT_EQ(relay_->minted_call_count(), 1u);
}

TEST_F(RelayForCallsTest, CountsTheCallsTrafficThenEndCallEndsAndRevokes) {
  const calls::TimeMs now = net::now_ms();
  const nlohmann::json alice_ice = relay_->ice_servers("alice", kCallA, now);
  const nlohmann::json bob_ice = relay_->ice_servers("bob", kCallA, now);
  const nlohmann::json other_ice = relay_->ice_servers("alice", kCallB, now);
  TurnClient alice = client(alice_ice);
  TurnClient bob = client(bob_ice);
  TurnClient other = client(other_ice);
  const auto relayed = alice.allocate();
  ASSERT_TRUE(relayed) << "Allocate failed";
  ASSERT_TRUE(bob.allocate()) << "Allocate failed";
  ASSERT_TRUE(other.allocate()) << "Allocate failed";

  // alice sends 5 bytes to a peer through her relay; the peer answers with 6.
  UdpSocket peer;
  ASSERT_TRUE(peer.ok());
  const auto perm = alice.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  });
  ASSERT_TRUE(perm);
  ASSERT_EQ(perm->error_code(), 0);
  alice.send_raw(alice.build(stun::Method::kSend, stun::Class::kIndication,
                             [&](stun::MessageBuilder& b) {
                               b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
                               b.add_string(stun::attr::kData, "hello");
                             },
                             false));
  const auto got = peer.receive();
  ASSERT_TRUE(got) << "the peer got nothing";
  EXPECT_EQ(*got, bytes("hello"));
  peer.send_to(*relayed, bytes("world!"));
  ASSERT_TRUE(alice.socket().receive()) << "alice got no Data indication";

  calls::CallTraffic t = relay_->traffic(kCallA, "alice", "bob");
  EXPECT_EQ(t.caller_to_peer, 5u);
  EXPECT_EQ(t.caller_to_client, 6u);
  EXPECT_EQ(t.callee_to_peer, 0u);
  EXPECT_EQ(t.allocations, 2u);
  EXPECT_EQ(relay_->traffic(kCallB, "alice", "bob").allocations, 1u);

  relay_->end_call(kCallA);
  const auto ended = watcher_.wait_for(2);
  ASSERT_EQ(ended.size(), 2u) << "the call's allocations did not end";
  for (const auto& e : ended) {
    EXPECT_EQ(e.reason, core::EndReason::kCallEnded);
    EXPECT_EQ(e.call_id, kCallA);
  }
  // The call's traffic is forgotten; its credentials are refused from now on.
  t = relay_->traffic(kCallA, "alice", "bob");
  EXPECT_EQ(t.allocations, 0u);
  EXPECT_EQ(t.caller_to_peer, 0u);
  EXPECT_EQ(auth_.lookup(alice_ice[0].at("username").get<std::string>(), now).failure,
            core::AuthFailure::kRevoked);
  TurnClient again = client(alice_ice);
  const auto r = again.request(stun::Method::kAllocate, [](stun::MessageBuilder& b) {
    b.add_requested_transport(17);
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error_code(), 401);
  // The other call goes on.
  const auto refreshed = other.request(stun::Method::kRefresh, [](stun::MessageBuilder& b) {
    b.add_u32(stun::attr::kLifetime, 600);
  });
  ASSERT_TRUE(refreshed);
  EXPECT_EQ(refreshed->error_code(), 0);
  EXPECT_EQ(relay_->traffic(kCallB, "alice", "bob").allocations, 1u);
  EXPECT_EQ(relay_->minted_call_count(), 1u);
  EXPECT_EQ(watcher_.seen().size(), 2u);
}

/// An RTP packet (RFC 3550 section 5.1) with a 20-byte payload.
std::vector<uint8_t> rtp(uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc) {
  std::vector<uint8_t> p(12 + 20, 0x11);
  p[0] = 0x80;
  p[1] = pt;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  for (size_t i = 0; i < 4; ++i) {
    p[4 + i] = static_cast<uint8_t>(ts >> (24 - 8 * i));
    p[8 + i] = static_cast<uint8_t>(ssrc >> (24 - 8 * i));
  }
  return p;
}

/// A STUN Binding request or success response, as ICE agents exchange through the relay.
std::vector<uint8_t> binding(stun::Class cls) {
  stun::TransactionId tid{};
  tid.fill(0x42);
  std::vector<uint8_t> buf(64);
  stun::MessageBuilder b(buf, stun::Method::kBinding, cls, tid);
  buf.resize(b.finish());
  return buf;
}

TEST_F(RelayForCallsTest, MeasuresTheCallsMediaWithItsPayloadTypes) {
  // PT 111 declared video: guessed, it would be Opus (audio). Given before the allocation
  // exists, and to both workers.
  relay_->set_payload_types(kCallA, {{111, true, 90000, false}, {112, true, 90000, true}});
  const calls::TimeMs now = net::now_ms();
  TurnClient alice = client(relay_->ice_servers("alice", kCallA, now));
  const auto relayed = alice.allocate();
  ASSERT_TRUE(relayed) << "Allocate failed";
  UdpSocket peer;
  ASSERT_TRUE(peer.ok());
  const auto perm = alice.request(stun::Method::kCreatePermission, [&](stun::MessageBuilder& b) {
    b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  });
  ASSERT_TRUE(perm);
  ASSERT_EQ(perm->error_code(), 0);
  const auto send = [&](const std::vector<uint8_t>& payload) {
    alice.send_raw(alice.build(stun::Method::kSend, stun::Class::kIndication,
                               [&](stun::MessageBuilder& b) {
                                 b.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
                                 b.add_bytes(stun::attr::kData, payload);
                               },
                               false));
    const auto got = peer.receive();
    ASSERT_TRUE(got) << "the peer got nothing";
    EXPECT_EQ(*got, payload);
  };
  // Sequence 1..10 without 5; an rtx packet (PT 112) is never media.
  for (uint16_t seq = 1; seq <= 10; ++seq) {
    if (seq != 5) send(rtp(111, seq, 3000u * seq, 0xCAFE));
  }
  send(rtp(112, 77, 0, 0xBEEF));
  // alice's ICE check goes to the peer, which answers through the relay: the peer leg.
  send(binding(stun::Class::kRequest));
  peer.send_to(*relayed, binding(stun::Class::kSuccess));
  ASSERT_TRUE(alice.socket().receive()) << "alice got no Data indication";

  const calls::RelayMedia m = relay_->media(kCallA, "alice", "bob");
  // RFC 3550 A.1: the first packet is the SSRC's probation; counted from the second on.
  EXPECT_EQ(m.caller.video.expected, 9u);
  EXPECT_EQ(m.caller.video.received, 8u);
  EXPECT_GE(m.caller.video.jitter_ms, 0.0);
  EXPECT_EQ(m.caller.audio.expected, 0u);
  EXPECT_EQ(m.caller.audio.jitter_ms, -1.0);
  EXPECT_GE(m.caller.rtt_peer_ms, 0.0);  // measured (its value is loopback timing)
  EXPECT_EQ(m.caller.rtt_client_ms, -1.0);
  EXPECT_EQ(m.callee.video.expected, 0u);
  EXPECT_EQ(m.callee.rtt_peer_ms, -1.0);

  // Ended with the call: nothing is left to read.
  relay_->end_call(kCallA);
  ASSERT_EQ(watcher_.wait_for(1).size(), 1u);
  EXPECT_EQ(relay_->media(kCallA, "alice", "bob").caller.video.expected, 0u);
}

}  // namespace
}  // namespace callrelay::app
