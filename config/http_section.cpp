#include "config/http_section.hpp"

#include <algorithm>
#include <fstream>

namespace callrelay::config::detail {
namespace {

constexpr int64_t kMinRequestBytes = 1024;
constexpr int64_t kMaxRequestBytes = 16 * 1024 * 1024;
constexpr int64_t kMaxTtlS = 7 * 86400;  // a week: longer credentials cannot be revoked usefully
constexpr size_t kMinKeyChars = 16;      // guessing must stay hopeless under the rate limit
constexpr size_t kMaxTextChars = 4096;
constexpr int64_t kMaxConnections = 1'000'000;
constexpr int64_t kMaxHeaderTimeoutS = 3600;
constexpr int64_t kMaxIdleTimeoutS = 86400;

std::optional<std::string> nonempty(Reader& r, const Field& f) {
  auto s = r.string(f);
  if (s && (s->empty() || s->size() > kMaxTextChars)) {
    r.error(f, "must have 1 to " + std::to_string(kMaxTextChars) + " characters");
    return std::nullopt;
  }
  return s;
}

/// `path` resolved against `base_dir`, if it names a readable file; else records why not.
std::optional<std::string> readable_file(Reader& r, const Field& f,
                                         const std::filesystem::path& base_dir) {
  const auto s = nonempty(r, f);
  if (!s) return std::nullopt;
  std::filesystem::path path(*s);
  if (path.is_relative()) path = base_dir / path;
  std::error_code ec;
  std::ifstream in(path);
  if (std::filesystem::is_directory(path, ec) || !in) {
    r.error(f, "cannot read '" + path.string() + "' (check the path, owner and mode)");
    return std::nullopt;
  }
  return path.string();
}

void read_tls(Reader& r, const Field& f, http::HttpConfig& out,
              const std::filesystem::path& base_dir) {
  if (f.node.IsNull()) return;  // "tls: ~": plain HTTP
  http::TlsFiles files;
  bool cert = false, key = false;
  r.read_map(f, {{"cert",
                  [&](const Field& c) {
                    cert = true;
                    if (auto p = readable_file(r, c, base_dir)) files.cert = *p;
                  }},
                 {"key", [&](const Field& k) {
                    key = true;
                    if (auto p = readable_file(r, k, base_dir)) files.key = *p;
                  }}});
  if (!cert || !key) {
    r.error(f, "needs both cert and key (PEM files), or leave tls out for plain HTTP");
    return;
  }
  out.tls = files;
}

void read_key(Reader& r, const Field& item, http::ApiKey& key,
              const std::filesystem::path& base_dir) {
  bool has_key = false;
  r.read_map(item, {
                       {"name",
                        [&](const Field& f) {
                          if (auto s = nonempty(r, f)) key.name = *s;
                        }},
                       {"key",
                        [&](const Field& f) {
                          has_key = true;
                          if (auto s = nonempty(r, f)) key.key = *s;
                        }},
                       {"key_file",
                        [&](const Field& f) {
                          has_key = true;
                          const auto path = readable_file(r, f, base_dir);
                          if (!path) return;
                          std::ifstream in(*path);
                          for (std::string line; std::getline(in, line);) {
                            line.erase(line.find_last_not_of(" \t\r\n") + 1);
                            line.erase(0, line.find_first_not_of(" \t"));
                            if (!line.empty() && line.front() != '#') {
                              key.key = line;
                              break;
                            }
                          }
                          if (key.key.empty()) r.error(f, "'" + *path + "' holds no key");
                        }},
                       {"admin",
                        [&](const Field& f) {
                          if (auto b = r.boolean(f)) key.admin = *b;
                        }},
                       {"max_ttl",
                        [&](const Field& f) {
                          if (auto n = r.integer(f, 1, kMaxTtlS))
                            key.max_ttl_s = static_cast<uint32_t>(*n);
                        }},
                       {"allowed_origins",
                        [&](const Field& f) {
                          r.for_each_item(f, [&](const Field& o) {
                            const auto s = nonempty(r, o);
                            if (!s) return;
                            if (s->find("://") == std::string::npos || s->back() == '/') {
                              r.error(o,
                                      "must be an origin like 'https://app.example.com' (scheme, "
                                      "host, optional port, no path), not '" +
                                          *s + "'");
                              return;
                            }
                            key.allowed_origins.push_back(*s);
                          });
                        }},
                   });
  if (!has_key) r.error(item, "needs key (or key_file)");
  if (!key.key.empty() && key.key.size() < kMinKeyChars)
    r.error(item, "the key must have at least " + std::to_string(kMinKeyChars) + " characters");
  if (key.name.empty()) r.error(item, "needs a name (shown in logs instead of the key)");
}

}  // namespace

void read_http_section(Reader& reader, const Field& f, http::HttpConfig& out,
                       const std::filesystem::path& base_dir) {
  Reader& r = reader;
  r.read_map(f, {
                    {"enabled",
                     [&](const Field& e) {
                       if (auto b = r.boolean(e)) out.enabled = *b;
                     }},
                    {"listen",
                     [&](const Field& l) {
                       const auto s = r.string(l);
                       if (!s) return;
                       const auto ep = stun::Endpoint::parse(*s);
                       if (!ep) {
                         r.error(l,
                                 "must be an address and port like '127.0.0.1:9641' or "
                                 "'[::1]:9641', not '" +
                                     *s + "'");
                         return;
                       }
                       out.listen = *ep;
                     }},
                    {"tls", [&](const Field& t) { read_tls(r, t, out, base_dir); }},
                    {"max_request_bytes",
                     [&](const Field& m) {
                       if (auto n = r.integer(m, kMinRequestBytes, kMaxRequestBytes))
                         out.max_request_bytes = static_cast<size_t>(*n);
                     }},
                    {"threads",
                     [&](const Field& t) {
                       if (auto n = r.integer(t, http::kMinHttpThreads, http::kMaxHttpThreads))
                         out.threads = static_cast<unsigned>(*n);
                     }},
                    {"max_connections",
                     [&](const Field& m) {
                       if (auto n = r.integer(m, 1, kMaxConnections))
                         out.max_connections = static_cast<size_t>(*n);
                     }},
                    {"max_connections_per_address",
                     [&](const Field& m) {
                       if (auto n = r.integer(m, 1, kMaxConnections))
                         out.max_connections_per_address = static_cast<size_t>(*n);
                     }},
                    {"header_timeout_s",
                     [&](const Field& t) {
                       if (auto n = r.integer(t, 1, kMaxHeaderTimeoutS))
                         out.header_timeout = std::chrono::seconds(*n);
                     }},
                    {"idle_timeout_s",
                     [&](const Field& t) {
                       if (auto n = r.integer(t, 1, kMaxIdleTimeoutS))
                         out.idle_timeout = std::chrono::seconds(*n);
                     }},
                    {"status_page",
                     [&](const Field& s) {
                       if (auto b = r.boolean(s)) out.status_page = *b;
                     }},
                });
  if (out.max_connections_per_address > out.max_connections)
    r.error(f, "max_connections_per_address (" + std::to_string(out.max_connections_per_address) +
                   ") must not exceed max_connections (" + std::to_string(out.max_connections) +
                   "): one address could hold the whole listener");
}

void read_api_section(Reader& reader, const Field& f, http::ApiConfig& out,
                      const std::filesystem::path& base_dir) {
  Reader& r = reader;
  r.read_map(f, {
                    {"keys",
                     [&](const Field& k) {
                       r.for_each_item(k, [&](const Field& item) {
                         http::ApiKey key;
                         read_key(r, item, key, base_dir);
                         for (const http::ApiKey& other : out.keys) {
                           if (!key.name.empty() && other.name == key.name)
                             r.error(item, "duplicate key name '" + key.name + "'");
                           if (!key.key.empty() && other.key == key.key)
                             r.error(item, "the same key is listed twice");
                         }
                         out.keys.push_back(std::move(key));
                       });
                     }},
                    {"uris",
                     [&](const Field& u) {
                       r.for_each_item(u, [&](const Field& item) {
                         const auto s = nonempty(r, item);
                         if (!s) return;
                         if (s->rfind("turn:", 0) != 0 && s->rfind("turns:", 0) != 0 &&
                             s->rfind("stun:", 0) != 0) {
                           r.error(item,
                                   "must be a TURN or STUN URI like "
                                   "'turn:relay.example.com:3478?transport=udp', not '" +
                                       *s + "'");
                           return;
                         }
                         out.uris.push_back(*s);
                       });
                     }},
                    {"public_host",
                     [&](const Field& h) {
                       const auto s = nonempty(r, h);
                       if (s && s->find_first_of(" /?#") != std::string::npos) {
                         r.error(h, "must be a host name or address, like 'relay.example.com'");
                         return;
                       }
                       if (s) out.public_host = *s;
                     }},
                    {"default_ttl",
                     [&](const Field& d) {
                       if (auto n = r.integer(d, 1, kMaxTtlS))
                         out.default_ttl_s = static_cast<uint32_t>(*n);
                     }},
                });
}

void check_http_sections(Reader& reader, const Config& cfg) {
  const http::ApiConfig& api = cfg.api;
  if (api.keys.empty() || !api.uris.empty() || !api.public_host.empty()) return;
  const bool any_specific =
      std::any_of(cfg.listen.udp.begin(), cfg.listen.udp.end(), [](const stun::Endpoint& ep) {
        const std::string ip = ep.ip_string();
        return ip != "0.0.0.0" && ip != "::";
      });
  if (any_specific) return;
  Field where;
  where.path = "api.public_host";
  reader.error(where,
               "the credential API needs the relay's public host name to build TURN URIs "
               "(listen.udp only has wildcard addresses): set api.public_host or api.uris");
}

}  // namespace callrelay::config::detail
