// A tiny leveled logger to stderr: one line per call, written with a single write(2) so lines
// from several worker threads do not interleave. Off the hot path except debug-level socket
// errors, which are filtered by level before any formatting.
#pragma once

#include <atomic>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

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
