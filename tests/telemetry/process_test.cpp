// Process metrics: build info, uptime, worker threads, open descriptors, relay ports.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "base/log.hpp"
#include "telemetry/telemetry.hpp"
#include "tests/telemetry/telemetry_test_support.hpp"

namespace callrelay::telemetry {
namespace {

using testing::has_line;
using testing::value;

constexpr core::TimeMs kT0 = 1'700'000'000'000;

TEST(Process, BuildInfoUptimeWorkersPorts) {
  uint64_t in_use = 12;
  ProcessProbes p;
  p.version = "0.1.0";
  p.worker_threads = 4;
  p.relay_ports_total = 16384;
  p.relay_ports_in_use = [&in_use] { return in_use; };
  uint64_t tcp_peers = 3;
  p.tcp_peer_connections = [&tcp_peers] { return tcp_peers; };
  p.started_at = kT0;
  Telemetry t({}, 4, p);
  std::string text = t.scrape_text(kT0 + 90'500);
  EXPECT_TRUE(has_line(text, R"(callrelay_build_info{version="0.1.0"} 1)")) << text;
  EXPECT_TRUE(has_line(text, "callrelay_uptime_seconds 90.5"));
  EXPECT_TRUE(has_line(text, "callrelay_worker_threads 4"));
  EXPECT_TRUE(has_line(text, "callrelay_relay_ports_capacity 16384"));
  EXPECT_TRUE(has_line(text, "callrelay_relay_ports_in_use 12"));
  EXPECT_TRUE(has_line(text, "callrelay_tcp_peer_connections 3"));
  in_use = 13;
  tcp_peers = 0;
  text = t.scrape_text(kT0 + 91'000);
  EXPECT_TRUE(has_line(text, "callrelay_relay_ports_in_use 13"));
  EXPECT_TRUE(has_line(text, "callrelay_tcp_peer_connections 0"));
  EXPECT_TRUE(has_line(text, "callrelay_uptime_seconds 91"));
}

TEST(Process, OpenFdsFollowsTheProcess) {
  Telemetry t({}, 1, ProcessProbes{});
  const double before = *value(t.scrape_text(kT0), "callrelay_open_fds");
  EXPECT_GE(before, 3);  // at least stdin, stdout, stderr
  int fds[8];
  for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY);
  const double after = *value(t.scrape_text(kT0), "callrelay_open_fds");
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(after, before + 8);
}

TEST(Process, LogLinesDroppedWhileStderrTakesNone) {
  Telemetry t({}, 1, ProcessProbes{});
  const double before = *value(t.scrape_text(kT0), "callrelay_log_lines_dropped_total");
  EXPECT_EQ(before, static_cast<double>(log::dropped_lines()));
  // stderr a pipe nobody reads: the log's buffer fills and the lines past it are dropped.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  log::flush();
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(p[1], STDERR_FILENO);
  const std::string line(4000, 'x');
  int refused = 0;
  for (int i = 0; i < 100'000 && refused < 10; ++i) refused += log::try_write_line(line) ? 0 : 1;
  const double during = *value(t.scrape_text(kT0), "callrelay_log_lines_dropped_total");
  std::thread drain([&] {
    char buf[65536];
    while (::read(p[0], buf, sizeof buf) > 0) {
    }
  });
  log::flush();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(p[1]);
  drain.join();
  ::close(p[0]);
  EXPECT_EQ(refused, 10);
  EXPECT_EQ(during, before + 10);
}

TEST(Process, NoPortsProbeNoPortsInUseSample) {
  Telemetry t({}, 2, ProcessProbes{});
  const std::string text = t.scrape_text(kT0);
  EXPECT_EQ(text.find("callrelay_relay_ports_in_use"), std::string::npos);
  EXPECT_EQ(text.find("callrelay_tcp_peer_connections"), std::string::npos);
  EXPECT_TRUE(has_line(text, "callrelay_worker_threads 2"));  // from the worker count
}

}  // namespace
}  // namespace callrelay::telemetry
