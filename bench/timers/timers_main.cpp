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
//   bench_timers burst [--allocations N] [--rate PPS] [--bursts B]
//       N allocations made in the same millisecond expire together two seconds into the run;
//       B times (5 by default), each in a core of its own. Prints the longest on_timer call,
//       the time on_timer spends per expired allocation, and the flow's longest delay (the
//       longest stop in relaying) and p99.9 in the two seconds from each burst on, beside the
//       same figures for the two seconds before it, when nothing expires: a stop that both
//       windows show is the machine's (the thread off its CPU), not the core's. --observers
//       gives the core callrelay's telemetry and log (a line on stderr per ended allocation).
//
// Lines "timers.<key> <value>" are for bench/run.sh.
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/common/common.hpp"
#include "bench/timers/core_driver.hpp"
#include "telemetry/call_traffic.hpp"
#include "telemetry/log_observer.hpp"
#include "telemetry/telemetry.hpp"

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

/// What one stretch of the live run saw. A burst's stretch is set beside an equal stretch with
/// no expiries, so that a stop caused by the core can be told from the machine's own (a thread
/// off its CPU, another process's work).
struct Window {
  std::vector<uint64_t> flow_ns;  ///< each flow packet: done - due
  uint64_t longest_timer_ns = 0;
  std::vector<uint64_t> ending_timer_ns;  ///< each on_timer call that ended allocations
  uint64_t timer_ns = 0;  ///< time spent in on_timer
  uint64_t timer_calls = 0;
  uint64_t expired = 0;      ///< allocations on_timer ended
  uint64_t most_ended = 0;   ///< most allocations one on_timer call ended
  long switches = 0;  ///< involuntary context switches of the thread: it was taken off its CPU
  /// The same figures for what ran without the thread leaving its CPU: a flow packet with no
  /// involuntary switch since the one before it was served, an on_timer call with none in it.
  uint64_t longest_on_cpu_flow_ns = 0;
  uint64_t longest_on_cpu_timer_ns = 0;
  uint64_t longest_round_trip_ns = 0;  ///< the core's own time on one flow packet and answer
  /// Time the thread's CPU was taken by the hypervisor (steal) or by interrupts (irq and
  /// softirq, other processes' network traffic), in /proc/stat clock ticks: stops that no
  /// context switch shows.
  uint64_t steal_ticks = 0;
  uint64_t irq_ticks = 0;
  /// What happened between the longest-delayed flow packet and the one before it: time in
  /// on_timer and its calls, the thread's voluntary switches (it blocked: a lock, a write) and
  /// minor page faults (memory the kernel had to map, as when freed heap is handed back and
  /// touched again). A stop none of these explain is time the thread spent off its CPU.
  struct Anatomy {
    uint64_t delay_ns = 0;
    uint64_t timer_ns = 0;
    uint64_t timer_calls = 0;
    long voluntary = 0;
    long involuntary = 0;
    long minor_faults = 0;
  } longest_stop;
};

/// Steal and irq+softirq ticks of CPU `cpu` from /proc/stat (zeros when unreadable).
std::pair<uint64_t, uint64_t> cpu_lost_ticks(int cpu) {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return {0, 0};
  const std::string want = "cpu" + std::to_string(cpu) + " ";
  char line[512];
  std::pair<uint64_t, uint64_t> out{0, 0};
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::string_view(line).substr(0, want.size()) != want) continue;
    unsigned long long v[8] = {};
    if (std::sscanf(line + want.size(), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
      out = {v[7], v[5] + v[6]};
    }
    break;
  }
  std::fclose(f);
  return out;
}

struct Stats {
  Window w[2];  ///< before the split (no expiries due), from it on (the burst)
  uint64_t failures = 0;
};

long involuntary_switches() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nivcsw;
}

rusage thread_usage() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u;
}

/// What callrelay's main gives each worker's core (--observers): the traffic of call-scoped
/// allocations, then the Prometheus metrics, then the log, which writes a line to stderr for
/// every ended allocation.
class AppObservers {
 public:
  AppObservers() : metrics_(telemetry::TelemetryConfig{}, 1, telemetry::ProcessProbes{}) {
    chain_ = traffic_.observer_for_worker(0, metrics_.observer_for_worker(0, &log_));
  }
  core::Observer* get() { return chain_; }

 private:
  telemetry::LogObserver log_;
  telemetry::Telemetry metrics_;
  telemetry::CallTraffic traffic_;
  core::Observer* chain_ = nullptr;
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

/// The real-time part: from core time `start`, `seconds` long, the flow every 1/rate s. What is
/// due from `split` seconds on is counted in st.w[1], before it in st.w[0].
void run_live(CoreDriver& d, Fleet& fleet, BenchClient& flow, core::TimeMs start,
              core::TimeMs timer_due, double seconds, double split, double rate, bool refreshes,
              Stats& st) {
  const uint64_t t0 = now_ns();
  const auto to_ns = [&](core::TimeMs at) {
    return t0 + static_cast<uint64_t>(at - start) * 1'000'000;
  };
  const auto core_now = [&](uint64_t ns) {
    return start + static_cast<core::TimeMs>((ns - t0) / 1'000'000);
  };
  const auto period_ns = static_cast<uint64_t>(1e9 / rate);
  const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
  const uint64_t split_ns = t0 + static_cast<uint64_t>(split * 1e9);
  // The bench's own bookkeeping, never grown while measuring.
  for (Window& w : st.w) {
    w.flow_ns.reserve(w.flow_ns.size() + static_cast<size_t>(seconds * rate) + 16);
    w.ending_timer_ns.reserve(w.ending_timer_ns.size() + d.server().allocation_count() + 16);
  }
  long switches = involuntary_switches();
  const int cpu = sched_getcpu();
  auto lost = cpu_lost_ticks(cpu);
  const auto add_lost = [&](Window& w) {
    const auto l = cpu_lost_ticks(cpu);
    w.steal_ticks += l.first - lost.first;
    w.irq_ticks += l.second - lost.second;
    lost = l;
  };
  size_t wi = 0;
  uint64_t flow_due = t0 + period_ns;
  // Since the last flow packet, for the anatomy of the longest stop.
  Window::Anatomy since;
  rusage since_usage = thread_usage();
  while (!stop_requested()) {
    const uint64_t timer_ns = to_ns(timer_due);
    const uint64_t fleet_ns = fleet.next_at() == kNever ? UINT64_MAX : to_ns(fleet.next_at());
    const uint64_t next = std::min({flow_due, timer_ns, fleet_ns});
    if (next >= end) break;
    if (wi == 0 && next >= split_ns) {
      const long s = involuntary_switches();
      st.w[0].switches += s - switches;
      switches = s;
      add_lost(st.w[0]);
      wi = 1;
    }
    Window& w = st.w[wi];
    uint64_t now = now_ns();
    while (now < next) now = now_ns();  // a worker waiting in epoll_wait, without the syscall
    if (next == flow_due) {
      const uint64_t rt = now_ns();
      if (!d.round_trip(flow, peer(), 160, core_now(now))) ++st.failures;
      const uint64_t done = now_ns();
      w.longest_round_trip_ns = std::max(w.longest_round_trip_ns, done - rt);
      const uint64_t delay = done - flow_due;
      const rusage u = thread_usage();
      // No switch since the packet before, neither taken off its CPU nor blocked (a lock whose
      // holder was itself taken off the CPU): the thread kept its CPU throughout.
      if (u.ru_nivcsw == since_usage.ru_nivcsw && u.ru_nvcsw == since_usage.ru_nvcsw) {
        w.longest_on_cpu_flow_ns = std::max(w.longest_on_cpu_flow_ns, delay);
      }
      if (delay >= w.longest_stop.delay_ns) {
        since.delay_ns = delay;
        since.voluntary = u.ru_nvcsw - since_usage.ru_nvcsw;
        since.involuntary = u.ru_nivcsw - since_usage.ru_nivcsw;
        since.minor_faults = u.ru_minflt - since_usage.ru_minflt;
        w.longest_stop = since;
      }
      since = {};
      since_usage = u;
      w.flow_ns.push_back(delay);
      flow_due += period_ns;
    } else if (next == timer_ns) {
      const size_t before = d.server().allocation_count();
      const rusage s = thread_usage();
      const uint64_t a = now_ns();
      timer_due = d.server().on_timer(core_now(now));
      const uint64_t took = now_ns() - a;
      const size_t ended = before - d.server().allocation_count();
      const rusage e = thread_usage();
      if (e.ru_nivcsw == s.ru_nivcsw && e.ru_nvcsw == s.ru_nvcsw) {
        w.longest_on_cpu_timer_ns = std::max(w.longest_on_cpu_timer_ns, took);
      }
      w.longest_timer_ns = std::max(w.longest_timer_ns, took);
      since.timer_ns += took;
      ++since.timer_calls;
      w.timer_ns += took;
      ++w.timer_calls;
      w.expired += ended;
      if (ended > 0) w.ending_timer_ns.push_back(took);
      w.most_ended = std::max<uint64_t>(w.most_ended, ended);
    } else if (!fleet.run_next(core_now(now), refreshes)) {
      ++st.failures;
    }
  }
  st.w[wi].switches += involuntary_switches() - switches;
  add_lost(st.w[wi]);
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
  run_live(d, fleet, flow, start, timer_due, seconds, seconds, rate, true, st);
  const Window& w = st.w[0];
  std::printf("timers.held_allocations %u\n", n);
  std::printf("timers.held_p50_us %.2f\n", percentile_us(w.flow_ns, 0.50));
  std::printf("timers.held_p99_us %.2f\n", percentile_us(w.flow_ns, 0.99));
  std::printf("timers.held_max_us %.2f\n", percentile_us(w.flow_ns, 1.0));
  std::printf("timers.held_packets %zu\n", w.flow_ns.size());
  std::printf("timers.held_longest_timer_us %.2f\n",
              static_cast<double>(w.longest_timer_ns) / 1e3);
  std::printf("timers.held_failures %lu\n", static_cast<unsigned long>(st.failures));
  return st.failures == 0 ? 0 : 1;
}

/// One burst: n allocations made in the same millisecond, the flow's allocation two seconds
/// before they expire, then `window_s` seconds live before the expiry and as many after it.
/// False when a request failed or not every one of the n expired.
bool one_burst(uint32_t n, double rate, double window_s, core::Observer* observer, Stats& st) {
  CoreDriver d(kEpoch, observer);
  Fleet fleet(d, n);
  fleet.schedule_creations(kEpoch, 0);  // every one in the same millisecond
  const uint64_t w0 = now_ns();
  const uint64_t failures = st.failures;
  fast_forward(d, fleet, kEpoch, kEpoch + 1, false, st);
  const core::TimeMs expiry = kEpoch + core::ms_from_seconds(kLifetimeS);
  const auto window_ms = static_cast<core::TimeMs>(window_s * 1000);
  const core::TimeMs start = expiry - window_ms;
  core::TimeMs timer_due = fast_forward(d, fleet, kEpoch + 1, start - 1, false, st);
  BenchClient flow = d.client(0xFFFFFF);
  if (!d.allocate(flow, kLifetimeS, peer(), start - 1)) ++st.failures;
  const size_t before = d.server().allocation_count();
  std::fprintf(stderr, "[timers] %zu allocations expiring together, made in %.1f s\n", before,
               static_cast<double>(now_ns() - w0) / 1e9);
  timer_due = std::min(timer_due, d.server().on_timer(start - 1));
  run_live(d, fleet, flow, start, timer_due, 2 * window_s, window_s, rate, false, st);
  const size_t after = d.server().allocation_count();
  if (before - after != n) {
    std::fprintf(stderr, "[timers] %zu of %u expired\n", before - after, n);
  }
  return st.failures == failures && before - after == n && after == 1;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int burst(uint32_t n, double rate, uint32_t bursts, bool observers) {
  // Each burst's live run: 2 s with nothing due, then 2 s from the expiry on.
  constexpr double kWindowS = 2.0;
  Stats all;
  std::vector<double> stops[2];  // each burst's longest flow delay, quiet and burst windows
  bool ok = true;
  for (uint32_t b = 0; b < bursts && !stop_requested(); ++b) {
    Stats st;
    std::optional<AppObservers> app;
    if (observers) app.emplace();
    ok = one_burst(n, rate, kWindowS, app ? app->get() : nullptr, st) && ok;
    all.failures += st.failures;
    for (size_t i = 0; i < 2; ++i) {
      const Window& w = st.w[i];
      Window& a = all.w[i];
      stops[i].push_back(percentile_us(w.flow_ns, 1.0));
      a.flow_ns.insert(a.flow_ns.end(), w.flow_ns.begin(), w.flow_ns.end());
      a.ending_timer_ns.insert(a.ending_timer_ns.end(), w.ending_timer_ns.begin(),
                               w.ending_timer_ns.end());
      a.longest_timer_ns = std::max(a.longest_timer_ns, w.longest_timer_ns);
      a.timer_ns += w.timer_ns;
      a.timer_calls += w.timer_calls;
      a.expired += w.expired;
      a.most_ended = std::max(a.most_ended, w.most_ended);
      a.switches += w.switches;
      a.longest_on_cpu_flow_ns = std::max(a.longest_on_cpu_flow_ns, w.longest_on_cpu_flow_ns);
      a.longest_on_cpu_timer_ns = std::max(a.longest_on_cpu_timer_ns, w.longest_on_cpu_timer_ns);
      a.longest_round_trip_ns = std::max(a.longest_round_trip_ns, w.longest_round_trip_ns);
      a.steal_ticks += w.steal_ticks;
      a.irq_ticks += w.irq_ticks;
      if (w.longest_stop.delay_ns >= a.longest_stop.delay_ns) a.longest_stop = w.longest_stop;
    }
    std::fprintf(stderr,
                 "[timers] burst %u: stop %.0f us (quiet window %.0f us), longest on_timer %.0f "
                 "us, %.2f us per expiry, %ld/%ld involuntary switches, %lu/%lu ticks stolen\n",
                 b + 1, stops[1].back(), stops[0].back(),
                 static_cast<double>(st.w[1].longest_timer_ns) / 1e3,
                 st.w[1].expired != 0 ? static_cast<double>(st.w[1].timer_ns) / 1e3 /
                                            static_cast<double>(st.w[1].expired)
                                      : 0.0,
                 st.w[1].switches, st.w[0].switches, static_cast<unsigned long>(st.w[1].steal_ticks),
                 static_cast<unsigned long>(st.w[0].steal_ticks));
    const Window::Anatomy& x = st.w[1].longest_stop;
    std::fprintf(stderr,
                 "[timers]   its longest stop: %.0f us, of which %.0f us in %lu on_timer calls; "
                 "%ld voluntary and %ld involuntary switches, %ld minor faults since the packet "
                 "before\n",
                 static_cast<double>(x.delay_ns) / 1e3, static_cast<double>(x.timer_ns) / 1e3,
                 static_cast<unsigned long>(x.timer_calls), x.voluntary, x.involuntary,
                 x.minor_faults);
  }
  const Window& q = all.w[0];
  const Window& w = all.w[1];
  const double runs = std::max(static_cast<double>(stops[1].size()), 1.0);
  const double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  // What both windows report: "burst" (the two seconds of each burst) and "quiet" (the same
  // length of run with nothing expiring just before each: the machine's own stalls).
  const auto window = [tick_ms](const char* name, const Window& x,
                                const std::vector<double>& stop) {
    std::printf("timers.%s_longest_flow_delay_us %.2f\n", name, percentile_us(x.flow_ns, 1.0));
    std::printf("timers.%s_stop_median_us %.2f\n", name, median(stop));
    std::printf("timers.%s_p99_us %.2f\n", name, percentile_us(x.flow_ns, 0.99));
    std::printf("timers.%s_p999_us %.2f\n", name, percentile_us(x.flow_ns, 0.999));
    std::printf("timers.%s_switches %ld\n", name, x.switches);
    std::printf("timers.%s_steal_ms %.0f\n", name, static_cast<double>(x.steal_ticks) * tick_ms);
    std::printf("timers.%s_irq_ms %.0f\n", name, static_cast<double>(x.irq_ticks) * tick_ms);
    // Without the stretches where the thread was off its CPU: what the core itself held back.
    std::printf("timers.%s_on_cpu_longest_flow_delay_us %.2f\n", name,
                static_cast<double>(x.longest_on_cpu_flow_ns) / 1e3);
    // What the longest stop was made of (since the flow packet before it).
    const Window::Anatomy& l = x.longest_stop;
    std::printf("timers.%s_longest_stop_timer_us %.0f\n", name,
                static_cast<double>(l.timer_ns) / 1e3);
    std::printf("timers.%s_longest_stop_timer_calls %lu\n", name,
                static_cast<unsigned long>(l.timer_calls));
    std::printf("timers.%s_longest_stop_voluntary_switches %ld\n", name, l.voluntary);
    std::printf("timers.%s_longest_stop_involuntary_switches %ld\n", name, l.involuntary);
    std::printf("timers.%s_longest_stop_minor_faults %ld\n", name, l.minor_faults);
  };
  window("burst", w, stops[1]);
  window("quiet", q, stops[0]);
  // Keys read by bench/run.sh: the longest stop and on_timer call over every burst.
  std::printf("timers.bursts %zu\n", stops[1].size());
  std::printf("timers.burst_expired %.0f\n", static_cast<double>(w.expired) / runs);
  std::printf("timers.burst_longest_timer_us %.2f\n",
              static_cast<double>(w.longest_timer_ns) / 1e3);
  std::printf("timers.burst_timer_calls %.0f\n", static_cast<double>(w.timer_calls) / runs);
  std::printf("timers.burst_longest_round_trip_us %.2f\n",
              static_cast<double>(w.longest_round_trip_ns) / 1e3);
  std::printf("timers.burst_timer_p50_us %.2f\n", percentile_us(w.ending_timer_ns, 0.50));
  std::printf("timers.burst_timer_p99_us %.2f\n", percentile_us(w.ending_timer_ns, 0.99));
  std::printf("timers.burst_most_ended_per_call %lu\n", static_cast<unsigned long>(w.most_ended));
  std::printf("timers.burst_timer_us_per_expiry %.3f\n",
              w.expired ? static_cast<double>(w.timer_ns) / 1e3 / static_cast<double>(w.expired)
                        : 0.0);
  std::printf("timers.burst_on_cpu_longest_timer_us %.2f\n",
              static_cast<double>(w.longest_on_cpu_timer_ns) / 1e3);
  std::printf("timers.burst_failures %lu\n", static_cast<unsigned long>(all.failures));
  return ok ? 0 : 1;
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
  uint32_t bursts = 5;
  bool observers = false;
  for (int i = 2; i < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--observers") {
      observers = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", opt.c_str());
      return 2;
    }
    const std::string val = argv[i + 1];
    if (opt == "--allocations") n = static_cast<uint32_t>(std::stoul(val));
    else if (opt == "--seconds") seconds = std::stod(val);
    else if (opt == "--rate") rate = std::stod(val);
    else if (opt == "--bursts") bursts = static_cast<uint32_t>(std::stoul(val));
    else {
      std::fprintf(stderr, "unknown option %s\n", opt.c_str());
      return 2;
    }
  }
  if (mode == "held") return held(n, seconds, rate > 0 ? rate : 50);
  if (mode == "burst") return burst(n, rate > 0 ? rate : 1000, std::max<uint32_t>(bursts, 1), observers);
  std::fprintf(stderr,
               "usage: bench_timers held [--allocations N] [--seconds S] [--rate PPS]\n"
               "       bench_timers burst [--allocations N] [--rate PPS] [--bursts B] [--observers]\n");
  return 2;
}
