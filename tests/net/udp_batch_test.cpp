// SendBatch and UdpListener on loopback: answers copied into the batch leave byte-identical and
// in order (also when the batch fills, and next to datagrams queued without a copy), and a
// listener sends at once unless its worker defers answers to the end of a receive round.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdint>
#include <vector>

#include "relay/net/socket_ops.hpp"
#include "relay/net/udp_batch.hpp"
#include "relay/net/udp_listener.hpp"

namespace callrelay::net {
namespace {

const stun::Endpoint kLoopback = stun::Endpoint::v4({127, 0, 0, 1}, 0);

/// A bound loopback UDP socket (non-blocking), closed at the end of the test.
struct Socket {
  int fd = -1;
  stun::Endpoint at;
  Socket() {
    const OpenResult r = open_udp(kLoopback, UdpOptions{.pktinfo = true});
    fd = r.fd;
    if (fd >= 0) at = *local_endpoint(fd);
  }
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
  /// Takes the descriptor (the listener closes it).
  int release() { return std::exchange(fd, -1); }
};

/// Datagram `i` of a test: its length and bytes vary with i.
std::vector<uint8_t> datagram(size_t i) {
  std::vector<uint8_t> d(20 + (i * 37) % 400);
  for (size_t k = 0; k < d.size(); ++k) d[k] = static_cast<uint8_t>(i * 7 + k);
  return d;
}

/// Every datagram waiting on `fd` (waits up to a second for the first of `want`).
std::vector<std::vector<uint8_t>> receive_all(int fd, size_t want) {
  std::vector<std::vector<uint8_t>> got;
  for (int spins = 0; spins < 1000 && got.size() < want; ++spins) {
    uint8_t buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n >= 0) {
      got.emplace_back(buf, buf + n);
      spins = 0;
      continue;
    }
    ::usleep(1000);
  }
  return got;
}

std::vector<std::vector<uint8_t>> pending(int fd) {
  std::vector<std::vector<uint8_t>> got;
  uint8_t buf[2048];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) >= 0;) got.emplace_back(buf, buf + n);
  return got;
}

TEST(SendBatch, CopiesLeaveByteIdenticalAndInOrderAcrossFullBatches) {
  Socket from, to;
  ASSERT_GE(from.fd, 0);
  ASSERT_GE(to.fd, 0);
  SendBatch batch;
  constexpr size_t kCount = SendBatch::kCapacity * 2 + 5;
  std::vector<uint8_t> scratch;  // reused for every answer, as the core's buffer is
  std::vector<std::vector<uint8_t>> kept;  // datagrams queued without a copy stay valid
  kept.reserve(kCount);
  for (size_t i = 0; i < kCount; ++i) {
    if (batch.full()) batch.flush();
    if (i % 3 == 2) {
      kept.push_back(datagram(i));
      batch.add(from.fd, to.at, nullptr, kept.back());
      continue;
    }
    scratch = datagram(i);
    ASSERT_TRUE(batch.add_copy(from.fd, to.at, nullptr, scratch));
    std::fill(scratch.begin(), scratch.end(), uint8_t{0xEE});
  }
  batch.flush();
  EXPECT_TRUE(batch.empty());
  const auto got = receive_all(to.fd, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (size_t i = 0; i < kCount; ++i) EXPECT_EQ(got[i], datagram(i)) << "datagram " << i;
}

TEST(SendBatch, RefusesToCopyMoreThanItsSlot) {
  Socket from, to;
  SendBatch batch;
  const std::vector<uint8_t> big(SendBatch::kMaxCopy + 1, 1);
  EXPECT_FALSE(batch.add_copy(from.fd, to.at, nullptr, big));
  EXPECT_TRUE(batch.empty());
  const std::vector<uint8_t> fits(SendBatch::kMaxCopy, 2);
  EXPECT_TRUE(batch.add_copy(from.fd, to.at, nullptr, fits));
  batch.flush();
  const auto got = receive_all(to.fd, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], fits);
}

TEST(UdpListener, AnswersWaitForTheFlushOnlyWhileDeferred) {
  asio::io_context ctx;
  Socket server, client;
  const stun::Endpoint bound = server.at;
  UdpListener listener(ctx, server.release(), bound, 0);
  core::FiveTuple tuple{core::Transport::kUdp, client.at, bound, 0};
  std::vector<uint8_t> scratch;

  // Not deferred: an answer leaves at once.
  scratch = datagram(1);
  listener.send(tuple, scratch, /*stable=*/false);
  auto got = receive_all(client.fd, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], datagram(1));

  // Deferred: nothing leaves until the flush; then all of them, in order, the oversized one
  // included (it is sent after what was queued before it).
  listener.defer_answers(true);
  constexpr size_t kCount = SendBatch::kCapacity + 7;
  std::vector<std::vector<uint8_t>> want;
  for (size_t i = 0; i < kCount; ++i) {
    scratch = i == 10 ? std::vector<uint8_t>(SendBatch::kMaxCopy + 100, 0x5A) : datagram(i);
    want.push_back(scratch);
    listener.send(tuple, scratch, /*stable=*/false);
    std::fill(scratch.begin(), scratch.end(), uint8_t{0});
  }
  listener.flush();
  listener.defer_answers(false);
  got = receive_all(client.fd, kCount);
  ASSERT_EQ(got.size(), kCount);
  for (size_t i = 0; i < kCount; ++i) EXPECT_EQ(got[i], want[i]) << "answer " << i;

  listener.defer_answers(true);
  scratch = datagram(3);
  listener.send(tuple, scratch, false);
  ::usleep(20000);
  EXPECT_TRUE(pending(client.fd).empty());  // queued, not sent
  listener.close();                          // close sends what is queued
  got = receive_all(client.fd, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], datagram(3));
}

}  // namespace
}  // namespace callrelay::net
