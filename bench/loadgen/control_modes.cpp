#include "bench/loadgen/control_modes.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <thread>

#include "bench/common/common.hpp"
#include "bench/loadgen/meter.hpp"
#include "relay/stun/builder.hpp"

namespace callrelay::bench {

namespace {

constexpr uint64_t kSettleNs = 1'000'000'000;  // let the server return freed memory

uint64_t deadline_from_now(double seconds) {
  return now_ns() + static_cast<uint64_t>(seconds * 1e9);
}

void settle() {
  const uint64_t until = now_ns() + kSettleNs;
  while (now_ns() < until && !stop_requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string errors_text(const ControlStats& s) {
  std::string out;
  for (const auto& [code, n] : s.errors) {
    if (!out.empty()) out.push_back(',');
    out.append(std::to_string(code)).append(":").append(std::to_string(n));
  }
  return out.empty() ? "none" : out;
}

}  // namespace

void print_control_stats(const ControlStats& s) {
  std::printf(
      " ready=%llu failed=%llu timeouts=%llu retransmits=%llu bad_integrity=%llu "
      "no_integrity=%llu errors=%s",
      static_cast<unsigned long long>(s.ready), static_cast<unsigned long long>(s.failed),
      static_cast<unsigned long long>(s.timeouts), static_cast<unsigned long long>(s.retransmits),
      static_cast<unsigned long long>(s.bad_integrity),
      static_cast<unsigned long long>(s.no_integrity), errors_text(s).c_str());
  if (!s.first_failure.empty())
    std::fprintf(stderr, "first failure: %s\n", s.first_failure.c_str());
}

bool establish(ControlDriver& driver, size_t n, uint64_t deadline_ns) {
  if (!driver.add_sessions(n)) {
    std::perror("bench_loadgen: cannot open client socket (raise ulimit -n)");
    return false;
  }
  return driver.run_until([&] { return driver.all_settled(); }, deadline_ns);
}

int run_allocs_mode(const Options& o) {
  ControlDriver driver(o, Goal::kCycle);
  const Meter meter(o);
  if (!driver.add_sessions(o.clients)) return 1;
  const uint64_t start = now_ns();
  const uint64_t window_start = start + static_cast<uint64_t>(o.warmup_s * 1e9);
  const uint64_t end = window_start + static_cast<uint64_t>(o.duration_s * 1e9);
  driver.run_until([] { return false; }, window_start);
  const Snapshot a = meter.take();
  const uint64_t cycles_a = driver.stats().cycles;
  driver.run_until([] { return false; }, end);
  const Snapshot b = meter.take();
  const uint64_t cycles = driver.stats().cycles - cycles_a;
  driver.stop_cycling();  // let every session finish its cycle, so nothing stays allocated
  driver.run_until([&] { return driver.all_settled(); }, end + kSettleNs * 5);
  const double window = static_cast<double>(b.t_ns - a.t_ns) / 1e9;
  const double busy = meter.busy_s(a, b);
  const double per = cycles ? 1e6 / static_cast<double>(cycles) : 0.0;
  std::printf(
      "result mode=allocs clients=%zu cycles=%llu allocs_per_s=%.1f cpu_us_per_alloc=%.1f "
      "proc_us_per_alloc=%.1f",
      o.clients, static_cast<unsigned long long>(cycles), static_cast<double>(cycles) / window,
      busy * per, (b.process_cpu_s - a.process_cpu_s) * per);
  print_control_stats(driver.stats());
  std::printf(" %s\n", meter.describe(a, b).c_str());
  return cycles > 0 && driver.stats().failed == 0 ? 0 : 1;
}

int run_hold_mode(const Options& o) {
  ControlDriver driver(o, Goal::kReady);
  driver.enable_renewals(static_cast<uint64_t>(o.refresh_permission_s * 1e9),
                         static_cast<uint64_t>(o.refresh_allocation_s * 1e9));
  const Meter meter(o);
  const uint64_t deadline = deadline_from_now(o.timeout_s);
  // Settling keeps the loop running: held allocations fall due for refreshes meanwhile.
  const auto settle_holding = [&](uint64_t ns) {
    driver.run_until([] { return false; }, now_ns() + ns);
  };
  uint64_t prev_n = 0, prev_rss = meter.rss_kib().value_or(0);
  std::printf("stage held=0 rss_kib=%llu\n", static_cast<unsigned long long>(prev_rss));
  double slope = 0;
  std::string stages = "0:" + std::to_string(prev_rss);
  std::string slopes;  // "<held>:<KiB per allocation from the previous stage>", per stage
  bool complete = true;
  for (const uint64_t target : o.counts) {
    if (target <= driver.sessions().size()) continue;
    const uint64_t t0 = now_ns();
    complete = establish(driver, target - driver.sessions().size(), deadline) && complete;
    const double took = static_cast<double>(now_ns() - t0) / 1e9;
    settle_holding(kSettleNs);
    const uint64_t held = driver.held();
    const uint64_t rss = meter.rss_kib().value_or(0);
    std::printf("stage held=%llu rss_kib=%llu failed=%llu took_s=%.2f\n",
                static_cast<unsigned long long>(held), static_cast<unsigned long long>(rss),
                static_cast<unsigned long long>(driver.stats().failed), took);
    std::fflush(stdout);
    if (held > prev_n) {
      slope = (static_cast<double>(rss) - static_cast<double>(prev_rss)) /
              static_cast<double>(held - prev_n);
      char one[48];
      std::snprintf(one, sizeof one, "%s%llu:%.3f", slopes.empty() ? "" : ",",
                    static_cast<unsigned long long>(held), slope);
      slopes.append(one);
    }
    stages.append(",").append(std::to_string(held)).append(":").append(std::to_string(rss));
    prev_n = held;
    prev_rss = rss;
    if (!complete) break;
  }
  std::string after;  // --hold: what is still held, and the RSS, after holding that long
  if (complete && o.hold_s > 0) {
    settle_holding(static_cast<uint64_t>(o.hold_s * 1e9));
    const uint64_t rss = meter.rss_kib().value_or(0);
    after = " held_after_hold=" + std::to_string(driver.held()) +
            " rss_after_hold_kib=" + std::to_string(rss);
    std::printf("stage held=%llu rss_kib=%llu after_hold_s=%.0f\n",
                static_cast<unsigned long long>(driver.held()),
                static_cast<unsigned long long>(rss), o.hold_s);
  }
  const ControlStats& st = driver.stats();
  std::printf(
      "result mode=hold held=%llu stages=%s slope_kib_per_alloc=%.3f slopes=%s%s "
      "client_sockets=%zu renewals=%llu renewals_failed=%llu renewal_late_max_ms=%.1f",
      static_cast<unsigned long long>(driver.held()), stages.c_str(), slope,
      slopes.empty() ? "none" : slopes.c_str(), after.c_str(), driver.socket_count(),
      static_cast<unsigned long long>(st.renewals),
      static_cast<unsigned long long>(st.renewals_failed),
      static_cast<double>(st.renewal_late_max_ns) / 1e6);
  print_control_stats(st);
  std::printf("\n");
  return complete && driver.stats().failed == 0 ? 0 : 1;
}

int run_storm_mode(const Options& o) {
  ControlDriver driver(o, Goal::kStorm);
  const Meter meter(o);
  const uint64_t rss_before = meter.rss_kib().value_or(0);
  driver.set_storm_budget(o.counts.front());
  const uint64_t t0 = now_ns();
  const bool complete = establish(driver, o.clients, deadline_from_now(o.timeout_s));
  const double took = static_cast<double>(now_ns() - t0) / 1e9;
  settle();
  const uint64_t rss_after = meter.rss_kib().value_or(0);
  const ControlStats& s = driver.stats();
  std::printf(
      "result mode=storm clients=%zu allocates=%llu refused=%llu allocated=%llu took_s=%.2f "
      "rss_before_kib=%llu rss_after_kib=%llu",
      o.clients, static_cast<unsigned long long>(s.storm_allocates),
      static_cast<unsigned long long>(s.storm_refused), static_cast<unsigned long long>(s.ready),
      took, static_cast<unsigned long long>(rss_before),
      static_cast<unsigned long long>(rss_after));
  print_control_stats(s);
  std::printf("\n");
  return complete ? 0 : 1;
}

int run_probe_mode(const Options& o) {
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = open_udp(local, &o.server, 0);
  if (fd < 0) return 1;
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t deadline = deadline_from_now(o.timeout_s);
  while (now_ns() < deadline && !stop_requested()) {
    stun::TransactionId tid{};
    for (auto& b : tid) b = static_cast<uint8_t>(rng());
    uint8_t req[64];
    stun::MessageBuilder builder(req, stun::Method::kBinding, stun::Class::kRequest, tid);
    builder.add_fingerprint();
    send(fd, req, builder.finish(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint8_t buf[1500];
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) continue;
    const auto msg = stun::MessageView::parse({buf, static_cast<size_t>(n)});
    if (!msg || msg->transaction_id() != tid || msg->cls() != stun::Class::kSuccess) continue;
    const auto mapped = msg->xor_address(stun::attr::kXorMappedAddress);
    const bool ok = mapped && *mapped == to_endpoint(bound);
    std::printf("result mode=probe mapped=%s expected=%s ok=%d\n",
                mapped ? mapped->to_string().c_str() : "none", to_string(bound).c_str(),
                ok ? 1 : 0);
    close(fd);
    return ok ? 0 : 1;
  }
  close(fd);
  std::printf("result mode=probe ok=0 (no Binding answer)\n");
  return 1;
}

}  // namespace callrelay::bench
