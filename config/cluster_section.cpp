#include "config/cluster_section.hpp"

#include <algorithm>

#include "cluster/redis/redis_url.hpp"

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
                    {"redis_url",
                     [&](const Field& v) {
                       const auto s = r.string(v);
                       if (!s) return;
                       if (s->empty()) {
                         out.redis_url.clear();
                         return;
                       }
                       std::string why;
                       if (s->size() > kMaxRedisUrlChars ||
                           !cluster::parse_redis_url(*s, &why)) {
                         r.error(v, "must be a Redis URL like 'redis://:PASSWORD@redis.example.net"
                                    ":6379/0' or 'unix:///run/redis/redis.sock', not '" +
                                        cluster::mask_redis_url(*s) + "'" +
                                        (why.empty() ? "" : " (" + why + ")"));
                         return;
                       }
                       out.redis_url = *s;
                     }},
                    {"region",
                     [&](const Field& v) {
                       const auto s = r.string(v);
                       if (!s) return;
                       if (s->size() > kMaxRegionChars ||
                           !std::all_of(s->begin(), s->end(), instance_id_char)) {
                         r.error(v,
                                 "must be up to 64 letters, digits, '.', '_' or '-' (like "
                                 "'eu-west'), or \"\" for none");
                         return;
                       }
                       out.region = *s;
                     }},
                    {"relay_uris",
                     [&](const Field& v) {
                       const auto list = r.string_list(v);
                       if (!list) return;
                       if (list->size() > kMaxRelayUris) {
                         r.error(v, "lists at most 16 URIs");
                         return;
                       }
                       for (const auto& uri : *list) {
                         const bool scheme = uri.starts_with("turn:") ||
                                             uri.starts_with("turns:") || uri.starts_with("stun:");
                         const bool printable =
                             std::all_of(uri.begin(), uri.end(), [](char c) {
                               return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
                             });
                         if (!scheme || !printable || uri.size() > 512) {
                           r.error(v, "must list URIs like 'turn:relay-1.example.net:3478?"
                                      "transport=udp' (RFC 7065), not '" + uri + "'");
                           return;
                         }
                       }
                       out.relay_uris = *list;
                     }},
                });
}

}  // namespace detail
}  // namespace callrelay::config
