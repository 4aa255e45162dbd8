// bench_echo: the peer every relayed packet goes to. Sends each datagram back to where it came
// from, in batches (recvmmsg/sendmmsg), and publishes how many it received in a shared counter
// file so the load generator can count packets the relay delivered towards peers.
//
//   bench_echo --listen 127.0.0.1:19000 [--stats FILE] [--batch 64]
//
// Bound to 0.0.0.0, it is every loopback peer at once (bench_loadgen --peer-addresses): each
// answer leaves from the address its datagram was sent to (IP_PKTINFO), so each client's relay
// hears from its own peer address, as it would from a browser's remote party.
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include "bench/common/common.hpp"

namespace {

using namespace callrelay::bench;

constexpr size_t kBufferSize = 2048;
constexpr int kPollMs = 100;

/// Room for one IP_PKTINFO control message per datagram.
struct Control {
  alignas(cmsghdr) uint8_t bytes[CMSG_SPACE(sizeof(in_pktinfo))];
};

/// Turns the IP_PKTINFO received with a datagram into the one its answer is sent with: from
/// the address it was sent to, by whatever interface routing picks.
void answer_from_destination(msghdr& m) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_PKTINFO) continue;
    in_pktinfo info{};
    std::memcpy(&info, CMSG_DATA(c), sizeof info);
    info.ipi_spec_dst = info.ipi_addr;
    info.ipi_ifindex = 0;
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
    return;
  }
  m.msg_control = nullptr;  // no destination given: the kernel picks the source
  m.msg_controllen = 0;
}

int run(Args& args) {
  const sockaddr_in listen = parse_addr(args.str("listen", "127.0.0.1:19000"));
  const std::string stats_path = args.str("stats", "");
  const auto batch_size = static_cast<size_t>(args.num("batch", 64));
  args.finish();

  std::optional<SharedCounter> counter;
  if (!stats_path.empty()) counter.emplace(SharedCounter::create(stats_path));
  const int fd = open_udp(listen, nullptr, 4 << 20);
  if (fd < 0) {
    std::perror(("bench_echo: cannot bind " + to_string(listen)).c_str());
    return 1;
  }
  const bool any = listen.sin_addr.s_addr == htonl(INADDR_ANY);
  const int on = 1;
  if (any && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0) {
    std::perror("bench_echo: IP_PKTINFO");
    return 1;
  }
  std::fprintf(stderr, "bench_echo listening %s\n", to_string(listen).c_str());

  MsgBatch batch(batch_size, kBufferSize);
  std::vector<Control> control(any ? batch_size : 0);
  pollfd pfd{fd, POLLIN, 0};
  while (!stop_requested()) {
    for (size_t i = 0; i < batch.capacity(); ++i) {
      batch.prepare_recv(i);
      if (any) {
        batch.hdr(i).msg_hdr.msg_control = control[i].bytes;
        batch.hdr(i).msg_hdr.msg_controllen = sizeof control[i].bytes;
      }
    }
    const int n =
        recvmmsg(fd, batch.hdrs(), static_cast<unsigned>(batch.capacity()), MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        std::perror("bench_echo: recvmmsg");
        return 1;
      }
      poll(&pfd, 1, kPollMs);
      continue;
    }
    for (int i = 0; i < n; ++i) {
      const auto idx = static_cast<size_t>(i);
      mmsghdr& h = batch.hdr(idx);
      h.msg_hdr.msg_iov->iov_len = h.msg_len;  // echo exactly what arrived, to its source
      if (any) answer_from_destination(h.msg_hdr);
    }
    if (counter) counter->add(static_cast<uint64_t>(n));
    send_all(fd, batch.hdrs(), static_cast<size_t>(n));
  }
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    install_stop_handlers();
    Args args(argc, argv);
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_echo: %s\n", e.what());
    return 2;
  }
}
