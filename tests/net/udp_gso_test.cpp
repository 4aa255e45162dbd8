// SendBatch with UDP segmentation offload on real loopback sockets (receivers without UDP_GRO):
// runs of same-size datagrams to one destination leave as one message and arrive as the same
// datagrams, byte-identical and in order per destination; mixed sizes, mixed destinations, a
// shorter last segment, empty and oversized datagrams, IPv6; `off` sends one message per
// datagram; a refused GSO message is sent again one datagram at a time.
#include <gtest/gtest.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "relay/net/socket_ops.hpp"
#include "relay/net/udp_batch.hpp"

namespace callrelay::net {
namespace {

using Bytes = std::vector<uint8_t>;

const stun::Endpoint kLoopback4 = stun::Endpoint::v4({127, 0, 0, 1}, 0);
const stun::Endpoint kLoopback6 = stun::Endpoint::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0);

/// A bound loopback UDP socket with room for a few hundred queued datagrams.
struct Socket {
  int fd = -1;
  stun::Endpoint at;
  explicit Socket(const stun::Endpoint& bind = kLoopback4) {
    const OpenResult r = open_udp(bind, UdpOptions{.pktinfo = true});
    fd = r.fd;
    if (fd < 0) return;
    at = *local_endpoint(fd);
    const int size = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

Bytes bytes(size_t len, size_t seed) {
  Bytes d(len);
  for (size_t k = 0; k < len; ++k) d[k] = static_cast<uint8_t>(seed * 31 + k * 7);
  return d;
}

/// `want` datagrams from `fd` (each read whole: a GSO message arriving as one would be longer
/// than any datagram sent), waiting up to a few seconds in all; then checks none is left over.
std::vector<Bytes> receive(int fd, size_t want) {
  std::vector<Bytes> got;
  for (int spins = 0; spins < 3000 && got.size() < want; ++spins) {
    uint8_t buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0) {
      got.emplace_back(buf, buf + n);
      spins = 0;
      continue;
    }
    ::usleep(1000);
  }
  uint8_t extra[16];
  EXPECT_LT(::recv(fd, extra, sizeof extra, MSG_DONTWAIT), 0) << "more datagrams than sent";
  return got;
}

bool gso_here(int family) { return udp_gso_supported(family); }

TEST(SendBatchGso, RunsToOneDestinationArriveAsTheSameDatagramsInOrder) {
  Socket from, a, b;
  ASSERT_GE(from.fd, 0);
  SendBatch batch;
  batch.set_gso(true);
  // Destination a: ten of 1,204 bytes and a shorter last one; b: sizes that change, interleaved.
  std::deque<Bytes> kept;
  std::vector<Bytes> to_a, to_b;
  for (size_t i = 0; i < 11; ++i) {
    kept.push_back(bytes(i == 10 ? 500 : 1204, i));
    to_a.push_back(kept.back());
    batch.add(from.fd, a.at, &kLoopback4, kept.back());
    if (i % 2 == 0) {
      kept.push_back(bytes(i < 6 ? 160 : 90 + i, 100 + i));
      to_b.push_back(kept.back());
      batch.add(from.fd, b.at, &kLoopback4, kept.back());
    }
  }
  batch.flush();
  EXPECT_EQ(receive(a.fd, to_a.size()), to_a);
  EXPECT_EQ(receive(b.fd, to_b.size()), to_b);
  EXPECT_EQ(batch.stats().calls, 1u);
  if (gso_here(AF_INET)) {
    // a: one message of 11; b: 160 x3 and 96 (shorter: the last segment) are one, then 98
    // (longer than 96 is not a segment of it) and 100 (longer than 98) alone.
    EXPECT_EQ(batch.stats().gso_messages, 2u);
    EXPECT_EQ(batch.stats().messages, 4u);
  } else {
    EXPECT_EQ(batch.stats().messages, to_a.size() + to_b.size());
  }
}

TEST(SendBatchGso, EmptyAndOversizedDatagramsAreNotSegments) {
  Socket from, to;
  ASSERT_GE(from.fd, 0);
  SendBatch batch;
  batch.set_gso(true);
  const std::vector<Bytes> sent = {bytes(200, 1), bytes(200, 2), Bytes{},
                                   bytes(200, 3), bytes(200, 4), bytes(SendBatch::kMaxGsoSegment + 1, 5),
                                   bytes(SendBatch::kMaxGsoSegment + 1, 6), bytes(300, 7)};
  for (const Bytes& d : sent) batch.add(from.fd, to.at, nullptr, d);
  batch.flush();
  EXPECT_EQ(receive(to.fd, sent.size()), sent);
  if (gso_here(AF_INET)) {
    EXPECT_EQ(batch.stats().gso_messages, 2u);  // 200 x2, before and after the empty one
    EXPECT_EQ(batch.stats().messages, 6u);
  }
}

TEST(SendBatchGso, MoreDatagramsToOneDestinationThanOneBatchOrOneMessageHolds) {
  Socket from, to;
  ASSERT_GE(from.fd, 0);
  SendBatch batch;
  batch.set_gso(true);
  constexpr size_t kCount = SendBatch::kMaxSegments * 2 + 7;
  std::deque<Bytes> kept;
  std::vector<Bytes> sent;
  for (size_t i = 0; i < kCount; ++i) {
    if (batch.full()) batch.flush();
    kept.push_back(bytes(164, i));
    sent.push_back(kept.back());
    batch.add(from.fd, to.at, nullptr, kept.back());
  }
  batch.flush();
  EXPECT_EQ(receive(to.fd, kCount), sent);
  if (gso_here(AF_INET)) {
    const size_t flushes = (kCount + SendBatch::kCapacity - 1) / SendBatch::kCapacity;
    EXPECT_EQ(batch.stats().messages, flushes);
    EXPECT_EQ(batch.stats().gso_messages, flushes);
  }
}

TEST(SendBatchGso, Ipv6RunsArriveWhole) {
  Socket from(kLoopback6), to(kLoopback6);
  if (from.fd < 0 || to.fd < 0) GTEST_SKIP() << "no IPv6 loopback here";
  SendBatch batch;
  batch.set_gso(true);
  std::deque<Bytes> kept;
  std::vector<Bytes> sent;
  for (size_t i = 0; i < 20; ++i) {
    kept.push_back(bytes(i == 19 ? 7 : 1200, i));
    sent.push_back(kept.back());
    batch.add(from.fd, to.at, &kLoopback6, kept.back());
  }
  batch.flush();
  EXPECT_EQ(receive(to.fd, sent.size()), sent);
  if (gso_here(AF_INET6)) {
    EXPECT_EQ(batch.stats().messages, 1u);
    EXPECT_EQ(batch.stats().gso_messages, 1u);
  }
}

TEST(SendBatchGso, OffSendsOneMessagePerDatagram) {
  Socket from, to;
  ASSERT_GE(from.fd, 0);
  SendBatch batch;
  batch.set_gso(false);
  std::deque<Bytes> kept;
  std::vector<Bytes> sent;
  for (size_t i = 0; i < 12; ++i) {
    kept.push_back(bytes(1204, i));
    sent.push_back(kept.back());
    batch.add(from.fd, to.at, nullptr, kept.back());
  }
  batch.flush();
  EXPECT_EQ(receive(to.fd, sent.size()), sent);
  EXPECT_EQ(batch.stats().calls, 1u);
  EXPECT_EQ(batch.stats().messages, sent.size());
  EXPECT_EQ(batch.stats().gso_messages, 0u);
}

TEST(SendBatchGso, ConfiguredOffMakesBatchesWithoutIt) {
  set_udp_gso(false);
  const SendBatch off;
  set_udp_gso(true);
  const SendBatch on;
  EXPECT_FALSE(off.gso());
  EXPECT_EQ(on.gso(), gso_here(AF_INET) || gso_here(AF_INET6));
}

// Refuses every message that carries UDP_SEGMENT, as a route whose device cannot checksum
// segments does (EIO), and records what it was given.
struct Refusing {
  static inline std::vector<size_t> batch_sizes;
  static inline size_t refused = 0;
  static int send(int fd, mmsghdr* msgs, unsigned n, int flags) {
    batch_sizes.push_back(n);
    for (unsigned i = 0; i < n; ++i) {
      msghdr& h = msgs[i].msg_hdr;
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_SEGMENT) {
          if (i > 0) return ::sendmmsg(fd, msgs, i, flags);  // sendmmsg: the ones before it go
          ++refused;
          errno = EIO;
          return -1;
        }
      }
    }
    return ::sendmmsg(fd, msgs, n, flags);
  }
};

TEST(SendBatchGso, RefusedMessageIsSentOneByOneAndThatSocketStopsUsingGso) {
  if (!gso_here(AF_INET)) GTEST_SKIP() << "no UDP_SEGMENT in this kernel";
  Socket from, other, to;
  ASSERT_GE(from.fd, 0);
  SendBatch batch;
  batch.set_gso(true);
  batch.set_send_function(&Refusing::send);
  Refusing::batch_sizes.clear();
  Refusing::refused = 0;
  std::deque<Bytes> kept;
  std::vector<Bytes> sent;
  const Bytes single = bytes(50, 99);  // leaves in the first call; the run after it is refused
  batch.add(from.fd, to.at, nullptr, single);
  sent.push_back(single);
  for (size_t i = 0; i < 6; ++i) {
    kept.push_back(bytes(i == 5 ? 100 : 300, i));
    sent.push_back(kept.back());
    batch.add(from.fd, to.at, nullptr, kept.back());
  }
  batch.flush();
  // The run was refused once and its datagrams sent again, one message each, in order.
  EXPECT_EQ(receive(to.fd, sent.size()), sent);
  EXPECT_EQ(Refusing::refused, 1u);
  EXPECT_EQ(batch.stats().fallbacks, 1u);
  EXPECT_EQ(batch.stats().gso_messages, 0u);
  EXPECT_EQ(batch.stats().messages, sent.size());

  // That socket no longer tries; another one still does.
  for (size_t i = 0; i < 4; ++i) {
    batch.add(from.fd, to.at, nullptr, kept[i]);
    batch.add(other.fd, to.at, nullptr, kept[i]);
  }
  Refusing::refused = 0;
  batch.flush();
  EXPECT_EQ(Refusing::refused, 1u);  // other's run, refused in turn
  EXPECT_EQ(batch.stats().fallbacks, 2u);
  EXPECT_EQ(receive(to.fd, 8).size(), 8u);
}

}  // namespace
}  // namespace callrelay::net
