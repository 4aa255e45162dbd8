#include "config/limits_section.hpp"

#include <cstdint>
#include <functional>
#include <vector>

namespace callrelay::config::detail {
namespace {

using Handler = std::function<void(const Field&)>;

Handler u32(Reader& reader, uint32_t& out, int64_t min, int64_t max) {
  return [&reader, &out, min, max](const Field& f) {
    if (auto n = reader.integer(f, min, max)) out = static_cast<uint32_t>(*n);
  };
}

Handler flag(Reader& reader, bool& out) {
  return [&reader, &out](const Field& f) {
    if (auto b = reader.boolean(f)) out = *b;
  };
}

}  // namespace

void read_limits_section(Reader& reader, const Field& f, core::AbuseConfig& out) {
  // Ranges keep every value meaningful: a table of 2^24 slots is 384 MiB per worker; an
  // allowance below one 401 would refuse every real client's first exchange.
  const auto unauthenticated = [&reader, &out](const Field& x) {
    reader.read_map(x, {{"enabled", flag(reader, out.reflection_enabled)},
                        {"table_slots", u32(reader, out.table_slots, 64, 1 << 24)},
                        {"allowance_bytes", u32(reader, out.allowance_bytes, 512, 1 << 20)},
                        {"allowance_bytes_per_s", u32(reader, out.allowance_bytes_per_s, 0, 1 << 20)},
                        {"challenges_per_s", u32(reader, out.challenges_per_s, 0, 100000)},
                        {"challenge_burst", u32(reader, out.challenge_burst, 1, 100000)}});
  };
  const auto tcp = [&reader, &out](const Field& x) {
    reader.read_map(x, {{"max_per_address", u32(reader, out.tcp_max_per_address, 0, UINT32_MAX)},
                        {"max_total", u32(reader, out.tcp_max_total, 0, UINT32_MAX)},
                        {"unauthenticated_bytes",
                         [&reader, &out](const Field& v) {
                           const auto n = reader.integer(v, 0, UINT32_MAX);
                           if (!n) return;
                           // Below 1 KiB even an Allocate and its 401 round would not fit.
                           if (*n != 0 && *n < 1024) {
                             reader.error(v, "must be 0 (no limit) or at least 1024 bytes");
                             return;
                           }
                           out.tcp_unauth_bytes = static_cast<uint32_t>(*n);
                         }},
                        {"fd_reserve", u32(reader, out.fd_reserve, 0, 1 << 20)}});
  };
  const auto tls = [&reader, &out](const Field& x) {
    reader.read_map(x, {{"handshakes_per_s", u32(reader, out.tls_handshakes_per_s, 0, 1000000)}});
  };
  reader.read_map(f, {{"unauthenticated", unauthenticated}, {"tcp", tcp}, {"tls", tls}});
}

}  // namespace callrelay::config::detail
