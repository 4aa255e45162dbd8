// bench_media_cost: what the media monitor adds per relayed packet, alone, in a tight loop over
// many allocations' monitors (as a busy worker sees them): RTP-shaped 160-byte payloads from the
// client (parsed, sequence and jitter bookkeeping) and the peer's answers (demultiplexed only).
// Complements bench/media.sh, whose end-to-end on/off figure a shared machine makes noisy.
//
//   bench_media_cost [--allocations N] [--packets N] [--reps N]
//
// Prints one "result" line: ns per client packet and per peer packet (best of the reps).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "bench/common/common.hpp"
#include "relay/media/monitor.hpp"

namespace {

using callrelay::media::MediaCounters;
using callrelay::media::MediaMonitor;

struct Allocation {
  MediaMonitor monitor;
  MediaCounters counters;
  std::array<uint8_t, 160> packet{};
  uint16_t seq = 0;
};

void put_u32(uint8_t* p, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

double now_ns() {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count());
}

}  // namespace

int main(int argc, char** argv) {
  double allocations_arg = 0, packets_arg = 0, reps_arg = 0;
  try {
    callrelay::bench::Args args(argc, argv);
    allocations_arg = args.num("allocations", 1000);
    packets_arg = args.num("packets", 20'000'000);
    reps_arg = args.num("reps", 5);
    args.finish();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bench_media_cost: %s\n", e.what());
    return 2;
  }
  if (allocations_arg < 1 || allocations_arg > 1e6 || packets_arg < 1 || packets_arg > 1e10 ||
      reps_arg < 1 || reps_arg > 100) {
    std::fprintf(stderr, "usage: bench_media_cost [--allocations 1..1e6] [--packets N] [--reps 1..100]\n");
    return 2;
  }
  const auto allocations = static_cast<size_t>(allocations_arg);
  const auto packets = static_cast<uint64_t>(packets_arg);
  const auto reps = static_cast<int>(reps_arg);
  std::vector<std::unique_ptr<Allocation>> allocs;
  for (size_t i = 0; i < allocations; ++i) {
    auto a = std::make_unique<Allocation>();
    a->packet.fill(0x5A);
    a->packet[0] = 0x80;
    a->packet[1] = 111;  // Opus
    put_u32(a->packet.data() + 8, 0x5500'0000u + static_cast<uint32_t>(i));
    allocs.push_back(std::move(a));
  }
  double best_client = 1e300, best_peer = 1e300;
  int64_t clock_us = 1'000'000;
  uint64_t check = 0;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_ns();
    for (uint64_t n = 0; n < packets; ++n) {
      Allocation& a = *allocs[n % allocations];
      const uint16_t seq = a.seq++;
      a.packet[2] = static_cast<uint8_t>(seq >> 8);
      a.packet[3] = static_cast<uint8_t>(seq);
      put_u32(a.packet.data() + 4, uint32_t{seq} * 960u);
      clock_us += (n % 7 == 0) ? 1 : 0;
      a.monitor.on_client_datagram(a.packet, clock_us, a.counters);
    }
    const double t1 = now_ns();
    for (uint64_t n = 0; n < packets; ++n) {
      Allocation& a = *allocs[n % allocations];
      a.monitor.on_peer_datagram(a.packet, clock_us, a.counters);
    }
    const double t2 = now_ns();
    best_client = std::min(best_client, (t1 - t0) / static_cast<double>(packets));
    best_peer = std::min(best_peer, (t2 - t1) / static_cast<double>(packets));
  }
  for (const auto& a : allocs) check += a->counters.kind[0].received.get();
  std::printf("result allocations=%zu packets=%llu reps=%d client_ns_per_pkt=%.1f "
              "peer_ns_per_pkt=%.1f counted=%llu\n",
              allocations, static_cast<unsigned long long>(packets), reps, best_client,
              best_peer, static_cast<unsigned long long>(check));
  return 0;
}
