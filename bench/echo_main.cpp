// bench_echo: the peer every relayed packet goes to. Sends each datagram back to where it came
// from, in batches (recvmmsg/sendmmsg), and publishes how many it received in a shared counter
// file so the load generator can count packets the relay delivered towards peers.
//
//   bench_echo --listen 127.0.0.1:19000 [--stats FILE] [--batch 64]
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <optional>

#include "bench/common/common.hpp"

namespace {

using namespace callrelay::bench;

constexpr size_t kBufferSize = 2048;
constexpr int kPollMs = 100;

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
  std::fprintf(stderr, "bench_echo listening %s\n", to_string(listen).c_str());

  MsgBatch batch(batch_size, kBufferSize);
  pollfd pfd{fd, POLLIN, 0};
  while (!stop_requested()) {
    for (size_t i = 0; i < batch.capacity(); ++i) batch.prepare_recv(i);
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
