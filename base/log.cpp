#include "base/log.hpp"

#include <chrono>
#include <deque>
#include <mutex>
#include <span>

#include "base/log_json.hpp"
#include "base/log_writer.hpp"

namespace callrelay::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_format{static_cast<int>(Format::kText)};

/// The last warning and error lines, under one mutex (they are rare: never on the data path's
/// per-packet work).
struct Recent {
  std::mutex mutex;
  std::deque<RecentLine> lines;
};
Recent& recent() {
  // Never destroyed: the log writer may still report drops while statics are torn down at exit.
  static Recent* const r = new Recent;
  return *r;
}

int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void remember(int64_t unix_ms, Level l, std::string_view event, std::string_view message) {
  if (static_cast<int>(l) > static_cast<int>(Level::kWarn)) return;
  Recent& r = recent();
  const std::lock_guard lock(r.mutex);
  if (r.lines.size() == kRecentLines) r.lines.pop_front();
  r.lines.push_back(RecentLine{unix_ms, l, std::string(event), std::string(message)});
}

std::string_view text_prefix(Level l) {
  switch (l) {
    case Level::kError:
      return "error: ";
    case Level::kWarn:
      return "warning: ";
    case Level::kInfo:
      return "";
    case Level::kDebug:
      return "debug: ";
  }
  return "";
}

void append_value(std::string& out, const Field::Value& v) {
  if (const auto* s = std::get_if<std::string_view>(&v)) {
    append_json_string(out, *s);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out.append(std::to_string(*i));
  } else if (const auto* u = std::get_if<uint64_t>(&v)) {
    out.append(std::to_string(*u));
  } else if (const auto* d = std::get_if<double>(&v)) {
    append_json_number(out, *d);
  } else {
    out.append(std::get<bool>(v) ? "true" : "false");
  }
}

/// `{"time":"...","level":"..."`: the start every JSON line shares.
void append_json_head(std::string& out, int64_t unix_ms, Level l) {
  out.append("{\"time\":\"");
  out.append(rfc3339_ms(unix_ms));
  out.append("\",\"level\":\"");
  out.append(level_name(l));
  out.push_back('"');
}

/// The line as log.format wants it.
std::string format_line(int64_t unix_ms, Level l, std::string_view event,
                        std::span<const Field> fields, std::string_view message) {
  std::string out;
  if (format() == Format::kText) {
    out.append(text_prefix(l));
    out.append(message);
    return out;
  }
  out.reserve(96 + message.size() + 24 * fields.size());
  append_json_head(out, unix_ms, l);
  out.append(",\"event\":");
  append_json_string(out, event);
  for (const Field& f : fields) {
    out.push_back(',');
    append_json_string(out, f.key());
    out.push_back(':');
    append_value(out, f.value());
  }
  out.append(",\"message\":");
  append_json_string(out, message);
  out.push_back('}');
  return out;
}

std::string with_suppressed(std::string_view message, uint64_t suppressed) {
  std::string m(message);
  if (suppressed > 0) m += " (" + std::to_string(suppressed) + " similar lines left out)";
  return m;
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
  if (text == "error") return Level::kError;
  if (text == "warn" || text == "warning") return Level::kWarn;
  if (text == "info") return Level::kInfo;
  if (text == "debug") return Level::kDebug;
  return std::nullopt;
}

std::string_view level_name(Level l) {
  switch (l) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warn";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "info";
}

std::optional<Format> parse_format(std::string_view text) {
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  return std::nullopt;
}

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

void set_format(Format f) { g_format.store(static_cast<int>(f), std::memory_order_relaxed); }

Format format() { return static_cast<Format>(g_format.load(std::memory_order_relaxed)); }

void emit(Level l, std::string_view event, Fields fields, std::string_view message) {
  const int64_t now = unix_ms_now();
  write_line(format_line(now, l, event, {fields.begin(), fields.size()}, message));
  remember(now, l, event, message);
}

bool try_emit(Level l, std::string_view event, Fields fields, std::string_view message,
              uint64_t suppressed) {
  const int64_t now = unix_ms_now();
  const std::string text = with_suppressed(message, suppressed);
  std::string line;
  if (suppressed > 0) {
    std::vector<Field> more(fields);
    more.emplace_back("suppressed", suppressed);
    line = format_line(now, l, event, more, text);
  } else {
    line = format_line(now, l, event, {fields.begin(), fields.size()}, text);
  }
  if (!try_write_line(line)) return false;
  remember(now, l, event, text);
  return true;
}

void record(Level l, std::string_view json_object, std::string_view message) {
  constexpr std::string_view kHead = "{\"event\":";
  if (!json_object.starts_with(kHead) || !is_json_object(json_object)) {
    emit(l, "log.bad_record", {{"record", json_object}}, message);
    return;
  }
  const int64_t now = unix_ms_now();
  if (format() == Format::kText) {
    write_line(json_object);
  } else {
    // The record's members go between the shared head and the message; is_json_object
    // vouched for the closing brace being the last non-blank character.
    const size_t close = json_object.find_last_of('}');
    std::string out;
    append_json_head(out, now, l);
    out.push_back(',');
    out.append(json_object.substr(1, close - 1));
    out.append(",\"message\":");
    append_json_string(out, message);
    out.push_back('}');
    write_line(out);
  }
  remember(now, l, "record", message);
}

std::vector<RecentLine> recent_lines() {
  Recent& r = recent();
  const std::lock_guard lock(r.mutex);
  return {r.lines.begin(), r.lines.end()};
}

void clear_recent_lines() {
  Recent& r = recent();
  const std::lock_guard lock(r.mutex);
  r.lines.clear();
}

int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

bool RateLimit::allow(int64_t now_ms, uint64_t* suppressed) {
  int64_t start = window_start_.load(std::memory_order_relaxed);
  // The difference in unsigned arithmetic: the first window starts at INT64_MIN, and a signed
  // now_ms - start would overflow.
  const bool new_window =
      now_ms < start || static_cast<uint64_t>(now_ms) - static_cast<uint64_t>(start) >=
                            static_cast<uint64_t>(window_ms_);
  if (new_window) {
    // A new window: one thread wins the exchange and resets the count.
    if (window_start_.compare_exchange_strong(start, now_ms, std::memory_order_relaxed)) {
      used_.store(0, std::memory_order_relaxed);
    }
  }
  if (used_.fetch_add(1, std::memory_order_relaxed) >= lines_) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

bool try_write_line(std::string_view line) { return detail::append_line(line); }

void write_line(std::string_view line) { (void)detail::append_line(line); }

void flush() { detail::flush_lines(); }

bool flush_for(std::chrono::milliseconds limit) { return detail::flush_lines_for(limit); }

uint64_t dropped_lines() { return detail::dropped_total(); }

namespace detail {

std::string dropped_line(uint64_t count) {
  const int64_t now = unix_ms_now();
  const std::string message = concat(count, " log lines dropped: stderr took no more for a while");
  const Field lines("lines", count);
  std::string line = format_line(now, Level::kWarn, "log.dropped", {&lines, 1}, message);
  remember(now, Level::kWarn, "log.dropped", message);
  return line;
}

}  // namespace detail

}  // namespace callrelay::log
