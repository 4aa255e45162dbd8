// bench_loadgen: the load generator for bench/run.sh. One thread, one UDP socket per client,
// epoll, recvmmsg/sendmmsg (or, with --transport tcp|tls, one TCP or TLS connection per
// client in the max mode); STUN/TURN built and parsed with relay_stun. Prints one
// "result mode=... key=value ..." line on stdout. Every mode is bounded in time (--timeout).
#include <arpa/inet.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <vector>

#include "bench/common/common.hpp"
#include "bench/loadgen/control_modes.hpp"
#include "bench/loadgen/data_modes.hpp"
#include "bench/loadgen/stream_modes.hpp"

namespace {

using namespace callrelay::bench;

constexpr uint64_t kReleaseNs = 5'000'000'000;  // bound on deleting allocations at the end

// Sockets for the data modes: with --raw plain sockets to the forwarder, otherwise sessions
// brought to kReady (allocation, permission, channel) by `driver`.
std::vector<int> data_sockets(const Options& o, ControlDriver& driver, std::vector<int>& owned) {
  std::vector<int> fds;
  if (o.raw) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (size_t i = 0; i < o.clients; ++i) {
      const int fd = open_udp(local, &o.server, 1 << 20);
      if (fd < 0) break;
      fds.push_back(fd);
      owned.push_back(fd);
    }
    return fds;
  }
  const bool done =
      establish(driver, o.clients, now_ns() + static_cast<uint64_t>(o.timeout_s * 1e9));
  std::printf("setup");
  print_control_stats(driver.stats());
  std::printf(" complete=%d\n", done ? 1 : 0);
  for (const auto& s : driver.sessions()) {
    if (s.step == Step::kReady) fds.push_back(s.fd);
  }
  return fds;
}

int run(const Options& o) {
  switch (o.mode) {
    case Mode::kAllocs:
      return run_allocs_mode(o);
    case Mode::kHold:
      return run_hold_mode(o);
    case Mode::kStorm:
      return run_storm_mode(o);
    case Mode::kProbe:
      return run_probe_mode(o);
    case Mode::kMax:
      if (o.transport != Transport::kUdp) return run_stream_max_mode(o);
      break;
    case Mode::kRate:
      break;
  }
  ControlDriver driver(o, Goal::kReady);
  std::vector<int> owned;
  const std::vector<int> fds = data_sockets(o, driver, owned);
  int rc = 1;
  if (fds.size() != o.clients) {
    std::fprintf(stderr, "bench_loadgen: only %zu of %zu clients ready\n", fds.size(), o.clients);
  }
  if (!fds.empty()) rc = o.mode == Mode::kMax ? run_max_mode(o, fds) : run_rate_mode(o, fds);
  for (const int fd : owned) close(fd);
  if (!o.raw) driver.release_all(now_ns() + kReleaseNs);
  return fds.size() == o.clients ? rc : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    install_stop_handlers();
    raise_fd_limit();
    Args args(argc, argv);
    if (args.flag("help")) {
      std::fputs(usage(), stdout);
      return 0;
    }
    options = parse_options(args);
    args.finish();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loadgen: %s\n%s", e.what(), usage());
    return 2;
  }
  try {
    const int rc = run(options);
    std::fflush(stdout);
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_loadgen: %s\n", e.what());
    return 2;
  }
}
