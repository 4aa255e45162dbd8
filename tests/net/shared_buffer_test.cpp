// A shared relay socket (relay.multiplex_peers) queues the datagrams of every peer of its
// allocations between two wake-ups of its worker: its buffers are raised as the listeners'
// are, where a relay socket of one allocation keeps the system default.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "relay/net/server.hpp"
#include "relay/net/socket_ops.hpp"
#include "tests/net/net_test_support.hpp"
#include "tests/net/rest_server.hpp"

namespace callrelay::net {
namespace {

using testing::loopback;

constexpr char kSecret[] = "shared-buffer-secret";
constexpr char kRealm[] = "shared-buffer.test";

ServerSettings settings(bool multiplex) {
  ServerSettings s;
  s.listen_udp = {loopback(0)};
  s.relay.port_min = 60000;
  s.relay.port_max = 60999;
  s.relay.multiplex_peers = multiplex;
  s.relay.allocations_per_port = 8;
  s.workers = 1;
  return s;
}

/// The descriptor of this process bound to UDP `address` (the server runs in the test's
/// process), or -1.
int socket_bound_to(const stun::Endpoint& address) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM) continue;
    if (local_endpoint(fd) == std::optional<stun::Endpoint>(address)) return fd;
  }
  return -1;
}

int option(int fd, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  getsockopt(fd, SOL_SOCKET, name, &value, &len);
  return value;
}

long sysctl(const char* path) {
  std::ifstream in(path);
  long v = 0;
  in >> v;
  return v;
}

TEST(SharedRelayBuffers, SharedSocketGetsListenerSizedBuffers) {
  // The kernel caps the request at rmem_max/wmem_max and reports twice what it keeps (a host
  // whose rmem_max is the default checks only that much).
  const long want_rcv =
      2 * std::min<long>(kBusyUdpBufferBytes, sysctl("/proc/sys/net/core/rmem_max"));
  const long want_snd =
      2 * std::min<long>(kBusyUdpBufferBytes, sysctl("/proc/sys/net/core/wmem_max"));
  testing::RestServer s(settings(true), kRealm, kSecret);
  auto a = s.client();
  auto b = s.client();
  const auto ra = a->allocate();
  const auto rb = b->allocate();
  ASSERT_TRUE(ra && rb);
  ASSERT_EQ(*ra, *rb) << "both allocations should share one relay port";
  const int fd = socket_bound_to(*ra);
  ASSERT_GE(fd, 0) << "no socket bound to " << ra->to_string();
  EXPECT_GE(option(fd, SO_RCVBUF), want_rcv);
  EXPECT_GE(option(fd, SO_SNDBUF), want_snd);
}

TEST(SharedRelayBuffers, DedicatedRelaySocketKeepsTheDefault) {
  testing::RestServer s(settings(false), kRealm, kSecret);
  auto a = s.client();
  const auto ra = a->allocate();
  ASSERT_TRUE(ra);
  const int fd = socket_bound_to(*ra);
  ASSERT_GE(fd, 0) << "no socket bound to " << ra->to_string();
  // One allocation's socket costs no more kernel memory than any other socket may.
  EXPECT_LE(option(fd, SO_RCVBUF), 2 * sysctl("/proc/sys/net/core/rmem_default"));
}

}  // namespace
}  // namespace callrelay::net
