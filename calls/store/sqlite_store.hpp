// Call records in one SQLite file (the state directory's calls.sqlite3 by default): WAL
// journal, synchronous=FULL, so that a record put() returned for survives kill -9 and a power
// cut. One row per call, indexed for the filters of GET /api/v1/calls.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "calls/store/record_store.hpp"

struct sqlite3;

namespace callrelay::calls {

/// The schema version this build writes (PRAGMA user_version); older files are migrated on
/// open, newer ones are refused. 2: the quality column.
inline constexpr int kRecordSchemaVersion = 2;

/// RecordStore on libsqlite3.
///
/// Threads: SQLite connections are used by one thread at a time, so the store holds two, each
/// behind its own mutex: put() writes on one, query() and get() read on the other. The writer
/// thread (RecordWriter) and the HTTP thread (the records API) therefore never wait for each
/// other: WAL lets the reader see the last committed state while a put() is in its fsync, and
/// a slow page of results never delays a record on its way to disk. Any thread may call any
/// method.
class SqliteStore final : public RecordStore {
 public:
  struct Options {
    /// How long a statement waits for a lock held by another process (sqlite3_busy_timeout).
    int busy_timeout_ms = 5000;
    /// The most pages the writing connection may grow the file to (PRAGMA max_page_count);
    /// 0 keeps SQLite's limit. Beyond it put() fails as on a full disk (SQLITE_FULL).
    uint32_t max_pages = 0;
  };

  /// Opens or creates `path` and migrates its schema. Throws std::runtime_error naming the
  /// path when its directory does not exist, the file is not a database of ours, or it cannot
  /// be opened for writing.
  explicit SqliteStore(std::string path);
  SqliteStore(std::string path, Options options);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// INSERT OR REPLACE in its own transaction, committed (fsynced) before it returns. Throws
  /// std::runtime_error on any failure; the file then holds what it held before.
  void put(const CallRecord& record) override;
  /// Filters AND-ed, newest first by (created, id); keyset pagination on that pair, so rows
  /// inserted meanwhile never shift a page. Throws std::invalid_argument for a malformed
  /// cursor and std::runtime_error when the database cannot be read.
  RecordPage query(const RecordQuery& q) override;
  std::optional<CallRecord> get(std::string_view id) override;

  /// Changes Options::max_pages of the writing connection (0: SQLite's limit).
  void set_max_pages(uint32_t max_pages);

  const std::string& path() const { return path_; }

 private:
  struct Connection;
  std::string path_;
  std::mutex write_mutex_;
  std::unique_ptr<Connection> writer_;  ///< guarded by write_mutex_
  std::mutex read_mutex_;
  std::unique_ptr<Connection> reader_;  ///< guarded by read_mutex_
};

/// The opaque next_cursor of a page ending with the row (created, id): base64url without
/// padding of a versioned text form. Exposed for tests.
std::string encode_record_cursor(TimeMs created, std::string_view id);

/// The (created, id) a cursor names; std::invalid_argument when `cursor` is not one that
/// encode_record_cursor could have produced.
std::pair<TimeMs, std::string> decode_record_cursor(std::string_view cursor);

}  // namespace callrelay::calls
