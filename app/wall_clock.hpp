// The wall clock of the process: what the core consults for wall-defined times (REST
// usernames' expiry, revocations) and what logs stamp events with.
#pragma once

#include "relay/core/types.hpp"

namespace callrelay::app {

/// The system clock (CLOCK_REALTIME) in Unix milliseconds. It may step (NTP, an operator, a VM
/// resumed): only wall-defined facts are judged by it, never lifetimes or timers, which run on
/// relay/net's monotonic now_ms(). Stateless, so one instance serves every thread.
class SystemWallClock final : public core::WallClock {
 public:
  core::TimeMs unix_ms() const override;
};

}  // namespace callrelay::app
