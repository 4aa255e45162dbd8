// TURN over TLS against a real server: TLS 1.2 and 1.3 serve, older versions and plain STUN
// on the TLS port are refused, the certificate is checked at startup.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "base/log.hpp"
#include "relay/stun/channel_data.hpp"
#include "tests/streams/stream_fixture.hpp"

namespace callrelay::net {
namespace {

using testing::Bytes;
using testing::StreamClient;
using testing::StreamServerFixture;
using testing::TestCertificate;
using testing::UdpSocket;

StreamClient::TlsOptions versions(int min, int max) {
  StreamClient::TlsOptions o;
  o.min_version = min;
  o.max_version = max;
  return o;
}

/// Logs `c` in, allocates and binds channel 0x4002 to `peer`: the relayed address, or nothing
/// (with the failure reported) when a step failed.
std::optional<stun::Endpoint> open_channel(StreamServerFixture& f, StreamClient& c,
                                           const UdpSocket& peer) {
  f.login(c);
  const auto relayed = c.allocate();
  EXPECT_TRUE(relayed.has_value()) << "Allocate failed";
  if (!relayed) return std::nullopt;
  const auto bound = c.request(stun::Method::kChannelBind, [&](stun::MessageBuilder& m) {
    m.add_channel_number(0x4002);
    m.add_xor_address(stun::attr::kXorPeerAddress, peer.local());
  });
  EXPECT_TRUE(bound && bound->error_code() == 0) << "ChannelBind failed";
  if (!bound || bound->error_code() != 0) return std::nullopt;
  return relayed;
}

void relay_round_trip(StreamServerFixture& f, StreamClient& c) {
  UdpSocket peer;
  const auto relayed = open_channel(f, c, peer);
  ASSERT_TRUE(relayed.has_value());
  Bytes frame = {0x40, 0x02, 0x00, 0x02, 0xAB, 0xCD, 0x00, 0x00};
  ASSERT_TRUE(c.send_all(frame));
  const auto at_peer = peer.receive();
  ASSERT_TRUE(at_peer.has_value());
  EXPECT_EQ(*at_peer, (Bytes{0xAB, 0xCD}));
  peer.send_to(*relayed, Bytes{1, 2, 3});
  const auto back = c.read_frame();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, (Bytes{0x40, 0x02, 0x00, 0x03, 1, 2, 3, 0}));
}

/// The server's debug lines (each connection, handshake and close with its reason) for one
/// test: ctest prints them only when the test fails.
class DebugLog {
 public:
  DebugLog() : saved_(log::level()) { log::set_level(log::Level::kDebug); }
  ~DebugLog() { log::set_level(saved_); }
  DebugLog(const DebugLog&) = delete;
  DebugLog& operator=(const DebugLog&) = delete;

 private:
  log::Level saved_;
};

TEST(StreamTls, Tls13AndTls12RelayLikeUdp) {
  const DebugLog debug;
  TestCertificate cert;
  StreamServerFixture f(2, {}, &cert);
  {
    StreamClient c(f.tls(), versions(TLS1_3_VERSION, TLS1_3_VERSION));
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c.tls_version(), "TLSv1.3");
    relay_round_trip(f, c);
  }
  StreamClient c(f.tls(), versions(TLS1_2_VERSION, TLS1_2_VERSION));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.tls_version(), "TLSv1.2");
  relay_round_trip(f, c);
  c.close();
  EXPECT_TRUE(f.observer().wait_for(core::EndReason::kTransportClosed));
}

TEST(StreamTls, RefusesTls10And11) {
  TestCertificate cert;
  StreamServerFixture f(1, {}, &cert);
  StreamClient v11(f.tls(), versions(TLS1_1_VERSION, TLS1_1_VERSION));
  EXPECT_FALSE(v11.ok());
  StreamClient v10(f.tls(), versions(TLS1_VERSION, TLS1_VERSION));
  EXPECT_FALSE(v10.ok());
  StreamClient good(f.tls(), {});  // the server still serves afterwards
  EXPECT_TRUE(good.ok()) << good.error();
}

TEST(StreamTls, MinimumVersion13RefusesTls12) {
  TestCertificate cert;
  StreamServerFixture f(1, {}, &cert, "1.3");
  StreamClient v12(f.tls(), versions(TLS1_2_VERSION, TLS1_2_VERSION));
  EXPECT_FALSE(v12.ok());
  StreamClient v13(f.tls(), versions(TLS1_3_VERSION, TLS1_3_VERSION));
  EXPECT_TRUE(v13.ok()) << v13.error();
}

TEST(StreamTls, PlainStunOnTheTlsPortGetsNoAnswer) {
  TestCertificate cert;
  StreamServerFixture f(1, {}, &cert);
  StreamClient plain(f.tls());
  ASSERT_TRUE(plain.ok()) << plain.error();
  const Bytes req = plain.build(stun::Method::kBinding, stun::Class::kRequest, {}, false);
  ASSERT_TRUE(plain.send_all(req));
  const auto answer = plain.read_frame();
  EXPECT_FALSE(answer.has_value() && stun::MessageView::parse(*answer).has_value())
      << "a STUN answer came back on the TLS port";
  EXPECT_TRUE(plain.closed_by_server());
}

TEST(StreamTls, HandshakeMustFinishWithinTheIdleTimeout) {
  TestCertificate cert;
  StreamLimits limits;
  limits.idle_timeout_ms = 200;
  StreamServerFixture f(1, limits, &cert);
  StreamClient silent(f.tls());  // TCP connect, no ClientHello
  ASSERT_TRUE(silent.ok()) << silent.error();
  EXPECT_TRUE(silent.closed_by_server());
}

/// Waits (at most 5 s) until the server has freed the record buffers of more idle TLS
/// connections than `before`.
bool wait_for_trim(StreamServerFixture& f, uint64_t before) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (f.server().tls_buffer_trims() <= before) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// Limits under which a TLS connection idle for 100 ms frees its buffers at the next sweep.
StreamLimits quick_trims() {
  StreamLimits limits;
  limits.tls_buffers_idle_ms = 100;
  limits.idle_timeout_ms = 2000;  // sweeps every 500 ms
  return limits;
}

// A busy connection keeps OpenSSL's record buffers; an idle one gives them back at a sweep
// and gets them again with its next record, each way, in both versions.
TEST(StreamTls, AnIdleConnectionFreesItsRecordBuffersAndRelaysOn) {
  TestCertificate cert;
  StreamServerFixture f(1, quick_trims(), &cert);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    StreamClient c(f.tls(), versions(version, version));
    ASSERT_TRUE(c.ok()) << c.error();
    UdpSocket peer;
    const auto relayed = open_channel(f, c, peer);
    ASSERT_TRUE(relayed.has_value());
    for (uint8_t round = 0; round < 2; ++round) {
      const uint64_t trims = f.server().tls_buffer_trims();
      ASSERT_TRUE(wait_for_trim(f, trims)) << "round " << int{round} << ": never freed";
      // Client to peer first: the server reads a record into a fresh read buffer.
      ASSERT_TRUE(c.send_all(Bytes{0x40, 0x02, 0x00, 0x02, 0xAB, round, 0x00, 0x00}));
      const auto at_peer = peer.receive();
      ASSERT_TRUE(at_peer.has_value());
      EXPECT_EQ(*at_peer, (Bytes{0xAB, round}));
      ASSERT_TRUE(wait_for_trim(f, trims + 1)) << "round " << int{round} << ": not freed again";
      // Peer to client: the server writes a record through a fresh write buffer.
      peer.send_to(*relayed, Bytes{1, 2, round});
      const auto back = c.read_frame();
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(*back, (Bytes{0x40, 0x02, 0x00, 0x03, 1, 2, round, 0}));
    }
    // A request and its answer after the last trim.
    const auto refreshed = c.request(stun::Method::kRefresh, [](stun::MessageBuilder& m) {
      m.add_u32(stun::attr::kLifetime, 600);
    });
    ASSERT_TRUE(refreshed.has_value());
    EXPECT_EQ(refreshed->error_code(), 0);
  }
}

// Records that arrive together, more than one socket read holds, reach the peer whole and in
// order, on a busy connection and again after its buffers were freed at an idle sweep.
TEST(StreamTls, RecordsArrivingTogetherAllReachThePeerAroundAnIdleTrim) {
  TestCertificate cert;
  StreamServerFixture f(1, quick_trims(), &cert);
  StreamClient c(f.tls(), StreamClient::TlsOptions{});
  ASSERT_TRUE(c.ok()) << c.error();
  UdpSocket peer;
  ASSERT_TRUE(open_channel(f, c, peer).has_value());
  constexpr uint16_t kPayload = 1200;
  constexpr int kFrames = 40;  // about 48 KiB of records: several socket reads' worth
  for (uint8_t round = 0; round < 3; ++round) {
    c.cork(true);
    for (int i = 0; i < kFrames; ++i) {
      Bytes frame(4 + kPayload, static_cast<uint8_t>(i));
      frame[0] = 0x40;
      frame[1] = 0x02;
      frame[2] = kPayload >> 8;
      frame[3] = kPayload & 0xFF;
      frame[4] = round;
      ASSERT_TRUE(c.send_all(frame));  // a record each
    }
    c.cork(false);
    for (int i = 0; i < kFrames; ++i) {
      const auto at_peer = peer.receive();
      ASSERT_TRUE(at_peer.has_value()) << "round " << int{round} << ", frame " << i;
      ASSERT_EQ(at_peer->size(), kPayload);
      EXPECT_EQ((*at_peer)[0], round);
      EXPECT_EQ((*at_peer)[1], static_cast<uint8_t>(i)) << "round " << int{round};
    }
    if (round == 0) {
      const uint64_t trims = f.server().tls_buffer_trims();
      ASSERT_TRUE(wait_for_trim(f, trims)) << "never freed";
    }
  }
}

TEST(StreamTls, UnreadableCertificateFailsAtStartup) {
  TestCertificate cert;
  core::Authenticator auth(core::AuthConfig{});
  core::NonceCodec nonces({}, 600);
  core::PeerPolicy policy;
  ServerSettings s;
  s.listen_udp = {testing::loopback(0)};
  s.workers = 1;
  s.streams.listen_tls = {testing::loopback(0)};
  s.streams.tls.cert_file = cert.dir + "/missing.pem";
  s.streams.tls.key_file = cert.key_file;
  EXPECT_THROW(Server(s, SharedAuth{auth, nonces, policy}), BindError);
  s.streams.tls.cert_file = cert.key_file;  // a key is no certificate
  EXPECT_THROW(Server(s, SharedAuth{auth, nonces, policy}), BindError);
}

}  // namespace
}  // namespace callrelay::net
