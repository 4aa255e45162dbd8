// SqliteStore against real files: every field back, filters, keyset pages, hostile cursors,
// reopening, the schema version, a full disk and a kill -9 in the middle of writing.
#include "calls/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

using test::make_record;
using test::RawDb;

constexpr TimeMs kT0 = 1796237106123;
constexpr std::string_view kBase64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 section 5 without padding, written independently of the store's.
std::string base64url(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = 0;
    const size_t len = std::min<size_t>(3, in.size() - i);
    for (size_t k = 0; k < 3; ++k) {
      n = (n << 8) | (k < len ? static_cast<unsigned char>(in[i + k]) : 0u);
    }
    for (size_t k = 0; k < len + 1; ++k) out.push_back(kBase64Url[(n >> (18 - 6 * k)) & 0x3f]);
  }
  return out;
}

/// RecordQuery with only the named filters set (designated initializers would have to name
/// every member under -Wextra).
struct Q {
  RecordQuery q;
  Q& user(std::string v) { return q.user = std::move(v), *this; }
  Q& tenant(std::string v) { return q.tenant = std::move(v), *this; }
  Q& outcome(Outcome v) { return q.outcome = v, *this; }
  Q& since(TimeMs v) { return q.since = v, *this; }
  Q& until(TimeMs v) { return q.until = v, *this; }
  Q& limit(size_t v) { return q.limit = v, *this; }
  Q& cursor(std::string v) { return q.cursor = std::move(v), *this; }
  operator RecordQuery() const { return q; }
};

std::vector<std::string> ids(const std::vector<CallRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.id);
  return out;
}

/// The ids of `all` that match `pred`, in the order the store pages them.
std::vector<std::string> expected(std::vector<CallRecord> all,
                                  const std::function<bool(const CallRecord&)>& pred) {
  std::erase_if(all, [&](const CallRecord& r) { return !pred(r); });
  std::sort(all.begin(), all.end(), [](const CallRecord& a, const CallRecord& b) {
    return std::tie(a.created, a.id) > std::tie(b.created, b.id);
  });
  return ids(all);
}

/// Every page of `q` from the first, concatenated; fails the test on a repeated id.
std::vector<std::string> all_pages(SqliteStore& store, RecordQuery q, size_t* pages = nullptr) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  q.cursor.clear();
  for (size_t n = 1;; ++n) {
    RecordPage page = store.query(q);
    for (const auto& r : page.records) {
      EXPECT_TRUE(seen.insert(r.id).second) << "repeated " << r.id;
      out.push_back(r.id);
    }
    if (pages) *pages = n;
    if (page.next_cursor.empty()) return out;
    EXPECT_EQ(page.records.size(), std::clamp<size_t>(q.limit, 1, 1000));
    q.cursor = page.next_cursor;
  }
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  test::ScratchDir dir_;
  std::string path_ = dir_.file("calls.sqlite3");
};

TEST_F(SqliteStoreTest, EveryFieldRoundTrips) {
  SqliteStore store(path_);
  CallRecord full = make_record(1, kT0);
  full.bytes_caller_to_callee = UINT64_MAX;  // beyond SQLite's signed integers
  full.outcome = Outcome::kPeerDisconnected;
  full.ended_by = Party::kServer;
  full.ice_restarts = UINT32_MAX;
  CallRecord sparse;
  sparse.id = "c_sparse";
  sparse.created = kT0 - 5;
  sparse.caller_device = "d_1";
  store.put(full);
  store.put(sparse);
  EXPECT_EQ(store.get(full.id), full);
  EXPECT_EQ(store.get(sparse.id), sparse);
  EXPECT_EQ(store.get("c_missing"), std::nullopt);
  RecordPage page = store.query({});
  ASSERT_EQ(page.records.size(), 2u);
  EXPECT_EQ(page.records[0], full);
  EXPECT_EQ(page.records[1], sparse);
  EXPECT_EQ(page.next_cursor, "");
}

TEST_F(SqliteStoreTest, PutReplacesTheRecordWithTheSameId) {
  SqliteStore store(path_);
  CallRecord r = make_record(1, kT0);
  store.put(r);
  r.end_reason = "max-duration";
  r.created = kT0 + 1;
  store.put(r);
  EXPECT_EQ(store.get(r.id), r);
  EXPECT_EQ(store.query({}).records.size(), 1u);
}

TEST_F(SqliteStoreTest, FiltersAloneAndCombined) {
  SqliteStore store(path_);
  const char* users[] = {"alice", "bob", "carol", "dave"};
  const char* tenants[] = {"acme", "", "globex"};
  std::vector<CallRecord> all;
  for (int i = 0; i < 84; ++i) {
    CallRecord r = make_record(i, kT0 + (i % 9) * 1000);
    r.caller = users[i % 4];
    r.callee = users[(i / 4 + 1 + i % 4) % 4];
    r.tenant = tenants[i % 3];
    r.outcome = kAllOutcomes[i % 7];
    store.put(r);
    all.push_back(r);
  }
  auto check = [&](RecordQuery q, const std::function<bool(const CallRecord&)>& pred) {
    q.limit = 1000;
    RecordPage page = store.query(q);
    EXPECT_EQ(ids(page.records), expected(all, pred));
    EXPECT_EQ(page.next_cursor, "");
  };
  auto user_is = [](const std::string& u) {
    return [u](const CallRecord& r) { return r.caller == u || r.callee == u; };
  };
  check({}, [](const CallRecord&) { return true; });
  check(Q().user("carol"), user_is("carol"));
  check(Q().user("nobody"), user_is("nobody"));
  check(Q().tenant("acme"), [](const CallRecord& r) { return r.tenant == "acme"; });
  check(Q().tenant(""), [](const CallRecord& r) { return r.tenant.empty(); });
  check(Q().outcome(Outcome::kBusy),
        [](const CallRecord& r) { return r.outcome == Outcome::kBusy; });
  check(Q().since(kT0 + 3000), [](const CallRecord& r) { return r.created >= kT0 + 3000; });
  check(Q().until(kT0 + 3000), [](const CallRecord& r) { return r.created < kT0 + 3000; });
  check(Q().user("alice").tenant("globex").since(kT0 + 2000).until(kT0 + 7000),
        [&](const CallRecord& r) {
          return user_is("alice")(r) && r.tenant == "globex" && r.created >= kT0 + 2000 &&
                 r.created < kT0 + 7000;
        });
  check(Q().user("bob").outcome(Outcome::kMissed),
        [&](const CallRecord& r) { return user_is("bob")(r) && r.outcome == Outcome::kMissed; });
  // Values are bound, never spliced into SQL.
  check(Q().user("alice' OR '1'='1"), user_is("alice' OR '1'='1"));
}

TEST_F(SqliteStoreTest, PagesMissAndRepeatNothingAcrossEqualCreatedTimes) {
  SqliteStore store(path_);
  std::vector<CallRecord> all;
  for (int i = 0; i < 230; ++i) {
    CallRecord r = make_record(i * 7919 % 230, kT0 + (i % 5) * 10);  // ids not in time order
    r.outcome = i % 3 == 0 ? Outcome::kMissed : Outcome::kCompleted;
    store.put(r);
    all.push_back(r);
  }
  size_t pages = 0;
  EXPECT_EQ(all_pages(store, Q().limit(17), &pages),
            expected(all, [](const CallRecord&) { return true; }));
  EXPECT_EQ(pages, 14u);  // 13 full pages and one of 9
  EXPECT_EQ(all_pages(store, Q().outcome(Outcome::kMissed).limit(11)),
            expected(all, [](const CallRecord& r) { return r.outcome == Outcome::kMissed; }));
  // A page that ends exactly at the last row has no next cursor.
  EXPECT_EQ(all_pages(store, Q().limit(23), &pages).size(), 230u);
  EXPECT_EQ(pages, 10u);
  // A record inserted after the first page, newer than the cursor, does not shift the rest.
  RecordPage first = store.query(Q().limit(50));
  store.put(make_record(5000, kT0 + 1000));
  RecordQuery rest = Q().limit(1000).cursor(first.next_cursor);
  auto remaining = ids(store.query(rest).records);
  auto want = expected(all, [](const CallRecord&) { return true; });
  EXPECT_EQ(remaining, std::vector<std::string>(want.begin() + 50, want.end()));
}

TEST_F(SqliteStoreTest, LimitIsClampedToOneThroughAThousand) {
  SqliteStore store(path_);
  store.put(make_record(0, kT0));
  // 1001 copies in one transaction: a thousand fsynced put()s would only slow the test.
  RawDb(path_).exec(
      "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 1001) "
      "INSERT INTO calls SELECT id || '_' || n, caller, callee, tenant, caller_device, "
      "answered_device, audio, video, created + n, answered, connected, ended, outcome, "
      "end_reason, ended_by, setup_ms, ice_restarts, reconnects, bytes_caller_to_callee, "
      "bytes_callee_to_caller, relay_allocations, quality FROM calls, seq");
  RecordPage one = store.query(Q().limit(0));
  EXPECT_EQ(one.records.size(), 1u);
  EXPECT_NE(one.next_cursor, "");
  RecordPage most = store.query(Q().limit(5000));
  EXPECT_EQ(most.records.size(), 1000u);
  RecordPage last = store.query(Q().limit(5000).cursor(most.next_cursor));
  EXPECT_EQ(last.records.size(), 2u);
  EXPECT_EQ(last.next_cursor, "");
}

TEST_F(SqliteStoreTest, MalformedCursorsAreInvalidArguments) {
  SqliteStore store(path_);
  for (int i = 0; i < 3; ++i) store.put(make_record(i, kT0));
  const std::string good = store.query(Q().limit(1)).next_cursor;
  ASSERT_NE(good, "");
  EXPECT_EQ(store.query(Q().limit(1).cursor(good)).records.size(), 1u);

  std::mt19937 rng(20261202);
  auto random_string = [&](std::string_view alphabet, size_t max_len) {
    std::string s(1 + rng() % max_len, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  std::string printable, bytes;
  for (int c = 0x20; c < 0x7f; ++c) printable.push_back(static_cast<char>(c));
  for (int c = 0; c < 256; ++c) bytes.push_back(static_cast<char>(c));

  std::vector<std::string> bad = {"=",
                                  "MTox",
                                  good + "=",
                                  good + "!",
                                  good.substr(1),
                                  good.substr(0, good.size() - 1) + "~",
                                  std::string(5000, 'A')};
  for (int i = 0; i < 200; ++i) bad.push_back(random_string(printable, 60));
  for (int i = 0; i < 200; ++i) bad.push_back(random_string(kBase64Url, 60));
  // Canonical base64url of bytes that are not a cursor.
  for (int i = 0; i < 200; ++i) bad.push_back(base64url(random_string(bytes, 40)));
  for (const char* text : {"1", "1:", "1::c_x", "1:12a:c_x", "2:5:c_x", "1:5:", "1:-:c_x",
                           "1:99999999999999999999:c_x", "1:5:c_\x01", "x1:5:c_x"}) {
    bad.push_back(base64url(text));
  }
  for (const std::string& cursor : bad) {
    EXPECT_THROW(store.query(Q().cursor(cursor)), std::invalid_argument) << cursor;
  }
  // The helper agrees with the store's own encoding, so the cases above are well-formed.
  EXPECT_EQ(base64url("1:" + std::to_string(kT0) + ":c_1000002"), good);
}

TEST_F(SqliteStoreTest, ReopeningKeepsTheRecordsAndTheSchemaVersionIsSet) {
  std::vector<CallRecord> all;
  {
    SqliteStore store(path_);
    for (int i = 0; i < 5; ++i) {
      all.push_back(make_record(i, kT0 + i));
      store.put(all.back());
    }
  }
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(kRecordSchemaVersion));
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(raw.text("SELECT count(*) FROM calls"), "5");
  }
  SqliteStore store(path_);
  for (const auto& r : all) EXPECT_EQ(store.get(r.id), r);
  EXPECT_EQ(store.query({}).records.size(), 5u);
}

TEST_F(SqliteStoreTest, ANewFileIsReadableByItsOwnerOnly) {
  SqliteStore store(path_);
  store.put(make_record(1, kT0));
  for (const char* suffix : {"", "-wal"}) {
    const auto perms = std::filesystem::status(path_ + suffix).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << suffix;
  }
}

TEST_F(SqliteStoreTest, RefusesAFileFromANewerSchema) {
  { SqliteStore store(path_); }
  {
    RawDb raw(path_);
    raw.text("PRAGMA user_version = 99");
  }
  try {
    SqliteStore store(path_);
    FAIL() << "opened a schema version 99 file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

TEST_F(SqliteStoreTest, MissingDirectoryOrForeignFileIsAClearError) {
  const std::string missing = dir_.file("no-such-dir/calls.sqlite3");
  try {
    SqliteStore store(missing);
    FAIL() << "opened a file in a missing directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  const std::string text_file = dir_.file("notes.txt");
  std::ofstream(text_file) << std::string(4096, 'x');
  try {
    SqliteStore store(text_file);
    FAIL() << "opened a text file as a database";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(text_file), std::string::npos) << e.what();
  }
}

TEST_F(SqliteStoreTest, AFullDiskFailsPutAndCorruptsNothing) {
  SqliteStore store(path_);
  std::vector<CallRecord> stored;
  for (int i = 0; i < 3; ++i) {
    stored.push_back(make_record(i, kT0 + i));
    store.put(stored.back());
  }
  const auto pages = std::stoul(RawDb(path_).text("PRAGMA page_count"));
  store.set_max_pages(static_cast<uint32_t>(pages));  // the disk is full from here on
  CallRecord big = make_record(100, kT0 + 100);
  int failures = 0;
  for (int i = 0; i < 50 && failures == 0; ++i) {
    big.id = "c_big" + std::to_string(i);
    big.end_reason = std::string(3000, static_cast<char>('a' + i % 26));
    try {
      store.put(big);
      stored.push_back(big);
    } catch (const std::runtime_error& e) {
      ++failures;
      EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
    }
  }
  ASSERT_EQ(failures, 1) << "the page limit never filled";
  EXPECT_EQ(store.get(big.id), std::nullopt);
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
    EXPECT_EQ(raw.text("SELECT count(*) FROM calls"), std::to_string(stored.size()));
  }
  for (const auto& r : stored) EXPECT_EQ(store.get(r.id), r);
  store.set_max_pages(0);  // space freed
  store.put(big);
  EXPECT_EQ(store.get(big.id), big);
  EXPECT_EQ(RawDb(path_).text("PRAGMA integrity_check"), "ok");
}

TEST_F(SqliteStoreTest, ReadersAndTheWriterWorkAtTheSameTime) {
  SqliteStore store(path_);
  constexpr int kRecords = 150;
  std::thread writer([&] {
    for (int i = 0; i < kRecords; ++i) store.put(make_record(i, kT0 + i));
  });
  size_t seen = 0;
  while (seen < kRecords) {
    const size_t now = store.query(Q().limit(1000)).records.size();
    EXPECT_GE(now, seen);  // committed records never disappear
    if (now < seen) break;
    seen = now;
  }
  writer.join();
  EXPECT_EQ(store.query(Q().limit(1000)).records.size(), size_t{kRecords});
}

/// The child of the crash test: stores records until killed, writing each index to `fd` once
/// put() returned. Never returns.
[[noreturn]] void write_until_killed(const std::string& path, int fd) {
  try {
    SqliteStore store(path);
    for (int i = 0;; ++i) {
      CallRecord r = make_record(i, kT0 + i);
      r.end_reason = std::string(static_cast<size_t>(100 + i % 2000), 'r');  // many pages
      store.put(r);
      if (write(fd, &i, sizeof i) != sizeof i) _exit(3);
    }
  } catch (...) {
    _exit(2);
  }
}

TEST_F(SqliteStoreTest, EveryCommittedRecordSurvivesKillNine) {
  { SqliteStore create(path_); }  // the schema exists before the child starts
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    write_until_killed(path_, fds[1]);
  }
  close(fds[1]);
  // Let the child commit a few hundred records, then kill it wherever it is.
  std::vector<int> committed;
  int index = 0;
  while (committed.size() < 300 && read(fds[0], &index, sizeof index) == sizeof index) {
    committed.push_back(index);
  }
  ASSERT_EQ(committed.size(), 300u) << "the writer died on its own";
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  while (read(fds[0], &index, sizeof index) == sizeof index) committed.push_back(index);
  close(fds[0]);

  EXPECT_EQ(RawDb(path_).text("PRAGMA integrity_check"), "ok");
  SqliteStore store(path_);
  for (int i : committed) {
    auto r = store.get(make_record(i, 0).id);
    ASSERT_TRUE(r.has_value()) << "record " << i << " was reported committed";
    EXPECT_EQ(r->created, kT0 + i);
  }
  const size_t rows = std::stoul(RawDb(path_).text("SELECT count(*) FROM calls"));
  EXPECT_GE(rows, committed.size());  // at most one more: committed, not yet reported
  EXPECT_LE(rows, committed.size() + 1);
}

}  // namespace
}  // namespace callrelay::calls
