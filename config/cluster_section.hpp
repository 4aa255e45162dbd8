// The `cluster:` section (several instances as one service: shared call records in
// PostgreSQL) and its reader, kept apart from config.cpp; the reader is called from its Loader.
#pragma once

#include <string>
#include <string_view>

#include "config/yaml_reader.hpp"

namespace callrelay::config {

/// Longest cluster.instance_id and cluster.postgres_url.
inline constexpr size_t kMaxInstanceIdChars = 64;
inline constexpr size_t kMaxPostgresUrlChars = 2048;

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
};

/// The URL with its password (userinfo and a `password=` parameter) replaced by "***", for
/// the masked configuration JSON and logs.
std::string mask_postgres_url(std::string_view url);

namespace detail {

/// Reads `cluster:` into `out` (keys left out keep their defaults).
void read_cluster_section(Reader& reader, const Field& f, ClusterConfig& out);

}  // namespace detail
}  // namespace callrelay::config
