#include "cluster/redis/redis_url.hpp"

#include <algorithm>
#include <charconv>

namespace callrelay::cluster {

namespace {

bool fail(std::string* error, std::string why) {
  if (error) *error = std::move(why);
  return false;
}

/// RFC 3986 section 2.1 percent-decoding (a password may hold any byte).
bool percent_decode(std::string_view in, std::string& out, std::string* error) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (in.size() - i < 3) return fail(error, "a '%' without two hex digits");
    unsigned v = 0;
    const auto r = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (r.ec != std::errc{} || r.ptr != in.data() + i + 3)
      return fail(error, "a '%' without two hex digits");
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

bool parse_db(std::string_view s, uint32_t& db, std::string* error) {
  uint32_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size() || v > 15'999)
    return fail(error, "the database must be a number");
  db = v;
  return true;
}

bool printable(std::string_view s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string* error) {
  RedisUrl out;
  if (!printable(url)) {
    fail(error, "spaces or control characters");
    return std::nullopt;
  }
  if (url.starts_with("unix://")) {
    std::string_view rest = url.substr(7);
    std::string_view query;
    if (const size_t q = rest.find('?'); q != std::string_view::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    if (rest.empty() || rest.front() != '/') {
      fail(error, "a unix socket needs an absolute path");
      return std::nullopt;
    }
    if (!percent_decode(rest, out.unix_path, error)) return std::nullopt;
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view kv = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
      if (kv.starts_with("db=")) {
        if (!parse_db(kv.substr(3), out.db, error)) return std::nullopt;
      } else if (kv.starts_with("password=")) {
        if (!percent_decode(kv.substr(9), out.password, error)) return std::nullopt;
      } else {
        fail(error, "unknown parameter '" + std::string(kv.substr(0, kv.find('='))) + "'");
        return std::nullopt;
      }
    }
    return out;
  }
  if (!url.starts_with("redis://")) {
    fail(error, "the scheme must be redis:// or unix://");
    return std::nullopt;
  }
  std::string_view rest = url.substr(8);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (!percent_decode(userinfo.substr(0, colon), out.user, error)) return std::nullopt;
    if (colon != std::string_view::npos &&
        !percent_decode(userinfo.substr(colon + 1), out.password, error))
      return std::nullopt;
    if (colon == std::string_view::npos) {
      // redis://password@host is how some clients spell a password alone.
      out.password = std::move(out.user);
      out.user.clear();
    }
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      fail(error, "an IPv6 address without ']'");
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        fail(error, "garbage after the IPv6 address");
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    fail(error, "no host");
    return std::nullopt;
  }
  out.host = std::string(host);
  if (!port.empty() || authority.ends_with(':')) {
    unsigned v = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), v);
    if (port.empty() || r.ec != std::errc{} || r.ptr != port.data() + port.size() || v == 0 ||
        v > 65535) {
      fail(error, "the port must be 1 to 65535");
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(v);
  }
  if (const size_t q = path.find('?'); q != std::string_view::npos) {
    fail(error, "query parameters are not supported");
    return std::nullopt;
  }
  if (!path.empty() && !parse_db(path, out.db, error)) return std::nullopt;
  return out;
}

std::string mask_redis_url(std::string_view url) {
  std::string out(url);
  if (const size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = std::min(out.find_first_of("/?#", start), out.size());
    const size_t at = end == 0 ? std::string::npos : out.rfind('@', end - 1);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at)
        out.replace(colon + 1, at - colon - 1, "***");
      else
        out.replace(start, at - start, "***");
    }
  }
  for (size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const bool at_key = pos > 0 && (out[pos - 1] == '?' || out[pos - 1] == '&');
    pos += 9;
    if (!at_key) continue;
    const size_t end = std::min(out.find('&', pos), out.size());
    out.replace(pos, end - pos, "***");
    pos += 3;
  }
  return out;
}

}  // namespace callrelay::cluster
