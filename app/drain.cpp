#include "app/drain.hpp"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>

#include "app/notify.hpp"
#include "base/log.hpp"

namespace callrelay::app {
namespace {

/// How often the loop wakes without a signal: drain progress, watchdog, status.
constexpr long kTickNs = 200'000'000;
/// How often `systemctl status` learns a drain's progress.
constexpr core::TimeMs kStatusEveryMs = 5000;

}  // namespace

Drain::Drain(uint32_t default_deadline_s, std::function<void()> begin)
    : default_deadline_s_(default_deadline_s), begin_(std::move(begin)) {}

uint32_t Drain::start(std::optional<uint32_t> deadline_s, core::TimeMs now) {
  bool first = false;
  core::TimeMs deadline = 0;
  {
    const std::lock_guard lock(mu_);
    const core::TimeMs wanted =
        now + core::ms_from_seconds(deadline_s.value_or(default_deadline_s_));
    if (!started_) {
      started_ = first = true;
      started_at_ = now;
      deadline_ = wanted;
    } else {
      deadline_ = std::min(deadline_, wanted);
    }
    deadline = deadline_;
  }
  if (first && begin_) begin_();
  return static_cast<uint32_t>(std::max<core::TimeMs>(0, deadline - now) / 1000);
}

bool Drain::started() const {
  const std::lock_guard lock(mu_);
  return started_;
}

core::TimeMs Drain::started_at() const {
  const std::lock_guard lock(mu_);
  return started_at_;
}

core::TimeMs Drain::deadline() const {
  const std::lock_guard lock(mu_);
  return deadline_;
}

SignalLoop::SignalLoop() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  const auto every = watchdog_interval();
  // sd_watchdog_enabled(3): ping at half the interval; a quarter leaves room for a slow tick.
  if (every.count() > 0)
    watchdog_every_ms_ = std::max<core::TimeMs>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(every).count() / 4);
}

StopCause SignalLoop::run(Drain& drain, const ServerHooks& hooks) {
  for (;;) {
    const timespec tick{0, kTickNs};
    const int sig = sigtimedwait(&signals_, nullptr, &tick);
    if (sig > 0) {
      if (auto stop = on_signal(sig, drain, hooks)) return *stop;
    }
    const core::TimeMs now = hooks.now();
    keep_alive(drain, hooks, now);
    if (!drain.started()) continue;
    // Drained once every worker has ticked since the drain began (so each has refused new
    // Allocates and published a fresh count) and none has an allocation left.
    if (hooks.oldest_heartbeat() > drain.started_at() && hooks.allocations() == 0) {
      log::info("drain.done", {}, "drain: every allocation has ended");
      return StopCause::kDrained;
    }
    if (now >= drain.deadline()) {
      const uint64_t left = hooks.allocations();
      log::info("drain.deadline", {{"allocations_left", left}}, "drain: deadline reached with ",
                left, " allocation(s) left; ending them");
      hooks.end_remaining();
      return StopCause::kDeadline;
    }
  }
}

std::optional<StopCause> SignalLoop::on_signal(int sig, Drain& drain, const ServerHooks& hooks) {
  if (sig == SIGHUP) {
    if (reload_) {
      reload_();
    } else {
      log::warn("reload.unsupported", {{"signal", "SIGHUP"}},
                "SIGHUP: this server cannot reload its configuration; ignored");
    }
    return std::nullopt;
  }
  if (sig == SIGINT) {
    log::info("server.signal", {{"signal", "SIGINT"}, {"action", "stop"}}, "SIGINT: stopping now");
    return StopCause::kSignal;
  }
  // SIGTERM. The second stops at once; the first drains, or lets a drain the admin endpoint
  // started run on (a service manager's stop after an operator's drain must not cut it short).
  if (sigterm_seen_) {
    log::info("server.signal", {{"signal", "SIGTERM"}, {"action", "stop"}},
              "SIGTERM while draining: stopping now");
    return StopCause::kSignal;
  }
  sigterm_seen_ = true;
  const bool already = drain.started();
  const uint32_t left = drain.start(std::nullopt, hooks.now());
  log::info("drain.started",
            {{"signal", "SIGTERM"}, {"already_draining", already}, {"deadline_s", left}},
            already ? "SIGTERM: already draining" : "SIGTERM: draining",
            ": new allocations are refused, live ones relay until they end or for ", left,
            " s at most (a second SIGTERM stops at once)");
  return std::nullopt;
}

void SignalLoop::keep_alive(const Drain& drain, const ServerHooks& hooks, core::TimeMs now) {
  if (watchdog_every_ms_ > 0 && now >= next_ping_) {
    const core::TimeMs age = now - hooks.oldest_heartbeat();
    if (age <= kHeartbeatStaleMs) {
      notify_watchdog();
      next_ping_ = now + watchdog_every_ms_;
      stalled_logged_ = false;
    } else if (!stalled_logged_) {
      // No ping: the service manager restarts the process when its watchdog runs out.
      log::error("watchdog.stalled", {{"stalled_ms", age}}, "a relay worker has not ticked for ",
                 age, " ms: watchdog pings stop");
      stalled_logged_ = true;
    }
  }
  if (drain.started() && now >= next_status_) {
    next_status_ = now + kStatusEveryMs;
    notify_status("draining: " + std::to_string(hooks.allocations()) +
                  " allocation(s) left, deadline in " +
                  std::to_string(std::max<core::TimeMs>(0, drain.deadline() - now) / 1000) + " s");
  }
}

}  // namespace callrelay::app
