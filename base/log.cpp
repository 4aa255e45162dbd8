#include "base/log.hpp"

#include <unistd.h>

#include <cerrno>

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
