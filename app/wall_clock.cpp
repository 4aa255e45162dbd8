#include "app/wall_clock.hpp"

#include <chrono>

namespace callrelay::app {

core::TimeMs SystemWallClock::unix_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace callrelay::app
