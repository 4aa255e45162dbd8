#include "base/log.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace callrelay::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
}  // namespace

std::optional<Level> parse_level(std::string_view text) {
  if (text == "error") return Level::kError;
  if (text == "warn" || text == "warning") return Level::kWarn;
  if (text == "info") return Level::kInfo;
  if (text == "debug") return Level::kDebug;
  return std::nullopt;
}

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

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

bool try_write_line(std::string_view line) {
  pollfd p{STDERR_FILENO, POLLOUT, 0};
  // A regular file is always writable; a pipe or terminal only when it has room (a line under
  // PIPE_BUF then goes in whole without waiting).
  if (::poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) return false;
  write_line(line);
  return true;
}

void write_line(std::string_view line) {
  std::string buf;
  buf.reserve(line.size() + 1);
  buf.append(line);
  buf.push_back('\n');
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr gone: nothing sensible to do
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace callrelay::log
