// bench_timers: what housekeeping costs the packets of a worker holding many allocations.
// One relay/core TurnServer is driven the way a worker thread drives it, in real time: a
// low-rate flow's packets (a ChannelData to the peer and the peer's answer back: one round trip
// through the core), the requests that keep the held allocations alive (CreatePermission every
// 240 s, ChannelBind and Refresh every 540 s, as clients refresh before the 300 s and 600 s
// lifetimes), and on_timer whenever the deadline it returned comes. Work is taken in the order
// it falls due, on one thread, so any long call delays the flow's next packet exactly as it
// would hold back a worker's socket. No sockets: the figures are the core's share.
//
//   bench_timers held  [--allocations N] [--seconds S] [--rate PPS]
//       The held allocations reach steady state first (600 s of their traffic replayed at full
//       speed), then the flow runs S seconds. Prints the flow's round-trip percentiles.
//   bench_timers burst [--allocations N] [--rate PPS]
//       N allocations made in the same millisecond expire together two seconds into the run.
//       Prints the longest on_timer call and the flow's longest delay around the burst.
//
// Lines "timers.<key> <value>" are for bench/run.sh.
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <queue>
#include <string>
#include <vector>

#include "bench/common/common.hpp"
#include "bench/timers/core_driver.hpp"

namespace callrelay::bench {
namespace {

constexpr core::TimeMs kNever = std::numeric_limits<core::TimeMs>::max();
constexpr core::TimeMs kEpoch = 1'700'000'000'000;  // the core's clock (Unix ms for REST)
constexpr uint32_t kLifetimeS = 600;
constexpr core::TimeMs kPermissionEveryMs = 240'000;
constexpr core::TimeMs kChannelEveryMs = 540'000;
constexpr core::TimeMs kRefreshEveryMs = 540'000;

const core::Endpoint& peer() {
  static const core::Endpoint p = *core::Endpoint::parse("93.184.216.34:7000");
  return p;
}

/// One client request due at `at` (core ms).
struct ClientEvent {
  enum class Kind : uint8_t { kCreate, kPermission, kChannel, kRefresh };
  core::TimeMs at;
  Kind kind;
  uint32_t client;
  bool operator>(const ClientEvent& o) const { return at > o.at; }
};
using EventQueue =
    std::priority_queue<ClientEvent, std::vector<ClientEvent>, std::greater<ClientEvent>>;

struct Stats {
  std::vector<uint64_t> flow_ns;  ///< each flow packet: done - due
  uint64_t longest_timer_ns = 0;
  uint64_t timer_calls = 0;
  uint64_t failures = 0;
};

/// The held clients and their traffic.
class Fleet {
 public:
  Fleet(CoreDriver& d, uint32_t n) : d_(d) {
    clients_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) clients_.push_back(d.client(i + 1));
  }
  /// Creations spread evenly over [from, from + span).
  void schedule_creations(core::TimeMs from, core::TimeMs span) {
    const auto n = static_cast<core::TimeMs>(clients_.size());
    for (core::TimeMs i = 0; i < n; ++i) {
      events_.push({from + span * i / std::max<core::TimeMs>(n, 1), ClientEvent::Kind::kCreate,
                    static_cast<uint32_t>(i)});
    }
  }
  core::TimeMs next_at() const { return events_.empty() ? kNever : events_.top().at; }
  /// Runs the earliest event at core time `now`; false when a request failed.
  bool run_next(core::TimeMs now, bool refreshes) {
    const ClientEvent e = events_.top();
    events_.pop();
    BenchClient& c = clients_[e.client];
    using K = ClientEvent::Kind;
    bool ok = true;
    switch (e.kind) {
      case K::kCreate:
        ok = d_.allocate(c, kLifetimeS, peer(), now);
        if (refreshes) {
          events_.push({e.at + kPermissionEveryMs, K::kPermission, e.client});
          events_.push({e.at + kChannelEveryMs, K::kChannel, e.client});
          events_.push({e.at + kRefreshEveryMs + 1, K::kRefresh, e.client});
        }
        return ok;
      case K::kPermission:
        ok = d_.create_permission(c, peer(), now);
        events_.push({e.at + kPermissionEveryMs, e.kind, e.client});
        return ok;
      case K::kChannel:
        ok = d_.channel_bind(c, peer(), now);
        events_.push({e.at + kChannelEveryMs, e.kind, e.client});
        return ok;
      case K::kRefresh:
        ok = d_.refresh(c, kLifetimeS, now);
        events_.push({e.at + kRefreshEveryMs, e.kind, e.client});
        return ok;
    }
    return ok;
  }

 private:
  CoreDriver& d_;
  std::vector<BenchClient> clients_;
  EventQueue events_;
};

/// Replays the fleet's traffic and the timer in core time up to `until`, at full speed.
core::TimeMs fast_forward(CoreDriver& d, Fleet& fleet, core::TimeMs from, core::TimeMs until,
                          bool refreshes, Stats& st) {
  core::TimeMs timer_due = d.server().on_timer(from);
  for (;;) {
    const core::TimeMs next = std::min(fleet.next_at(), timer_due);
    if (next >= until) break;
    if (timer_due <= fleet.next_at()) {
      timer_due = d.server().on_timer(timer_due);
    } else if (!fleet.run_next(fleet.next_at(), refreshes)) {
      ++st.failures;
    }
  }
  return timer_due;
}

/// The real-time part: from core time `start`, `seconds` long, the flow every 1/rate s.
void run_live(CoreDriver& d, Fleet& fleet, BenchClient& flow, core::TimeMs start,
              core::TimeMs timer_due, double seconds, double rate, bool refreshes, Stats& st) {
  const uint64_t t0 = now_ns();
  const auto to_ns = [&](core::TimeMs at) {
    return t0 + static_cast<uint64_t>(at - start) * 1'000'000;
  };
  const auto core_now = [&](uint64_t ns) {
    return start + static_cast<core::TimeMs>((ns - t0) / 1'000'000);
  };
  const auto period_ns = static_cast<uint64_t>(1e9 / rate);
  const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
  st.flow_ns.reserve(static_cast<size_t>(seconds * rate) + 16);  // the bench's own bookkeeping
  uint64_t flow_due = t0 + period_ns;
  while (!stop_requested()) {
    const uint64_t timer_ns = to_ns(timer_due);
    const uint64_t fleet_ns = fleet.next_at() == kNever ? UINT64_MAX : to_ns(fleet.next_at());
    const uint64_t next = std::min({flow_due, timer_ns, fleet_ns});
    if (next >= end) break;
    uint64_t now = now_ns();
    while (now < next) now = now_ns();  // a worker waiting in epoll_wait, without the syscall
    if (next == flow_due) {
      if (!d.round_trip(flow, peer(), 160, core_now(now))) ++st.failures;
      st.flow_ns.push_back(now_ns() - flow_due);
      flow_due += period_ns;
    } else if (next == timer_ns) {
      const uint64_t a = now_ns();
      timer_due = d.server().on_timer(core_now(now));
      st.longest_timer_ns = std::max(st.longest_timer_ns, now_ns() - a);
      ++st.timer_calls;
    } else if (!fleet.run_next(core_now(now), refreshes)) {
      ++st.failures;
    }
  }
}

double percentile_us(std::vector<uint64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  return static_cast<double>(v[i]) / 1000.0;
}

int held(uint32_t n, double seconds, double rate) {
  CoreDriver d(kEpoch);
  Fleet fleet(d, n);
  Stats st;
  // Steady state: creations spread over one lifetime, then that lifetime's traffic replayed.
  const core::TimeMs start = kEpoch + core::ms_from_seconds(kLifetimeS);
  fleet.schedule_creations(kEpoch, core::ms_from_seconds(kLifetimeS));
  const uint64_t w0 = now_ns();
  core::TimeMs timer_due = fast_forward(d, fleet, kEpoch, start - 1, true, st);
  BenchClient flow = d.client(0xFFFFFF);
  if (!d.allocate(flow, kLifetimeS, peer(), start - 1)) ++st.failures;
  std::fprintf(stderr, "[timers] %u allocations held (%zu relays open), steady state in %.1f s\n",
               n, d.ports().open_count(), static_cast<double>(now_ns() - w0) / 1e9);
  timer_due = std::min(timer_due, d.server().on_timer(start - 1));
  run_live(d, fleet, flow, start, timer_due, seconds, rate, true, st);
  std::printf("timers.held_allocations %u\n", n);
  std::printf("timers.held_p50_us %.2f\n", percentile_us(st.flow_ns, 0.50));
  std::printf("timers.held_p99_us %.2f\n", percentile_us(st.flow_ns, 0.99));
  std::printf("timers.held_max_us %.2f\n", percentile_us(st.flow_ns, 1.0));
  std::printf("timers.held_packets %zu\n", st.flow_ns.size());
  std::printf("timers.held_longest_timer_us %.2f\n",
              static_cast<double>(st.longest_timer_ns) / 1e3);
  std::printf("timers.held_failures %lu\n", static_cast<unsigned long>(st.failures));
  return st.failures == 0 ? 0 : 1;
}

int burst(uint32_t n, double rate) {
  CoreDriver d(kEpoch);
  Fleet fleet(d, n);
  Stats st;
  fleet.schedule_creations(kEpoch, 0);  // every one in the same millisecond
  const uint64_t w0 = now_ns();
  fast_forward(d, fleet, kEpoch, kEpoch + 1, false, st);
  const core::TimeMs expiry = kEpoch + core::ms_from_seconds(kLifetimeS);
  const core::TimeMs start = expiry - 2000;
  core::TimeMs timer_due = fast_forward(d, fleet, kEpoch + 1, start - 1, false, st);
  BenchClient flow = d.client(0xFFFFFF);
  if (!d.allocate(flow, kLifetimeS, peer(), start - 1)) ++st.failures;
  const size_t before = d.server().allocation_count();
  std::fprintf(stderr, "[timers] %zu allocations expiring together, made in %.1f s\n", before,
               static_cast<double>(now_ns() - w0) / 1e9);
  timer_due = std::min(timer_due, d.server().on_timer(start - 1));
  run_live(d, fleet, flow, start, timer_due, 4.0, rate, false, st);
  const size_t after = d.server().allocation_count();
  std::printf("timers.burst_expired %zu\n", before - after);
  std::printf("timers.burst_longest_timer_us %.2f\n",
              static_cast<double>(st.longest_timer_ns) / 1e3);
  std::printf("timers.burst_longest_flow_delay_us %.2f\n", percentile_us(st.flow_ns, 1.0));
  std::printf("timers.burst_p99_us %.2f\n", percentile_us(st.flow_ns, 0.99));
  std::printf("timers.burst_timer_calls %lu\n", static_cast<unsigned long>(st.timer_calls));
  std::printf("timers.burst_failures %lu\n", static_cast<unsigned long>(st.failures));
  return st.failures == 0 && after == 1 ? 0 : 1;
}

}  // namespace
}  // namespace callrelay::bench

int main(int argc, char** argv) {
  using namespace callrelay::bench;
  install_stop_handlers();
  // As callrelay's main does: no glibc fastbins, whose merging after a burst of frees would
  // stall the next large malloc for milliseconds.
  (void)mallopt(M_MXFAST, 0);
  const std::string mode = argc > 1 ? argv[1] : "";
  uint32_t n = 100'000;
  double seconds = 20;
  double rate = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    const std::string val = argv[i + 1];
    if (opt == "--allocations") n = static_cast<uint32_t>(std::stoul(val));
    else if (opt == "--seconds") seconds = std::stod(val);
    else if (opt == "--rate") rate = std::stod(val);
    else {
      std::fprintf(stderr, "unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  if (mode == "held") return held(n, seconds, rate > 0 ? rate : 50);
  if (mode == "burst") return burst(n, rate > 0 ? rate : 1000);
  std::fprintf(stderr,
               "usage: bench_timers held [--allocations N] [--seconds S] [--rate PPS]\n"
               "       bench_timers burst [--allocations N] [--rate PPS]\n");
  return 2;
}
