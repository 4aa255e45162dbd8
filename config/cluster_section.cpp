#include "config/cluster_section.hpp"

#include <algorithm>

namespace callrelay::config {

namespace {

constexpr std::string_view kMask = "***";

bool instance_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

std::string mask_postgres_url(std::string_view url) {
  std::string out(url);
  // userinfo: between "://" and the last '@' before the host part ends (RFC 3986 3.2.1; a
  // password's own '@' or '/' must be percent-encoded, so the authority ends at '/', '?', '#').
  if (const size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = std::min(out.find_first_of("/?#", start), out.size());
    const size_t at = out.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, kMask);
    }
  }
  // A `password=` parameter: in the query of a URI, or a key=value connection string.
  for (size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const bool at_key =
        pos == 0 || out[pos - 1] == '?' || out[pos - 1] == '&' || out[pos - 1] == ' ';
    pos += 9;
    if (!at_key) continue;
    const size_t end = std::min(out.find_first_of("& ", pos), out.size());
    out.replace(pos, end - pos, kMask);
    pos += kMask.size();
  }
  return out;
}

namespace detail {

void read_cluster_section(Reader& reader, const Field& f, ClusterConfig& out) {
  Reader& r = reader;
  r.read_map(f, {
                    {"instance_id",
                     [&](const Field& v) {
                       const auto s = r.string(v);
                       if (!s) return;
                       if (s->size() > kMaxInstanceIdChars ||
                           !std::all_of(s->begin(), s->end(), instance_id_char)) {
                         r.error(v,
                                 "must be up to 64 letters, digits, '.', '_' or '-' (like "
                                 "'relay-eu-1'), or \"\" for the host name");
                         return;
                       }
                       out.instance_id = *s;
                     }},
                    {"postgres_url",
                     [&](const Field& v) {
                       const auto s = r.string(v);
                       if (!s) return;
                       if (s->empty()) {
                         out.postgres_url.clear();
                         return;
                       }
                       const bool uri =
                           s->starts_with("postgresql://") || s->starts_with("postgres://");
                       const bool printable = std::all_of(s->begin(), s->end(), [](char c) {
                         return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
                       });
                       if (!uri || !printable || s->size() > kMaxPostgresUrlChars) {
                         r.error(v,
                                 "must be a PostgreSQL connection URI like "
                                 "'postgresql://callrelay:PASSWORD@db.example.net:5432/callrelay' "
                                 "(no spaces; percent-encode special characters), not '" +
                                     mask_postgres_url(*s) + "'");
                         return;
                       }
                       out.postgres_url = *s;
                     }},
                });
}

}  // namespace detail
}  // namespace callrelay::config
