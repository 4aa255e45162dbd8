// The abuse limits of TCP and TLS client connections: the shared admission table alone
// (per address, IPv6 by /64, total, TLS handshake rate, descriptor reserve), and on a real
// server on 127.0.0.1:0 (per address across workers, bytes without an allocation).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "base/limits.hpp"
#include "relay/net/stream_guard.hpp"
#include "tests/streams/stream_fixture.hpp"

namespace callrelay::net {
namespace {

using testing::Bytes;
using testing::StreamClient;
using Verdict = StreamGuard::Verdict;

stun::Endpoint at(const char* text) { return *stun::Endpoint::parse(text); }

core::AbuseConfig guard_config() {
  core::AbuseConfig c;
  c.tcp_max_per_address = 2;
  c.tcp_max_total = 4;
  c.tls_handshakes_per_s = 5;
  c.fd_reserve = 100;
  return c;
}

TEST(StreamGuard, ConnectionsPerAddressAndInTotal) {
  base::LimitCounters counters;
  StreamGuard g(guard_config(), 100000, &counters);
  EXPECT_EQ(g.admit(at("192.0.2.1:1000"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("192.0.2.1:1001"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("192.0.2.1:1002"), 10, false, 0), Verdict::kPerAddress);
  EXPECT_EQ(g.admit(at("192.0.2.2:1000"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("192.0.2.3:1000"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("192.0.2.4:1000"), 10, false, 0), Verdict::kTotal);
  EXPECT_EQ(counters.hits(base::Limit::kTcpPerAddress), 1u);
  EXPECT_EQ(counters.hits(base::Limit::kTcpTotal), 1u);
  // A closed connection gives its place back, to its address and to the total.
  g.release(at("192.0.2.1:1000"));
  EXPECT_EQ(g.admit(at("192.0.2.1:1003"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.open(), 4u);
  EXPECT_EQ(g.addresses(), 3u);
  for (const char* a : {"192.0.2.1:1", "192.0.2.1:2", "192.0.2.2:1", "192.0.2.3:1"}) g.release(at(a));
  EXPECT_EQ(g.open(), 0u);
  EXPECT_EQ(g.addresses(), 0u);  // nothing kept for addresses without connections
}

TEST(StreamGuard, Ipv6AddressesOfOneSlash64Share) {
  StreamGuard g(guard_config(), 100000, nullptr);
  EXPECT_EQ(g.admit(at("[2001:db8:0:1::1]:1"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("[2001:db8:0:1::2]:1"), 10, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("[2001:db8:0:1:ffff::3]:1"), 10, false, 0), Verdict::kPerAddress);
  EXPECT_EQ(g.admit(at("[2001:db8:0:2::1]:1"), 10, false, 0), Verdict::kAccept);
}

TEST(StreamGuard, TlsHandshakesPerSecond) {
  base::LimitCounters counters;
  core::AbuseConfig c = guard_config();
  c.tcp_max_per_address = 0;
  c.tcp_max_total = 0;
  StreamGuard g(c, 100000, &counters);
  int accepted = 0;
  for (int i = 0; i < 20; ++i) {
    if (g.admit(at("192.0.2.1:1"), 10, true, 1000) == Verdict::kAccept) ++accepted;
  }
  EXPECT_EQ(accepted, 10);  // the burst: twice the rate
  EXPECT_EQ(counters.hits(base::Limit::kTlsHandshakeRate), 10u);
  EXPECT_EQ(g.admit(at("192.0.2.1:1"), 10, false, 1000), Verdict::kAccept) << "plain TCP is not rated";
  EXPECT_EQ(g.admit(at("192.0.2.1:1"), 10, true, 1199), Verdict::kTlsRate);
  EXPECT_EQ(g.admit(at("192.0.2.1:1"), 10, true, 1200), Verdict::kAccept);  // 5 per second
}

TEST(StreamGuard, DescriptorsAreKeptInReserve) {
  base::LimitCounters counters;
  StreamGuard g(guard_config(), 1000, &counters);
  EXPECT_EQ(g.reserve(), 100u);
  EXPECT_EQ(g.admit(at("192.0.2.1:1"), 899, false, 0), Verdict::kAccept);
  EXPECT_EQ(g.admit(at("192.0.2.2:1"), 900, false, 0), Verdict::kFdReserve);
  EXPECT_EQ(counters.hits(base::Limit::kFdReserve), 1u);
  // A low limit keeps at most half of it.
  StreamGuard small(guard_config(), 64, nullptr);
  EXPECT_EQ(small.reserve(), 32u);
}

// --- on a real server ------------------------------------------------------------------------

/// A server with TCP listeners and the given abuse limits; counts limits that bite.
class LimitedServer {
 public:
  LimitedServer(unsigned workers, const core::AbuseConfig& abuse)
      : auth_(auth_config()), nonces_(key(), 600), policy_(core::PeerPolicyConfig{}) {
    ServerSettings s;
    s.listen_udp = {testing::loopback(0)};
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.workers = workers;
    s.streams.listen_tcp = {testing::loopback(0)};
    s.core.abuse = abuse;
    server_ = std::make_unique<Server>(s, SharedAuth{auth_, nonces_, policy_, &counters});
    server_->start();
  }
  ~LimitedServer() {
    server_->stop();
    server_->join();
  }
  stun::Endpoint tcp() const { return server_->stream_listening().front().endpoint; }
  void login(StreamClient& c) const {
    const std::string user = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count() + 3600) + ":alice";
    c.set_credentials(user, core::Authenticator::rest_password(testing::kStreamSecret, user),
                      testing::kStreamRealm);
  }
  base::LimitCounters counters;

 private:
  static core::AuthConfig auth_config() {
    core::AuthConfig a;
    a.realm = testing::kStreamRealm;
    a.rest_secrets = {testing::kStreamSecret};
    return a;
  }
  static std::array<uint8_t, 32> key() {
    std::array<uint8_t, 32> k{};
    k.fill(3);
    return k;
  }
  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  std::unique_ptr<Server> server_;
};

Bytes binding(StreamClient& c) {
  return c.build(stun::Method::kBinding, stun::Class::kRequest, {}, /*sign=*/false);
}

/// Whether a Binding over `c` is answered (the connection is served).
bool served(StreamClient& c) {
  return c.ok() && c.send_all(binding(c)) && c.read_frame().has_value();
}

/// A TCP connection from `source` (another loopback address) that sends a Binding request and
/// waits for any answer: whether the server serves it.
bool served_from(const char* source, const stun::Endpoint& server, StreamClient& builder) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(server.port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0 &&
            ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0;
  const Bytes req = binding(builder);
  ok = ok && ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  pollfd p{fd, POLLIN, 0};
  uint8_t buf[512];
  ok = ok && ::poll(&p, 1, testing::kWaitMs) == 1 && ::recv(fd, buf, sizeof buf, 0) > 0;
  ::close(fd);
  return ok;
}

TEST(StreamLimits, ConnectionsPerAddressAcrossWorkers) {
  core::AbuseConfig abuse;
  abuse.tcp_max_per_address = 3;
  LimitedServer f(2, abuse);
  std::vector<std::unique_ptr<StreamClient>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<StreamClient>(f.tcp()));
    ASSERT_TRUE(served(*held.back())) << "connection " << i;
  }
  StreamClient fourth(f.tcp());  // accepted by the kernel, closed by the server
  EXPECT_TRUE(fourth.closed_by_server());
  EXPECT_GE(f.counters.hits(base::Limit::kTcpPerAddress), 1u);
  EXPECT_TRUE(served_from("127.0.0.2", f.tcp(), *held.front())) << "another address is served";
  // Closing one gives its place back (the server learns of the close asynchronously: retry).
  held.pop_back();
  bool again = false;
  for (int attempt = 0; attempt < 50 && !again; ++attempt) {
    StreamClient c(f.tcp());
    again = served(c);
    if (!again) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(again);
}

TEST(StreamLimits, BytesWithoutAnAllocationCloseTheConnection) {
  core::AbuseConfig abuse;
  abuse.tcp_unauth_bytes = 1024;
  LimitedServer f(1, abuse);
  StreamClient idle(f.tcp());
  ASSERT_TRUE(idle.ok()) << idle.error();
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {  // 20-byte Bindings: 1024 bytes after 52
    if (!idle.send_all(binding(idle)) || !idle.read_frame(500)) closed = true;
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(f.counters.hits(base::Limit::kTcpUnauthBytes), 1u);
  // A client with an allocation may send as much as it likes.
  StreamClient active(f.tcp());
  f.login(active);
  ASSERT_TRUE(active.allocate().has_value());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(served(active)) << "request " << i;
  EXPECT_EQ(f.counters.hits(base::Limit::kTcpUnauthBytes), 1u);
}

}  // namespace
}  // namespace callrelay::net
