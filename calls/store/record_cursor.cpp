// The keyset cursor of GET /api/v1/calls: opaque to clients, strict to parse.
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "calls/store/sqlite_store.hpp"

namespace callrelay::calls {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kMaxCursorChars = 2048;
constexpr size_t kMaxIdBytes = 1024;

/// RFC 4648 section 5 (base64url), without padding (section 3.2).
std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

[[noreturn]] void bad_cursor(const char* why) {
  throw std::invalid_argument(std::string("malformed cursor: ") + why);
}

/// Canonical decoding only: an alphabet character outside base64url, padding, a length that
/// cannot end a quantum, or non-zero trailing bits (RFC 4648 section 3.5) are refused.
std::string unbase64url(std::string_view text) {
  if (text.size() % 4 == 1) bad_cursor("truncated");
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = sextet(c);
    if (v < 0) bad_cursor("not base64url");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) bad_cursor("not canonical base64url");
  return out;
}

}  // namespace

std::string encode_record_cursor(TimeMs created, std::string_view id) {
  return base64url("1:" + std::to_string(created) + ":" + std::string(id));
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
