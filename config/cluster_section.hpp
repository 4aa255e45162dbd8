// The `cluster:` section (several instances as one service: shared call records in
// PostgreSQL, presence, messages between instances and shared state in Redis) and its reader, kept apart from config.cpp; the reader is called from its Loader.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/yaml_reader.hpp"

namespace callrelay::config {

/// Longest cluster.instance_id and cluster.postgres_url.
inline constexpr size_t kMaxInstanceIdChars = 64;
inline constexpr size_t kMaxPostgresUrlChars = 2048;
inline constexpr size_t kMaxRedisUrlChars = 2048;
inline constexpr size_t kMaxRegionChars = 64;
inline constexpr size_t kMaxRelayUris = 16;

/// Cluster mode, off by default: every key left out keeps the single-process behaviour.
struct ClusterConfig {
  /// cluster.instance_id: names this instance to the shared services (PostgreSQL's
  /// application_name, so pg_stat_activity shows which instance holds a connection) and in
  /// the startup log. Letters, digits, '.', '_' and '-'; "" (default): the host name.
  std::string instance_id;
  /// cluster.postgres_url: a libpq connection URI ("postgresql://user:pass@host:5432/db",
  /// "postgresql:///db?host=/run/postgresql"). Set: call records go to this database (schema
  /// migrated at start) instead of the SQLite file; "" (default): SQLite.
  std::string postgres_url;
  /// cluster.redis_url: "redis://[:password@]host[:port][/db]" or "unix:///path?db=N". Set:
  /// this instance joins the others using the same Redis (presence, signaling between
  /// instances, shared revocations and quotas, load for credentials); "" (default): alone.
  std::string redis_url;
  /// cluster.region: this instance's region ("eu-west"), matched against a client's region
  /// when credentials pick instances; "" (default): none.
  std::string region;
  /// cluster.relay_uris: this instance's public TURN/STUN URIs ("turn:relay-1.example.net:3478
  /// ?transport=udp", ...), what other instances hand out for it; empty (default): the
  /// credential API's own configured URIs.
  std::vector<std::string> relay_uris;

  bool redis() const { return !redis_url.empty(); }
};

/// The URL with its password (userinfo and a `password=` parameter) replaced by "***", for
/// the masked configuration JSON and logs.
std::string mask_postgres_url(std::string_view url);

namespace detail {

/// Reads `cluster:` into `out` (keys left out keep their defaults).
void read_cluster_section(Reader& reader, const Field& f, ClusterConfig& out);

}  // namespace detail
}  // namespace callrelay::config
