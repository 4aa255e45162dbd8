#include "base/log_json.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace callrelay::log {
namespace {

/// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629 section 4: no
/// overlong forms, no surrogates, nothing above U+10FFFF), or 0 if it is not one.
size_t utf8_sequence(std::string_view s) {
  const auto b = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && b(i) >= lo && b(i) <= hi;
  };
  const unsigned c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1, 0x80, 0xbf) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const unsigned lo = c == 0xe0 ? 0xa0 : 0x80;  // E0: overlong below A0
    const unsigned hi = c == 0xed ? 0x9f : 0xbf;  // ED: A0.. would be a surrogate
    return cont(1, lo, hi) && cont(2, 0x80, 0xbf) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const unsigned lo = c == 0xf0 ? 0x90 : 0x80;  // F0: overlong below 90
    const unsigned hi = c == 0xf4 ? 0x8f : 0xbf;  // F4: above U+10FFFF from 90
    return cont(1, lo, hi) && cont(2, 0x80, 0xbf) && cont(3, 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

/// A strict recursive-descent reader of RFC 8259 values that only says whether they are well
/// formed. Depth is bounded so no input can exhaust the stack.
class Validator {
 public:
  explicit Validator(std::string_view s) : s_(s) {}

  bool object_only() {
    ws();
    if (!peek('{') || !value(0)) return false;
    ws();
    return pos_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool eat(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }
  bool number() {  // RFC 8259 section 6
    eat('-');
    if (!eat('0') && !digits()) return false;
    if (eat('.') && !digits()) return false;
    if (eat('e') || eat('E')) {
      if (!eat('+')) eat('-');
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {  // RFC 8259 section 7
    if (!eat('"')) return false;
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++pos_ >= s_.size()) return false;
        const char e = s_[pos_++];
        if (e == 'u') {
          for (int i = 0; i < 4; ++i, ++pos_)
            if (pos_ >= s_.size() || std::isxdigit(static_cast<unsigned char>(s_[pos_])) == 0)
              return false;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
        continue;
      }
      const size_t n = utf8_sequence(s_.substr(pos_));
      if (n == 0) return false;
      pos_ += n;
    }
    return false;
  }
  template <typename Member>
  bool sequence(char close, int depth, Member member) {
    ws();
    if (eat(close)) return true;
    do {
      ws();
      if (!member(depth)) return false;
      ws();
    } while (eat(','));
    return eat(close);
  }
  bool value(int depth) {
    if (depth > kMaxDepth || pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{':
        ++pos_;
        return sequence('}', depth, [this](int d) {
          if (!string()) return false;
          ws();
          return eat(':') && (ws(), value(d + 1));
        });
      case '[':
        ++pos_;
        return sequence(']', depth, [this](int d) { return value(d + 1); });
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out.append(buf);
    } else if (c >= 0x80) {
      const size_t n = utf8_sequence(s.substr(i));
      if (n == 0) {
        out.append("\\ufffd");
        ++i;
        continue;
      }
      out.append(s.substr(i, n));
      i += n;
      continue;
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  out.push_back('"');
}

void append_json_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // %.17g is exact but noisy (0.1 -> 0.10000000000000001); take the shortest that reads back.
  for (int precision = 6; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) {
      out.append(shorter);
      return;
    }
  }
  out.append(buf);
}

std::string rfc3339_ms(int64_t unix_ms) {
  const int64_t floor_s = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  const auto secs = static_cast<std::time_t>(floor_s);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms - floor_s * 1000));
  return buf;
}

bool is_json_object(std::string_view text) { return Validator(text).object_only(); }

}  // namespace callrelay::log
