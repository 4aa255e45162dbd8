#include "app/notify.hpp"

#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "base/log.hpp"

namespace callrelay::app {
namespace {

void send(const std::string& state) {
  // 0: keep NOTIFY_SOCKET in the environment (the watchdog keeps pinging through it). A
  // failed send is nothing to act on: the manager, if any, sees the missing ping.
  (void)sd_notify(0, state.c_str());
}

std::string status_line(std::string_view status) {
  std::string s = "STATUS=";
  for (const char c : status) s.push_back(c == '\n' ? ' ' : c);  // one line per field
  return s;
}

/// The log's lines are written by a background thread: the ones logged before a change of state
/// reach stderr before the service manager hears of it, so whoever sees the unit active (or
/// stopping) also finds, in its journal, the lines that led there. Bounded: a stderr nobody
/// reads must not keep the manager from hearing it.
void flush_log() { (void)log::flush_for(std::chrono::seconds(1)); }

}  // namespace

void notify_ready(std::string_view status) {
  flush_log();
  send("READY=1\n" + status_line(status));
}

void notify_reloading() { send("RELOADING=1"); }

void notify_stopping(std::string_view status) {
  flush_log();
  send("STOPPING=1\n" + status_line(status));
}

void notify_status(std::string_view status) { send(status_line(status)); }

void notify_watchdog() { send("WATCHDOG=1"); }

std::chrono::microseconds watchdog_interval() {
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set for this very process (WATCHDOG_PID matches).
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds{0};
  return std::chrono::microseconds{static_cast<int64_t>(usec)};
}

}  // namespace callrelay::app
