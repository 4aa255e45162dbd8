// The exposition with every kind of metric populated passes `promtool check metrics` (syntax and
// the Prometheus naming lints). promtool comes with Debian's prometheus package, which
// scripts/install-deps.sh installs: a missing promtool is a failure, not a skip.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

using testing::fake_allocation;
using testing::relay;

constexpr core::TimeMs kT0 = 1'700'000'000'000;

/// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> promtool_check(const std::string& text) {
  char in_path[] = "/tmp/callrelay-metrics-XXXXXX";
  const int fd = mkstemp(in_path);
  if (fd < 0) return {-1, "mkstemp failed"};
  std::FILE* f = fdopen(fd, "w");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  const std::string out_path = std::string(in_path) + ".out";
  const std::string cmd =
      std::string(CALLRELAY_PROMTOOL) + " check metrics < " + in_path + " > " + out_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream out(out_path);
  std::string output((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  std::remove(in_path);
  std::remove(out_path.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(Promtool, AcceptsTheFullExposition) {
  ProcessProbes p;
  p.version = "0.1.0";
  p.relay_ports_total = 1000;
  p.relay_ports_in_use = [] { return uint64_t{2}; };
  p.started_at = kT0;
  Telemetry t({}, 2, p);
  core::Observer* w0 = t.observer_for_worker(0);
  core::Observer* w1 = t.observer_for_worker(1);
  auto a = fake_allocation(1, "alice", kT0);
  auto b = fake_allocation(1, "b\"o\\b\n", kT0, core::Transport::kTls, stun::Family::kIPv6);
  auto c = fake_allocation(2, "carol", kT0);
  w0->on_allocation_created(*a);
  w1->on_allocation_created(*b);
  w0->on_allocation_created(*c);
  relay(*a, 123'456, 654'321, 100);
  relay(*c, 1, 2);
  w0->on_allocation_ended(*c, core::EndReason::kRefreshZero, kT0 + 5000);
  w0->on_request(stun::Method::kAllocate, core::Transport::kUdp, 401);
  w1->on_request(stun::Method::kBinding, core::Transport::kTls, 0);
  w0->on_auth_failure(core::AuthFailure::kBadIntegrity);
  w0->on_peer_denied(core::PeerDenyReason::kReserved);
  w1->on_drop(core::DropReason::kNoChannel);
  t.tick(kT0 + 5000);
  const auto [status, output] = promtool_check(t.scrape_text(kT0 + 5000));
  EXPECT_EQ(status, 0) << CALLRELAY_PROMTOOL << " check metrics:\n" << output;
  EXPECT_EQ(output, "");  // no lint warnings either
  w0->on_allocation_ended(*a, core::EndReason::kShutdown, kT0 + 6000);
  w1->on_allocation_ended(*b, core::EndReason::kShutdown, kT0 + 6000);
}

TEST(Promtool, AcceptsTheExpositionWithPerAllocationSeriesOff) {
  TelemetryConfig cfg;
  cfg.per_allocation_enabled = false;
  Telemetry t(cfg, 1, ProcessProbes{});
  const auto [status, output] = promtool_check(t.scrape_text(kT0));
  EXPECT_EQ(status, 0) << output;
}

}  // namespace
}  // namespace callrelay::telemetry
