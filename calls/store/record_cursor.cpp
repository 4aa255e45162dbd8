// The keyset cursor of GET /api/v1/calls: opaque to clients, strict to parse.
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "calls/core/base64url.hpp"
#include "calls/store/sqlite_store.hpp"

namespace callrelay::calls {

namespace {

constexpr size_t kMaxCursorChars = 2048;
constexpr size_t kMaxIdBytes = 1024;

[[noreturn]] void bad_cursor(const char* why) {
  throw std::invalid_argument(std::string("malformed cursor: ") + why);
}

/// Canonical decoding only (calls/core/base64url.hpp): one text per cursor.
std::string unbase64url(std::string_view text) {
  auto bytes = base64url_decode(text, /*canonical=*/true);
  if (!bytes) bad_cursor("not canonical base64url");
  return std::move(*bytes);
}

}  // namespace

std::string encode_record_cursor(TimeMs created, std::string_view id) {
  return base64url_encode("1:" + std::to_string(created) + ":" + std::string(id));
}

std::pair<TimeMs, std::string> decode_record_cursor(std::string_view cursor) {
  if (cursor.empty()) bad_cursor("empty");
  if (cursor.size() > kMaxCursorChars) bad_cursor("too long");
  const std::string text = unbase64url(cursor);
  // "1:<created>:<id>"; the leading version leaves room for another key later.
  if (text.size() < 2 || text[0] != '1' || text[1] != ':') bad_cursor("unknown version");
  const size_t colon = text.find(':', 2);
  if (colon == std::string::npos) bad_cursor("no id");
  TimeMs created = 0;
  const char* first = text.data() + 2;
  const char* last = text.data() + colon;
  auto [end, ec] = std::from_chars(first, last, created);
  if (first == last || ec != std::errc() || end != last) bad_cursor("bad time");
  std::string id = text.substr(colon + 1);
  if (id.empty() || id.size() > kMaxIdBytes) bad_cursor("bad id");
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) bad_cursor("bad id");
  }
  return {created, std::move(id)};
}

}  // namespace callrelay::calls
