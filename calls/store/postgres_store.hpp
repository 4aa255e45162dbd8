// Call records in PostgreSQL, for several instances sharing one database (cluster.postgres_url):
// the same rows, filters and cursors as the SQLite store, so GET /api/v1/calls answers the
// same from any instance. The schema is migrated at start under an advisory lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "calls/store/record_store.hpp"

namespace callrelay::calls {

/// The schema version this build writes (the highest row of callrelay_schema_version); a
/// database migrated further by a newer build is refused.
inline constexpr int kPostgresSchemaVersion = 1;

/// RecordStore on libpq.
///
/// Threads: a libpq connection serves one thread at a time, so the store holds two, each
/// behind its own mutex: put() and put_batch() write on one, query() and get() read on the
/// other, and the record writer and the records API never wait for each other.
///
/// Connections: a connection found broken (the server restarted, the network dropped) is
/// closed and opened again by the next call, so a failed put_batch() (which RecordWriter
/// retries) succeeds once the server is back; nothing is kept half-written, as each batch is
/// one transaction. Any thread may call any method.
class PostgresStore final : public RecordStore {
 public:
  struct Options {
    /// Seconds a connection attempt may take (libpq connect_timeout) unless the URL sets it.
    int connect_timeout_s = 5;
    /// What pg_stat_activity shows for this process's connections, unless the URL sets it.
    std::string application_name = "callrelay";
  };

  /// Connects to `url` (a libpq connection URI or key=value string) and migrates the schema.
  /// Throws std::runtime_error (the server's reason, never the password) when the server
  /// cannot be reached, refuses the login, or holds a newer schema.
  explicit PostgresStore(std::string url);
  PostgresStore(std::string url, Options options);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  /// Inserts or replaces (by id) in one transaction, committed before it returns. Throws
  /// std::runtime_error on any failure; the database then holds what it held before.
  void put(const CallRecord& record) override;
  void put_batch(std::span<const CallRecord> records) override;
  /// As SqliteStore::query: filters AND-ed, newest first by (created, id) with ids compared
  /// bytewise, keyset cursors. std::invalid_argument for a malformed cursor.
  RecordPage query(const RecordQuery& q) override;
  std::optional<CallRecord> get(std::string_view id) override;

  /// Times a connection was (re)opened after the first, for tests and logs.
  uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }

 private:
  class Connection;
  std::string url_;
  Options options_;
  std::atomic<uint64_t> reconnects_{0};
  std::mutex write_mutex_;
  std::unique_ptr<Connection> writer_;  ///< guarded by write_mutex_
  std::mutex read_mutex_;
  std::unique_ptr<Connection> reader_;  ///< guarded by read_mutex_
};

}  // namespace callrelay::calls
