// The service manager's notification protocol (sd_notify(3), libsystemd): READY once the
// listeners are bound, WATCHDOG pings while every worker heartbeats, STOPPING when a drain
// starts, STATUS lines for `systemctl status`. Every call is a no-op when the process was not
// started by a manager that listens (NOTIFY_SOCKET unset), so the binary runs the same anywhere.
#pragma once

#include <chrono>
#include <string_view>

namespace callrelay::app {

/// READY=1 (Type=notify units leave "activating" here) with a STATUS line.
void notify_ready(std::string_view status);
/// RELOADING=1: a configuration reload starts (notify_ready() when it is done).
void notify_reloading();
/// STOPPING=1: the process is draining and will exit.
void notify_stopping(std::string_view status);
/// STATUS=...: free text shown by `systemctl status`.
void notify_status(std::string_view status);
/// WATCHDOG=1: the process is alive (systemd restarts it when pings stop for WatchdogSec).
void notify_watchdog();
/// The interval the manager expects watchdog pings within (WatchdogSec), or zero when it
/// expects none.
std::chrono::microseconds watchdog_interval();

}  // namespace callrelay::app
