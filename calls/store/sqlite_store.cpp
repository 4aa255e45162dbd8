#include "calls/store/sqlite_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <unordered_map>
#include <variant>
#include <vector>

#include "calls/store/record_json.hpp"

namespace callrelay::calls {

namespace {

/// Schema steps: kMigrations[v] takes a file from user_version v to v + 1.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE calls (
  id TEXT PRIMARY KEY NOT NULL,
  caller TEXT NOT NULL,
  callee TEXT NOT NULL,
  tenant TEXT NOT NULL,
  caller_device TEXT NOT NULL,
  answered_device TEXT NOT NULL,
  audio INTEGER NOT NULL,
  video INTEGER NOT NULL,
  created INTEGER NOT NULL,
  answered INTEGER NOT NULL,
  connected INTEGER NOT NULL,
  ended INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  end_reason TEXT NOT NULL,
  ended_by TEXT NOT NULL,
  setup_ms INTEGER NOT NULL,
  ice_restarts INTEGER NOT NULL,
  reconnects INTEGER NOT NULL,
  bytes_caller_to_callee INTEGER NOT NULL,
  bytes_callee_to_caller INTEGER NOT NULL,
  relay_allocations INTEGER NOT NULL
);
CREATE INDEX calls_created ON calls (created DESC, id DESC);
CREATE INDEX calls_caller ON calls (caller, created DESC, id DESC);
CREATE INDEX calls_callee ON calls (callee, created DESC, id DESC);
CREATE INDEX calls_tenant ON calls (tenant, created DESC, id DESC);
CREATE INDEX calls_outcome ON calls (outcome, created DESC, id DESC);
)sql",
    // The record's quality object as JSON text (record_json.hpp); NULL when empty, as in the
    // rows of calls stored before it existed.
    "ALTER TABLE calls ADD COLUMN quality TEXT;",
};
static_assert(std::size(kMigrations) == kRecordSchemaVersion);

/// The columns in the order put() binds them and read_row() reads them.
constexpr const char* kColumns =
    "id, caller, callee, tenant, caller_device, answered_device, audio, video, created, "
    "answered, connected, ended, outcome, end_reason, ended_by, setup_ms, ice_restarts, "
    "reconnects, bytes_caller_to_callee, bytes_callee_to_caller, relay_allocations, quality";
constexpr int kColumnCount = 22;
constexpr size_t kMaxLimit = 1000;

std::optional<Party> parse_party(std::string_view text) {
  for (Party p : {Party::kCaller, Party::kCallee, Party::kServer}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}

/// A bound value; monostate binds NULL.
using Value = std::variant<int64_t, std::string, std::monostate>;

/// Resets a cached statement when a scope ends, also by exception, so that no read
/// transaction stays open on the connection (it would hold back WAL checkpoints).
struct ResetOnExit {
  sqlite3_stmt* stmt;
  ~ResetOnExit() { sqlite3_reset(stmt); }
};

}  // namespace

/// One sqlite3 handle and its prepared statements, cached by SQL text (the query's text is
/// assembled from fixed fragments only, so the cache holds at most one entry per filter set).
struct SqliteStore::Connection {
  std::string path;
  sqlite3* db = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements;

  Connection(std::string p, int busy_timeout_ms) : path(std::move(p)) {
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      throw std::runtime_error("call records: cannot open '" + path + "': " + why);
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_timeout_ms);
  }
  ~Connection() {
    for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  [[noreturn]] void fail(std::string_view what) const {
    throw std::runtime_error("call records '" + path + "': " + std::string(what) + ": " +
                             sqlite3_errmsg(db));
  }

  void exec(const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }

  /// The first column of a statement's single row (a pragma's value).
  std::string scalar(const std::string& sql) {
    sqlite3_stmt* stmt = prepare(sql);
    ResetOnExit reset{stmt};
    if (sqlite3_step(stmt) != SQLITE_ROW) fail(sql);
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    return p ? p : "";
  }

  /// The cached statement for `sql`, reset with its bindings cleared.
  sqlite3_stmt* prepare(const std::string& sql) {
    auto it = statements.find(sql);
    if (it != statements.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      fail("prepare");
    }
    statements.emplace(sql, stmt);
    return stmt;
  }

  void bind(sqlite3_stmt* stmt, int index, const Value& v) {
    int rc = SQLITE_OK;
    if (const auto* i = std::get_if<int64_t>(&v)) {
      rc = sqlite3_bind_int64(stmt, index, *i);
    } else if (const auto* text = std::get_if<std::string>(&v)) {
      rc = sqlite3_bind_text(stmt, index, text->data(), static_cast<int>(text->size()),
                             SQLITE_TRANSIENT);
    } else {
      rc = sqlite3_bind_null(stmt, index);
    }
    if (rc != SQLITE_OK) fail("bind");
  }

  /// Rolls back the open transaction, if any (SQLite ends some on error by itself).
  void rollback() noexcept {
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
};

namespace {

/// Brings the file to kRecordSchemaVersion in one transaction.
template <typename Conn>
void migrate(Conn& c) {
  c.exec("BEGIN IMMEDIATE");
  try {
    const int64_t version = std::stoll(c.scalar("PRAGMA user_version"));
    if (version < 0 || version > kRecordSchemaVersion) {
      throw std::runtime_error("call records '" + c.path + "': schema version " +
                               std::to_string(version) + " is newer than this build's (" +
                               std::to_string(kRecordSchemaVersion) + ")");
    }
    for (auto v = static_cast<size_t>(version); v < std::size(kMigrations); ++v) {
      c.exec(kMigrations[v]);
    }
    // A pragma's value cannot be bound; this one is the build's constant.
    const std::string set_version = "PRAGMA user_version = " + std::to_string(kRecordSchemaVersion);
    c.exec(set_version.c_str());
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

std::vector<Value> record_values(const CallRecord& r) {
  return {r.id,
          r.caller,
          r.callee,
          r.tenant,
          r.caller_device,
          r.answered_device,
          int64_t{r.media.audio},
          int64_t{r.media.video},
          r.created,
          r.answered,
          r.connected,
          r.ended,
          std::string(to_string(r.outcome)),
          r.end_reason,
          std::string(to_string(r.ended_by)),
          r.setup_ms,
          int64_t{r.ice_restarts},
          int64_t{r.reconnects},
          static_cast<int64_t>(r.bytes_caller_to_callee),  // same bits back in read_row
          static_cast<int64_t>(r.bytes_callee_to_caller),
          int64_t{r.relay_allocations},
          r.quality.empty() ? Value(std::monostate{}) : Value(quality_to_json(r.quality).dump())};
}

std::string text_column(sqlite3_stmt* stmt, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt, i))) : std::string();
}

uint32_t u32_column(sqlite3_stmt* stmt, int i) {
  return static_cast<uint32_t>(std::clamp<int64_t>(sqlite3_column_int64(stmt, i), 0, UINT32_MAX));
}

CallRecord read_row(sqlite3_stmt* stmt, const std::string& path) {
  CallRecord r;
  r.id = text_column(stmt, 0);
  r.caller = text_column(stmt, 1);
  r.callee = text_column(stmt, 2);
  r.tenant = text_column(stmt, 3);
  r.caller_device = text_column(stmt, 4);
  r.answered_device = text_column(stmt, 5);
  r.media.audio = sqlite3_column_int64(stmt, 6) != 0;
  r.media.video = sqlite3_column_int64(stmt, 7) != 0;
  r.created = sqlite3_column_int64(stmt, 8);
  r.answered = sqlite3_column_int64(stmt, 9);
  r.connected = sqlite3_column_int64(stmt, 10);
  r.ended = sqlite3_column_int64(stmt, 11);
  auto outcome = parse_outcome(text_column(stmt, 12));
  r.end_reason = text_column(stmt, 13);
  auto ended_by = parse_party(text_column(stmt, 14));
  if (!outcome || !ended_by) {
    throw std::runtime_error("call records '" + path + "': record " + r.id +
                             " has an unknown outcome or ended_by");
  }
  r.outcome = *outcome;
  r.ended_by = *ended_by;
  r.setup_ms = sqlite3_column_int64(stmt, 15);
  r.ice_restarts = u32_column(stmt, 16);
  r.reconnects = u32_column(stmt, 17);
  r.bytes_caller_to_callee = static_cast<uint64_t>(sqlite3_column_int64(stmt, 18));
  r.bytes_callee_to_caller = static_cast<uint64_t>(sqlite3_column_int64(stmt, 19));
  r.relay_allocations = u32_column(stmt, 20);
  if (sqlite3_column_type(stmt, 21) != SQLITE_NULL) {
    const auto json = nlohmann::json::parse(text_column(stmt, 21), nullptr, false);
    auto quality = json.is_discarded() ? std::nullopt : quality_from_json(json);
    if (!quality) {
      throw std::runtime_error("call records '" + path + "': record " + r.id +
                               " has an unreadable quality column");
    }
    r.quality = std::move(*quality);
  }
  return r;
}

}  // namespace

SqliteStore::SqliteStore(std::string path) : SqliteStore(std::move(path), Options{}) {}

SqliteStore::SqliteStore(std::string path, Options options) : path_(std::move(path)) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path_).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    throw std::runtime_error("call records '" + path_ + "': directory '" + dir.string() +
                             "' does not exist");
  }
  // Records say who called whom: a new file is readable by this user only, and SQLite gives
  // its -wal and -shm files the database file's mode.
  if (const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
    ::close(fd);
  }
  writer_ = std::make_unique<Connection>(path_, options.busy_timeout_ms);
  // WAL: readers never block the writer; FULL: a commit is fsynced before put() returns, so a
  // stored record survives a power cut (https://sqlite.org/pragma.html#pragma_synchronous).
  if (writer_->scalar("PRAGMA journal_mode = WAL") != "wal") {
    throw std::runtime_error("call records '" + path_ + "': the file system refused WAL mode");
  }
  writer_->exec("PRAGMA synchronous = FULL");
  migrate(*writer_);
  set_max_pages(options.max_pages);

  reader_ = std::make_unique<Connection>(path_, options.busy_timeout_ms);
  reader_->exec("PRAGMA query_only = ON");
}

SqliteStore::~SqliteStore() = default;

void SqliteStore::set_max_pages(uint32_t max_pages) {
  std::lock_guard lock(write_mutex_);
  // 0 restores SQLite's default ceiling (4294967294 pages).
  const uint32_t pages = max_pages == 0 ? 4294967294u : max_pages;
  const std::string sql = "PRAGMA max_page_count = " + std::to_string(pages);
  writer_->scalar(sql);
}

void SqliteStore::put(const CallRecord& record) {
  static const std::string kInsert = std::string("INSERT OR REPLACE INTO calls (") + kColumns +
                                     ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
  const std::vector<Value> values = record_values(record);
  std::lock_guard lock(write_mutex_);
  Connection& c = *writer_;
  c.exec("BEGIN IMMEDIATE");
  try {
    {
      sqlite3_stmt* stmt = c.prepare(kInsert);
      ResetOnExit reset{stmt};
      for (int i = 0; i < kColumnCount; ++i) c.bind(stmt, i + 1, values[static_cast<size_t>(i)]);
      if (sqlite3_step(stmt) != SQLITE_DONE) c.fail("storing record " + record.id);
    }
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

RecordPage SqliteStore::query(const RecordQuery& q) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM calls WHERE 1";
  std::vector<Value> values;
  if (q.user) {
    sql += " AND (caller = ? OR callee = ?)";
    values.insert(values.end(), {*q.user, *q.user});
  }
  if (q.tenant) {
    sql += " AND tenant = ?";
    values.emplace_back(*q.tenant);
  }
  if (q.outcome) {
    sql += " AND outcome = ?";
    values.emplace_back(std::string(to_string(*q.outcome)));
  }
  if (q.since) {
    sql += " AND created >= ?";
    values.emplace_back(*q.since);
  }
  if (q.until) {
    sql += " AND created < ?";
    values.emplace_back(*q.until);
  }
  if (!q.cursor.empty()) {
    auto [created, id] = decode_record_cursor(q.cursor);  // throws before any I/O
    sql += " AND (created, id) < (?, ?)";
    values.emplace_back(created);
    values.emplace_back(std::move(id));
  }
  // One row beyond the page tells whether another page follows.
  const size_t limit = std::clamp<size_t>(q.limit, 1, kMaxLimit);
  sql += " ORDER BY created DESC, id DESC LIMIT ?";
  values.emplace_back(static_cast<int64_t>(limit + 1));

  std::lock_guard lock(read_mutex_);
  Connection& c = *reader_;
  sqlite3_stmt* stmt = c.prepare(sql);
  ResetOnExit reset{stmt};
  for (size_t i = 0; i < values.size(); ++i) c.bind(stmt, static_cast<int>(i + 1), values[i]);
  RecordPage page;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (page.records.size() == limit) {
      const CallRecord& last = page.records.back();
      page.next_cursor = encode_record_cursor(last.created, last.id);
      break;
    }
    page.records.push_back(read_row(stmt, path_));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) c.fail("query");
  return page;
}

std::optional<CallRecord> SqliteStore::get(std::string_view id) {
  static const std::string kSelect = std::string("SELECT ") + kColumns + " FROM calls WHERE id = ?";
  std::lock_guard lock(read_mutex_);
  Connection& c = *reader_;
  sqlite3_stmt* stmt = c.prepare(kSelect);
  ResetOnExit reset{stmt};
  c.bind(stmt, 1, std::string(id));
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) return read_row(stmt, path_);
  if (rc != SQLITE_DONE) c.fail("get");
  return std::nullopt;
}

}  // namespace callrelay::calls
