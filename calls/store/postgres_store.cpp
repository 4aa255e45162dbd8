#include "calls/store/postgres_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "base/log.hpp"
#include "calls/store/record_json.hpp"
#include "calls/store/sqlite_store.hpp"  // the cursor codec both stores share

namespace callrelay::calls {

namespace {

/// Schema steps: kMigrations[v] takes a database from version v to v + 1. Ids compare
/// bytewise (COLLATE "C") as in SQLite, so that the order of a page and the cursor's
/// comparison agree with each other and with the SQLite store whatever the database's locale.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE call_records (
  id text COLLATE "C" PRIMARY KEY,
  caller text NOT NULL,
  callee text NOT NULL,
  tenant text NOT NULL,
  caller_device text NOT NULL,
  answered_device text NOT NULL,
  audio boolean NOT NULL,
  video boolean NOT NULL,
  created bigint NOT NULL,
  answered bigint NOT NULL,
  connected bigint NOT NULL,
  ended bigint NOT NULL,
  outcome text NOT NULL,
  end_reason text NOT NULL,
  ended_by text NOT NULL,
  setup_ms bigint NOT NULL,
  ice_restarts bigint NOT NULL,
  reconnects bigint NOT NULL,
  bytes_caller_to_callee bigint NOT NULL,
  bytes_callee_to_caller bigint NOT NULL,
  relay_allocations bigint NOT NULL,
  quality text
);
CREATE INDEX call_records_created ON call_records (created DESC, id DESC);
CREATE INDEX call_records_caller ON call_records (caller, created DESC, id DESC);
CREATE INDEX call_records_callee ON call_records (callee, created DESC, id DESC);
CREATE INDEX call_records_tenant ON call_records (tenant, created DESC, id DESC);
CREATE INDEX call_records_outcome ON call_records (outcome, created DESC, id DESC);
)sql",
};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion);

/// The advisory lock that serializes migrations of instances starting together ("callrela").
constexpr int64_t kMigrationLock = 0x63616c6c72656c61;

constexpr const char* kColumnNames[] = {"id",
                                        "caller",
                                        "callee",
                                        "tenant",
                                        "caller_device",
                                        "answered_device",
                                        "audio",
                                        "video",
                                        "created",
                                        "answered",
                                        "connected",
                                        "ended",
                                        "outcome",
                                        "end_reason",
                                        "ended_by",
                                        "setup_ms",
                                        "ice_restarts",
                                        "reconnects",
                                        "bytes_caller_to_callee",
                                        "bytes_callee_to_caller",
                                        "relay_allocations",
                                        "quality"};
constexpr size_t kColumnCount = std::size(kColumnNames);
constexpr size_t kMaxLimit = 1000;

std::string column_list() {
  std::string out;
  for (const char* c : kColumnNames) out += (out.empty() ? "" : ", ") + std::string(c);
  return out;
}

/// INSERT ... ON CONFLICT (id) DO UPDATE: put() replaces by id, as the SQLite store does.
std::string upsert_sql() {
  std::string sql = "INSERT INTO call_records (" + column_list() + ") VALUES (";
  for (size_t i = 1; i <= kColumnCount; ++i) sql += (i > 1 ? ",$" : "$") + std::to_string(i);
  sql += ") ON CONFLICT (id) DO UPDATE SET ";
  for (size_t i = 1; i < kColumnCount; ++i) {
    sql += (i > 1 ? ", " : "") + std::string(kColumnNames[i]) + " = EXCLUDED." + kColumnNames[i];
  }
  return sql;
}

/// A text parameter; nullopt binds NULL.
using Param = std::optional<std::string>;

std::vector<Param> record_params(const CallRecord& r) {
  auto b = [](bool v) { return Param(v ? "true" : "false"); };
  auto i = [](int64_t v) { return Param(std::to_string(v)); };
  return {r.id,
          r.caller,
          r.callee,
          r.tenant,
          r.caller_device,
          r.answered_device,
          b(r.media.audio),
          b(r.media.video),
          i(r.created),
          i(r.answered),
          i(r.connected),
          i(r.ended),
          std::string(to_string(r.outcome)),
          r.end_reason,
          std::string(to_string(r.ended_by)),
          i(r.setup_ms),
          i(r.ice_restarts),
          i(r.reconnects),
          i(static_cast<int64_t>(r.bytes_caller_to_callee)),  // same bits back in read_row
          i(static_cast<int64_t>(r.bytes_callee_to_caller)),
          i(r.relay_allocations),
          r.quality.empty() ? std::nullopt : Param(quality_to_json(r.quality).dump())};
}

std::optional<Party> parse_party(std::string_view text) {
  for (Party p : {Party::kCaller, Party::kCallee, Party::kServer}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

[[noreturn]] void bad_row(const std::string& id, const char* what) {
  throw std::runtime_error("call records (PostgreSQL): record " + id + " has " + what);
}

int64_t int_value(const PGresult* res, int row, int col, const std::string& id) {
  const char* text = PQgetvalue(res, row, col);
  const char* end = text + PQgetlength(res, row, col);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || p != end) bad_row(id, "a non-integer column");
  return v;
}

uint32_t u32_value(const PGresult* res, int row, int col, const std::string& id) {
  return static_cast<uint32_t>(std::clamp<int64_t>(int_value(res, row, col, id), 0, UINT32_MAX));
}

std::string text_value(const PGresult* res, int row, int col) {
  return std::string(PQgetvalue(res, row, col), static_cast<size_t>(PQgetlength(res, row, col)));
}

CallRecord read_row(const PGresult* res, int row) {
  CallRecord r;
  r.id = text_value(res, row, 0);
  r.caller = text_value(res, row, 1);
  r.callee = text_value(res, row, 2);
  r.tenant = text_value(res, row, 3);
  r.caller_device = text_value(res, row, 4);
  r.answered_device = text_value(res, row, 5);
  r.media.audio = text_value(res, row, 6) == "t";
  r.media.video = text_value(res, row, 7) == "t";
  r.created = int_value(res, row, 8, r.id);
  r.answered = int_value(res, row, 9, r.id);
  r.connected = int_value(res, row, 10, r.id);
  r.ended = int_value(res, row, 11, r.id);
  const auto outcome = parse_outcome(text_value(res, row, 12));
  r.end_reason = text_value(res, row, 13);
  const auto ended_by = parse_party(text_value(res, row, 14));
  if (!outcome || !ended_by) bad_row(r.id, "an unknown outcome or ended_by");
  r.outcome = *outcome;
  r.ended_by = *ended_by;
  r.setup_ms = int_value(res, row, 15, r.id);
  r.ice_restarts = u32_value(res, row, 16, r.id);
  r.reconnects = u32_value(res, row, 17, r.id);
  r.bytes_caller_to_callee = static_cast<uint64_t>(int_value(res, row, 18, r.id));
  r.bytes_callee_to_caller = static_cast<uint64_t>(int_value(res, row, 19, r.id));
  r.relay_allocations = u32_value(res, row, 20, r.id);
  if (!PQgetisnull(res, row, 21)) {
    const auto json = nlohmann::json::parse(text_value(res, row, 21), nullptr, false);
    auto quality = json.is_discarded() ? std::nullopt : quality_from_json(json);
    if (!quality) bad_row(r.id, "an unreadable quality column");
    r.quality = std::move(*quality);
  }
  return r;
}

}  // namespace

/// One libpq connection, opened on first use and again after it broke.
class PostgresStore::Connection {
 public:
  Connection(const std::string& url, const Options& options, std::atomic<uint64_t>& reconnects)
      : url_(url),
        timeout_(std::to_string(options.connect_timeout_s)),
        application_(options.application_name),
        reconnects_(reconnects) {}
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs `sql` with text parameters; the result of a command or a query. Throws
  /// std::runtime_error, closing the connection first when it broke (the next call reopens).
  Result exec(const std::string& sql, const std::vector<Param>& params = {}) {
    PGconn* c = open();
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
    // Without parameters, the simple protocol: a migration step is several statements.
    Result res(params.empty() ? PQexec(c, sql.c_str())
                              : PQexecParams(c, sql.c_str(), static_cast<int>(values.size()),
                                             nullptr, values.data(), nullptr, nullptr, 0));
    const ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(c, res.get());
    return res;
  }

  /// Rolls back an open transaction; a broken connection is simply closed.
  void rollback() noexcept {
    if (!conn_) return;
    if (PQstatus(conn_) != CONNECTION_OK) {
      close();
      return;
    }
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) PQclear(PQexec(conn_, "ROLLBACK"));
  }

 private:
  PGconn* open() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return conn_;
    close();
    // Earlier keywords are defaults the URL (expanded from dbname) may override.
    const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname",
                          nullptr};
    const char* values[] = {timeout_.c_str(), application_.c_str(), "UTF8", url_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
      close();
      throw std::runtime_error("call records (PostgreSQL): cannot connect: " + why);
    }
    // Server notices (IF NOT EXISTS skipped, ...) are not ours to print on stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    if (opened_++ > 0) reconnects_.fetch_add(1, std::memory_order_relaxed);
    return conn_;
  }

  [[noreturn]] void fail(PGconn* c, const PGresult* res) {
    const std::string why = trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(c));
    // libpq does not always mark a connection the server dropped as bad. An error without a
    // SQLSTATE comes from libpq itself (the socket), and classes 08 (connection exception) and
    // 57P (operator intervention: shutdown) end the session: open a new one next time. Other
    // errors (a refused value) leave the session usable.
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const std::string_view sqlstate = state ? state : "";
    if (PQstatus(c) != CONNECTION_OK || sqlstate.empty() || sqlstate.starts_with("08") ||
        sqlstate.starts_with("57P"))
      close();
    throw std::runtime_error("call records (PostgreSQL): " + why);
  }

  void close() noexcept {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  static std::string trimmed(const char* message) {
    std::string s = message ? message : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (char& ch : s) {
      if (ch == '\n' || ch == '\t') ch = ' ';
    }
    return s.empty() ? "unknown error" : s;
  }

  std::string url_;
  std::string timeout_;
  std::string application_;
  std::atomic<uint64_t>& reconnects_;
  PGconn* conn_ = nullptr;
  uint64_t opened_ = 0;
};

PostgresStore::PostgresStore(std::string url) : PostgresStore(std::move(url), Options{}) {}

PostgresStore::PostgresStore(std::string url, Options options)
    : url_(std::move(url)), options_(options) {
  writer_ = std::make_unique<Connection>(url_, options_, reconnects_);
  reader_ = std::make_unique<Connection>(url_, options_, reconnects_);
  // Migrations in one transaction under a transaction-scoped advisory lock: a second instance
  // starting at the same moment waits, then finds the schema current and changes nothing.
  Connection& c = *writer_;
  try {
    c.exec("BEGIN");
    c.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLock) + ")");
    c.exec(
        "CREATE TABLE IF NOT EXISTS callrelay_schema_version ("
        "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
    const Result res = c.exec("SELECT coalesce(max(version), 0) FROM callrelay_schema_version");
    const int64_t version = std::stoll(PQgetvalue(res.get(), 0, 0));
    if (version > kPostgresSchemaVersion) {
      throw std::runtime_error("call records (PostgreSQL): schema version " +
                               std::to_string(version) + " is newer than this build's (" +
                               std::to_string(kPostgresSchemaVersion) + ")");
    }
    for (auto v = static_cast<size_t>(version); v < std::size(kMigrations); ++v) {
      c.exec(kMigrations[v]);
      c.exec("INSERT INTO callrelay_schema_version (version) VALUES ($1)", {std::to_string(v + 1)});
      log::info("call_records.migrated", {{"schema_version", v + 1}},
                "call records: PostgreSQL schema migrated to version ", v + 1);
    }
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

PostgresStore::~PostgresStore() = default;

void PostgresStore::put(const CallRecord& record) { put_batch(std::span(&record, 1)); }

void PostgresStore::put_batch(std::span<const CallRecord> records) {
  if (records.empty()) return;
  static const std::string kUpsert = upsert_sql();
  std::lock_guard lock(write_mutex_);
  Connection& c = *writer_;
  try {
    c.exec("BEGIN");
    for (const CallRecord& r : records) c.exec(kUpsert, record_params(r));
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

RecordPage PostgresStore::query(const RecordQuery& q) {
  std::string sql = "SELECT " + column_list() + " FROM call_records WHERE true";
  std::vector<Param> params;
  auto next = [&params](std::string value) {
    params.emplace_back(std::move(value));
    return "$" + std::to_string(params.size());
  };
  if (q.user) {
    const std::string p = next(*q.user);
    sql += " AND (caller = " + p + " OR callee = " + p + ")";
  }
  if (q.tenant) sql += " AND tenant = " + next(*q.tenant);
  if (q.outcome) sql += " AND outcome = " + next(std::string(to_string(*q.outcome)));
  if (q.since) sql += " AND created >= " + next(std::to_string(*q.since));
  if (q.until) sql += " AND created < " + next(std::to_string(*q.until));
  if (!q.cursor.empty()) {
    auto [created, id] = decode_record_cursor(q.cursor);  // throws before any I/O
    const std::string pc = next(std::to_string(created));
    sql += " AND (created, id) < (" + pc + "::bigint, " + next(std::move(id)) + ")";
  }
  // One row beyond the page tells whether another page follows.
  const size_t limit = std::clamp<size_t>(q.limit, 1, kMaxLimit);
  sql += " ORDER BY created DESC, id DESC LIMIT " + next(std::to_string(limit + 1));

  std::lock_guard lock(read_mutex_);
  const Result res = reader_->exec(sql, params);
  RecordPage page;
  const int rows = PQntuples(res.get());
  for (int row = 0; row < rows; ++row) {
    if (page.records.size() == limit) {
      const CallRecord& last = page.records.back();
      page.next_cursor = encode_record_cursor(last.created, last.id);
      break;
    }
    page.records.push_back(read_row(res.get(), row));
  }
  return page;
}

std::optional<CallRecord> PostgresStore::get(std::string_view id) {
  static const std::string kSelect = "SELECT " + column_list() + " FROM call_records WHERE id = $1";
  std::lock_guard lock(read_mutex_);
  const Result res = reader_->exec(kSelect, {std::string(id)});
  if (PQntuples(res.get()) == 0) return std::nullopt;
  return read_row(res.get(), 0);
}

}  // namespace callrelay::calls
