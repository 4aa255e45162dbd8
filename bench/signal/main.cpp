// callrelay_signal_bench: signaling latency, throughput and memory of a running callrelay.
//
//   callrelay_signal_bench --server 127.0.0.1:PORT --secret SECRET --server-pid PID
//       [--connections 1000] [--calls 500] [--rate 200] [--window 4] [--burst 5]
//       [--warmup 1] [--settle 1] [--concurrency 100] [--timeout 60] [--quickack]
//       [--linger SECONDS] [--callee-server 127.0.0.1:PORT2]
//
// Phases: N devices connect (JWTs minted here with calls.token_secret); `calls` callers invite
// one callee each at --rate per second and the callees ring; the callees accept at --rate, the
// calls negotiate and become active; every device then sends candidates with --window in
// flight for --burst seconds (after --warmup); callers hang up; every device closes. Prints a
// Markdown table: latencies (the bench's own handling included, on loopback), messages/s,
// the server's CPU, and its VmRSS at the edges of the phases. Not a test: it prints figures.
// --linger reads the server's VmRSS once more that long after the devices closed (past
// calls.grace_s, when the server has forgotten them). --quickack makes the devices acknowledge TCP
// segments at once (a diagnostic: the difference is the time the server's small writes wait for
// delayed ACKs). --callee-server connects the callees to another instance of the same cluster
// (cluster.redis_url), so that every call is set up across instances.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench/common/common.hpp"
#include "bench/signal/scenario.hpp"

namespace {

using callrelay::bench::now_ns;
using callrelay::bench::read_process_cpu_s;
using callrelay::bench::read_vmrss_kib;
namespace sig = callrelay::bench::signal;

/// Nearest-rank percentile (q in 0..1) in microseconds.
double percentile_us(sig::Samples samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  return static_cast<double>(samples[rank]) / 1e3;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void row(const std::string& figure, const std::string& value) {
  std::cout << "| " << figure << " | " << value << " |\n";
}

std::string mib(std::optional<uint64_t> kib) {
  return kib ? fixed(static_cast<double>(*kib) / 1024.0, 1) : "n/a";
}

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

struct Cpu {
  int server_pid;
  double server_s = 0, self_s = 0, wall_s = 0;
  void sample() {
    server_s = read_process_cpu_s(server_pid).value_or(0);
    self_s = read_process_cpu_s(getpid()).value_or(0);
    wall_s = static_cast<double>(now_ns()) / 1e9;
  }
};

asio::ip::tcp::endpoint parse_endpoint(const std::string& text) {
  const sockaddr_in a = callrelay::bench::parse_addr(text);
  return {asio::ip::make_address_v4(ntohl(a.sin_addr.s_addr)), ntohs(a.sin_port)};
}

int run(int argc, char** argv) {
  callrelay::bench::Args args(argc, argv);
  sig::Options o;
  o.server = parse_endpoint(args.str("server", "127.0.0.1:9641"));
  if (const std::string callee = args.str("callee-server", ""); !callee.empty())
    o.callee_server = parse_endpoint(callee);
  o.secret = args.str("secret", "");
  o.connections = static_cast<size_t>(args.num("connections", 1000));
  o.calls = static_cast<size_t>(args.num("calls", static_cast<double>(o.connections / 2)));
  o.call_rate = args.num("rate", 200);
  o.window = static_cast<size_t>(args.num("window", 4));
  o.connect_concurrency = static_cast<size_t>(args.num("concurrency", 100));
  o.timeout_s = args.num("timeout", 60);
  o.quick_ack = args.flag("quickack");
  const int pid = static_cast<int>(args.num("server-pid", 0));
  const double burst_s = args.num("burst", 5), warmup_s = args.num("warmup", 1);
  const double settle_s = args.num("settle", 1);
  const double linger_s = args.num("linger", 0);
  args.finish();
  if (o.secret.empty()) throw std::invalid_argument("--secret (calls.token_secret) is required");
  if (pid <= 0 || !read_vmrss_kib(pid)) {
    throw std::invalid_argument("--server-pid must name the running callrelay process");
  }
  if (o.call_rate <= 0 || o.window == 0 || burst_s <= 0) {
    throw std::invalid_argument("--rate, --window and --burst must be positive");
  }
  callrelay::bench::raise_fd_limit();

  const auto rss_idle = read_vmrss_kib(pid);
  sig::Scenario scenario(o);
  const double connect_s = scenario.connect_all();
  sleep_s(settle_s);
  const auto rss_connected = read_vmrss_kib(pid);
  sig::Samples invite_ack, invite_delivered, accept_accepted;
  const uint64_t t_invite = now_ns();
  scenario.invite_all(invite_ack, invite_delivered);
  const double invite_s = static_cast<double>(now_ns() - t_invite) / 1e9;
  sleep_s(settle_s);
  const auto rss_ringing = read_vmrss_kib(pid);
  const uint64_t t_accept = now_ns();
  scenario.accept_all(accept_accepted);
  const double accept_s = static_cast<double>(now_ns() - t_accept) / 1e9;

  scenario.start_burst();
  sleep_s(warmup_s);
  Cpu c0{pid}, c1{pid};
  c0.sample();
  const sig::BurstFigures b0 = scenario.burst_counters();
  sleep_s(burst_s);
  c1.sample();
  const sig::BurstFigures b1 = scenario.burst_counters();
  scenario.stop_burst();
  const auto rss_burst = read_vmrss_kib(pid);
  scenario.hangup_all();
  scenario.close_all();
  sleep_s(settle_s);
  const auto rss_closed = read_vmrss_kib(pid);
  std::optional<uint64_t> rss_lingered;
  if (linger_s > 0) {
    sleep_s(linger_s);
    rss_lingered = read_vmrss_kib(pid);
  }

  const double wall = c1.wall_s - c0.wall_s;
  const auto acked = static_cast<double>(b1.acked - b0.acked);
  const auto forwarded = static_cast<double>(b1.forwarded - b0.forwarded);
  const double server_cpu = c1.server_s - c0.server_s;
  std::cout << "| figure | value |\n|---|---:|\n";
  row("connections (each got its welcome)",
      std::to_string(o.connections) + " in " + fixed(connect_s, 2) + " s (" +
          fixed(static_cast<double>(o.connections) / connect_s, 0) + "/s, " +
          std::to_string(o.connect_concurrency) + " upgrades at a time)");
  row("calls ringing (invites sent at " + fixed(o.call_rate, 0) + "/s)", std::to_string(o.calls));
  const auto pair = [](const sig::Samples& s) {
    return fixed(percentile_us(s, 0.5), 0) + " / " + fixed(percentile_us(s, 0.99), 0);
  };
  row("invite sent -> callee receives invite, p50 / p99 (us)", pair(invite_delivered));
  row("invite sent -> caller receives ack, p50 / p99 (us)", pair(invite_ack));
  row("accept sent -> caller receives accepted, p50 / p99 (us)", pair(accept_accepted));
  row("calls set up per second (invites and accepts at " + fixed(o.call_rate, 0) +
          "/s; ringing, then active on both sides)",
      fixed(static_cast<double>(o.calls) / (invite_s + accept_s), 0));
  row("burst: client messages handled/s (candidates acked)", fixed(acked / wall, 0));
  row("burst: server messages sent/s (acks + forwarded candidates)",
      fixed((acked + forwarded) / wall, 0));
  row("burst: candidates answered with an error", std::to_string(b1.errors - b0.errors));
  row("burst: server CPU (cores) / per client message (us)",
      fixed(server_cpu / wall, 2) + " / " +
          (acked > 0 ? fixed(server_cpu / acked * 1e6, 1) : "n/a"));
  row("burst: bench client CPU (cores)", fixed((c1.self_s - c0.self_s) / wall, 2));
  row("server RSS idle (MiB)", mib(rss_idle));
  row("server RSS with " + std::to_string(o.connections) + " connections (MiB)",
      mib(rss_connected));
  row("server RSS with " + std::to_string(o.calls) + " calls ringing (MiB)", mib(rss_ringing));
  row("server RSS after the burst / after closing all (MiB)",
      mib(rss_burst) + " / " + mib(rss_closed));
  if (linger_s > 0) {
    row("server RSS " + fixed(linger_s, 0) + " s after closing all (MiB)", mib(rss_lingered));
  }
  if (rss_idle && rss_connected && rss_ringing) {
    const auto per = [](uint64_t a, uint64_t b, size_t n) {
      return fixed((static_cast<double>(b) - static_cast<double>(a)) / static_cast<double>(n), 1);
    };
    row("server RSS per connection (KiB)", per(*rss_idle, *rss_connected, o.connections));
    row("server RSS per ringing call (KiB)", per(*rss_connected, *rss_ringing, o.calls));
  }
  row("error messages from the server (all phases)", std::to_string(scenario.error_count()));
  for (const auto& p : scenario.problems()) std::cerr << "note: " << p << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "callrelay_signal_bench: " << e.what() << "\n";
    return 1;
  }
}
