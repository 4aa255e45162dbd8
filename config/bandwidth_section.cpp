#include "config/bandwidth_section.hpp"

#include <cctype>
#include <string>

namespace callrelay::config::detail {
namespace {

/// Below this a cap would starve a single audio stream (an Opus call needs ~40 kbit/s with
/// headers); 0 is allowed and means off.
constexpr uint64_t kMinBps = 8000;
/// 1 Tbit/s: beyond any NIC, and keeps the token arithmetic (bps * burst_ms) far from overflow.
constexpr uint64_t kMaxBps = 1'000'000'000'000;
constexpr int64_t kMinBurstMs = 10;
constexpr int64_t kMaxBurstMs = 10'000;

/// "2.5M" -> 2'500'000; nullopt when it is not a number with an optional k, M or G.
std::optional<uint64_t> scaled(const std::string& s) {
  size_t i = 0;
  uint64_t whole = 0, frac = 0, frac_scale = 1;
  bool digits = false;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, digits = true) {
    if (whole > kMaxBps) return std::nullopt;
    whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  if (i < s.size() && s[i] == '.') {
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, digits = true) {
      if (frac_scale >= 1'000'000'000) return std::nullopt;
      frac = frac * 10 + static_cast<uint64_t>(s[i] - '0');
      frac_scale *= 10;
    }
  }
  if (!digits) return std::nullopt;
  uint64_t mult = 1;
  if (i < s.size()) {
    switch (s[i]) {
      case 'k': case 'K': mult = 1'000; break;
      case 'M': mult = 1'000'000; break;
      case 'G': mult = 1'000'000'000; break;
      default: return std::nullopt;
    }
    ++i;
  }
  if (i != s.size() || whole > kMaxBps / mult) return std::nullopt;
  return whole * mult + frac * mult / frac_scale;
}

}  // namespace

std::optional<uint64_t> parse_bps(Reader& reader, const Field& f) {
  const auto text = reader.string(f);
  if (!text) return std::nullopt;
  const auto bps = scaled(*text);
  if (!bps || (*bps != 0 && (*bps < kMinBps || *bps > kMaxBps))) {
    reader.error(f, "must be bits per second, 0 (off) or from 8000 to 1T, as a number or with a "
                    "k, M or G suffix (like '50M'), not '" + *text + "'");
    return std::nullopt;
  }
  return bps;
}

void read_bandwidth_section(Reader& reader, const Field& f, core::BandwidthConfig& out) {
  const auto rate = [&reader](uint64_t& to) {
    return [&reader, &to](const Field& v) {
      if (const auto bps = parse_bps(reader, v)) to = *bps;
    };
  };
  reader.read_map(f, {{"max_bps", rate(out.max_bps)},
                      {"user_max_bps", rate(out.user_max_bps)},
                      {"total_max_bps", rate(out.total_max_bps)},
                      {"burst_ms", [&](const Field& v) {
                         if (const auto ms = reader.integer(v, kMinBurstMs, kMaxBurstMs)) {
                           out.burst_ms = static_cast<uint32_t>(*ms);
                         }
                       }}});
}

}  // namespace callrelay::config::detail
