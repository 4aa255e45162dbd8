// Redis URLs for cluster.redis_url: parsed (pure, no I/O) and masked for logs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callrelay::cluster {

/// redis://[[user]:password@]host[:port][/db] or unix:///path/to/redis.sock[?db=N].
struct RedisUrl {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string unix_path;  ///< set: a Unix socket instead of host:port
  std::string user;       ///< ACL user (Redis 6+); "" with a password: AUTH password
  std::string password;
  uint32_t db = 0;
};
/// Parses a Redis URL; nullopt and `*error` (when given) for a malformed one.
std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string* error = nullptr);
/// The URL with its password replaced by "***", for logs and the masked configuration.
std::string mask_redis_url(std::string_view url);

}  // namespace callrelay::cluster
