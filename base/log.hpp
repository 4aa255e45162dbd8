// A tiny leveled logger to stderr: one line per call, written with a single write(2) so lines
// from several worker threads do not interleave. Off the hot path except debug-level socket
// errors, which are filtered by level before any formatting.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "base/limits.hpp"

namespace callrelay::log {

enum class Level : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

/// Parses "error", "warn", "info", "debug"; nullopt otherwise.
std::optional<Level> parse_level(std::string_view text);

/// Messages above this level are dropped. Default kInfo.
void set_level(Level level);
Level level();
inline bool enabled(Level l) { return static_cast<int>(l) <= static_cast<int>(level()); }

/// Writes `line` plus a newline to stderr in one system call.
void write_line(std::string_view line);

/// Formats the arguments with operator<< and writes them as one line if `l` is enabled.
template <typename... Args>
void print(Level l, const Args&... args) {
  if (!enabled(l)) return;
  std::ostringstream out;
  (out << ... << args);
  write_line(out.str());
}

/// A budget of log lines for input from unauthenticated sources (garbage on a connection, a
/// refused connection), which an attacker controls: at most `lines` per `window_ms`, the rest
/// left out and counted. Lock-free; any thread.
class RateLimit {
 public:
  RateLimit(uint32_t lines, int64_t window_ms) : lines_(lines), window_ms_(window_ms) {}
  /// Whether a line may be written now (`now_ms`: any monotonic milliseconds). On true,
  /// `*suppressed` holds how many were left out since the previous line written.
  bool allow(int64_t now_ms, uint64_t* suppressed);

 private:
  const uint32_t lines_;
  const int64_t window_ms_;
  std::atomic<int64_t> window_start_{INT64_MIN};
  std::atomic<uint32_t> used_{0};
  std::atomic<uint64_t> suppressed_{0};
};

/// Monotonic milliseconds for RateLimit (the steady clock).
int64_t monotonic_ms();

/// Writes `line` plus a newline to stderr only if that cannot block (stderr is a pipe or
/// terminal that is not writable now: the line is dropped and false returned). For the data
/// path's threads, which must never wait on a slow log reader.
bool try_write_line(std::string_view line);

/// Formats and writes one line through `limit` at level `l` without ever blocking: lines over
/// the budget, or that stderr cannot take now, are counted in `counters` (kLogSuppressed; null:
/// not counted). The first line after a suppression says how many were left out.
template <typename... Args>
void limited(RateLimit& limit, base::LimitCounters* counters, Level l, const Args&... args) {
  if (!enabled(l)) return;
  uint64_t suppressed = 0;
  if (!limit.allow(monotonic_ms(), &suppressed)) {
    if (counters != nullptr) counters->hit(base::Limit::kLogSuppressed);
    return;
  }
  std::ostringstream out;
  if (l == Level::kWarn) out << "warning: ";
  (out << ... << args);
  if (suppressed > 0) out << " (" << suppressed << " similar lines left out)";
  if (!try_write_line(out.str()) && counters != nullptr) counters->hit(base::Limit::kLogSuppressed);
}

template <typename... Args>
void error(const Args&... a) {
  print(Level::kError, "error: ", a...);
}
template <typename... Args>
void warn(const Args&... a) {
  print(Level::kWarn, "warning: ", a...);
}
template <typename... Args>
void info(const Args&... a) {
  print(Level::kInfo, a...);
}
template <typename... Args>
void debug(const Args&... a) {
  print(Level::kDebug, "debug: ", a...);
}

}  // namespace callrelay::log
