// Call record storage behind an interface: SQLite by default (a file in the state directory),
// another database for several instances. put() may block on the disk: callers use
// RecordWriter, which runs it on its own thread.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "calls/core/record.hpp"

namespace callrelay::calls {

/// Filters of GET /api/v1/calls. Every filter set must match.
struct RecordQuery {
  std::optional<std::string> user;    ///< caller or callee
  std::optional<std::string> tenant;
  std::optional<Outcome> outcome;
  std::optional<TimeMs> since;        ///< created >= since
  std::optional<TimeMs> until;        ///< created < until
  size_t limit = 100;                 ///< 1..1000
  std::string cursor;                 ///< "" for the first page, else next_cursor of the last
};

struct RecordPage {
  std::vector<CallRecord> records;  ///< newest first (created, then id, descending)
  std::string next_cursor;          ///< "" when this is the last page
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;
  /// Stores (or replaces, by id) one record durably. Throws std::runtime_error on failure
  /// (disk full, I/O error): the caller keeps the record and retries.
  virtual void put(const CallRecord& record) = 0;
  /// Stores several records, as one transaction where the store has them (fewer commits, so
  /// fewer round trips and fsyncs). Throws as put() does. Records are stored by id, so a
  /// batch retried after a failure part-way leaves each record stored once.
  virtual void put_batch(std::span<const CallRecord> records) {
    for (const CallRecord& r : records) put(r);
  }
  /// A malformed cursor throws std::invalid_argument.
  virtual RecordPage query(const RecordQuery& q) = 0;
  virtual std::optional<CallRecord> get(std::string_view id) = 0;
};

}  // namespace callrelay::calls
