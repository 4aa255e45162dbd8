// A tiny leveled, structured logger to stderr: one line per call. A call formats its line and
// copies it into a bounded buffer; one writer thread writes the buffer to stderr in as few
// write(2) calls as it can (base/log_writer.hpp), so a worker never waits on a slow log reader
// and lines from several threads are never interleaved or split. Every line names its event and
// carries typed fields; `log.format` picks how it is written:
//   text  the human message, as journald wants it (no timestamp: journald adds one);
//         warnings and errors prefixed "warning: " / "error: ", debug lines "debug: ".
//   json  one JSON object per line (RFC 8259): {"time":"<RFC 3339 UTC, ms>","level":"info",
//         "event":"listener.bound", ...fields, "message":"<the human text>"}.
// Off the hot path except debug-level socket errors, which are filtered by level before any
// formatting. Fields and messages never carry a secret, a key or a password: call sites pass
// names (an API key's name, a user name), never the credential itself.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/limits.hpp"

namespace callrelay::log {

enum class Level : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

/// How lines are written (log.format).
enum class Format : int { kText = 0, kJson = 1 };

/// Parses "error", "warn", "info", "debug"; nullopt otherwise.
std::optional<Level> parse_level(std::string_view text);
/// "error", "warn", "info", "debug": the level as JSON lines and the admin API name it.
std::string_view level_name(Level level);
/// Parses "text", "json"; nullopt otherwise.
std::optional<Format> parse_format(std::string_view text);

/// Messages above this level are dropped. Default kInfo.
void set_level(Level level);
Level level();
inline bool enabled(Level l) { return static_cast<int>(l) <= static_cast<int>(level()); }

/// The line format; default kText. Any thread (a reload switches it while workers log).
void set_format(Format format);
Format format();

/// One named value of a structured line: a string, an integer, a number or a boolean. Holds a
/// view of its key and string value, so it lives only as long as the log call's expression
/// (temporaries such as `ep.to_string()` are fine). Keys are snake_case literals and never
/// "time", "level", "event" or "message", which every line has already.
class Field {
 public:
  using Value = std::variant<std::string_view, int64_t, uint64_t, double, bool>;

  Field(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value) : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, const std::string& value)
      : key_(key), value_(std::string_view(value)) {}
  Field(std::string_view key, double value) : key_(key), value_(value) {}
  template <std::integral T>
  Field(std::string_view key, T value) : key_(key), value_(integral(value)) {}

  std::string_view key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  template <std::integral T>
  static Value integral(T v) {
    if constexpr (std::same_as<T, bool>) {
      return v;
    } else if constexpr (std::signed_integral<T>) {
      return static_cast<int64_t>(v);
    } else {
      return static_cast<uint64_t>(v);
    }
  }

  std::string_view key_;
  Value value_;
};

/// The fields of one line, written in this order after "event".
using Fields = std::initializer_list<Field>;

/// Writes one line at level `l` whatever the configured level (the level functions below check
/// it first; call emit directly for lines that are a contract, like "listening ..." and
/// "ready"): event name, fields and the human message, in the configured format. Warnings and
/// errors are also kept for recent_lines().
void emit(Level l, std::string_view event, Fields fields, std::string_view message);

/// Writes a record that is already one JSON object whose first member is "event" (an
/// allocation's end) at level `l`: as it is in text mode; in json mode merged into the line's
/// object, {"time":...,"level":..., the record's members..., "message":...}, not nested as a
/// string. Anything else is written as the string field "record" of a "log.bad_record" line.
void record(Level l, std::string_view json_object, std::string_view message);

/// Queues `line` plus a newline for stderr, as it is: the building block of every line. Never
/// waits on stderr: when the buffer is full (stderr has taken nothing for a while) the line is
/// dropped and counted, and a "log.dropped" warning with the count follows once stderr takes
/// lines again. Call emit() or the level functions instead, which honour log.format.
void write_line(std::string_view line);

/// Blocks until every line queued before the call is written to stderr. Called at shutdown and
/// by an exit hook (a normal exit loses nothing), before a fatal exit, and by tests that read
/// what stderr got.
void flush();

/// As flush(), waiting at most `limit`: false when stderr has not taken every line by then (the
/// rest stay queued). For a caller that must go on even when stderr is stuck.
bool flush_for(std::chrono::milliseconds limit);

/// Lines dropped because the buffer was full, since the process started (the metric
/// callrelay_log_lines_dropped_total).
uint64_t dropped_lines();

/// The message text: the arguments written with operator<<.
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

/// The level functions: event name, fields, then the message's pieces (joined with <<), e.g.
///   log::info("listener.bound", {{"transport", "udp"}, {"address", a}}, "listening udp ", a);
/// Nothing is formatted when the level is off.
template <typename... Args>
void error(std::string_view event, Fields fields, const Args&... message) {
  if (enabled(Level::kError)) emit(Level::kError, event, fields, concat(message...));
}
template <typename... Args>
void warn(std::string_view event, Fields fields, const Args&... message) {
  if (enabled(Level::kWarn)) emit(Level::kWarn, event, fields, concat(message...));
}
template <typename... Args>
void info(std::string_view event, Fields fields, const Args&... message) {
  if (enabled(Level::kInfo)) emit(Level::kInfo, event, fields, concat(message...));
}
template <typename... Args>
void debug(std::string_view event, Fields fields, const Args&... message) {
  if (enabled(Level::kDebug)) emit(Level::kDebug, event, fields, concat(message...));
}

/// One of the last warning or error lines, for the admin status (recent_errors).
struct RecentLine {
  int64_t unix_ms;  ///< wall time the line was written
  Level level;
  std::string event;
  std::string message;
};

/// How many warning and error lines recent_lines() keeps.
inline constexpr size_t kRecentLines = 50;

/// The last kRecentLines warning and error lines written (those the level let through), oldest
/// first. Thread-safe; bounded memory.
std::vector<RecentLine> recent_lines();

/// Forgets the recent lines (tests).
void clear_recent_lines();

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

/// write_line() that says whether the line was taken: false when the buffer had no room (the
/// line is dropped and counted).
bool try_write_line(std::string_view line);

/// emit() through try_write_line(): false when the buffer could not take the line now.
/// `suppressed` > 0 adds the field "suppressed" and says in the message how many similar
/// lines were left out before this one.
bool try_emit(Level l, std::string_view event, Fields fields, std::string_view message,
              uint64_t suppressed);

/// A line through `limit` at level `l` that never blocks: lines over the budget, or that stderr
/// cannot take now, are counted in `counters` (kLogSuppressed; null: not counted). The first
/// line after a suppression says how many were left out.
template <typename... Args>
void limited(RateLimit& limit, base::LimitCounters* counters, Level l, std::string_view event,
             Fields fields, const Args&... message) {
  if (!enabled(l)) return;
  uint64_t suppressed = 0;
  if (!limit.allow(monotonic_ms(), &suppressed)) {
    if (counters != nullptr) counters->hit(base::Limit::kLogSuppressed);
    return;
  }
  if (!try_emit(l, event, fields, concat(message...), suppressed) && counters != nullptr)
    counters->hit(base::Limit::kLogSuppressed);
}

}  // namespace callrelay::log
