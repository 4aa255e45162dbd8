// PostgresStore against a real PostgreSQL server: every field back, the same pages as the
// SQLite store for the same records and queries, migrations (once, under concurrent starts,
// a newer schema refused), batches that commit whole or not at all, and records kept through
// a server restart by the RecordWriter retrying.
#include "calls/store/postgres_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "calls/store/record_writer.hpp"
#include "calls/store/sqlite_store.hpp"
#include "postgres_test_support.hpp"
#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

using namespace std::chrono_literals;
using test::make_record;
using test::PgServer;
using test::RawPg;

constexpr TimeMs kT0 = 1796237106123;

class PostgresStoreTest : public ::testing::Test {
 protected:
  std::string url_ = PgServer::instance().fresh_database();
};

std::vector<std::string> ids(const std::vector<CallRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.id);
  return out;
}

/// Every page of `q` from the first: the ids of each page and whether a cursor followed.
std::vector<std::vector<std::string>> pages(RecordStore& store, RecordQuery q) {
  std::vector<std::vector<std::string>> out;
  q.cursor.clear();
  for (;;) {
    RecordPage page = store.query(q);
    out.push_back(ids(page.records));
    if (page.next_cursor.empty() || out.size() > 1000) return out;
    q.cursor = page.next_cursor;
  }
}

TEST_F(PostgresStoreTest, EveryFieldRoundTrips) {
  PostgresStore store(url_);
  CallRecord full = make_record(1, kT0);
  full.bytes_caller_to_callee = UINT64_MAX;  // beyond PostgreSQL's signed bigint
  full.outcome = Outcome::kPeerDisconnected;
  full.ended_by = Party::kServer;
  full.ice_restarts = UINT32_MAX;
  full.caller = "Zoë ünïcode 用户";
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

TEST_F(PostgresStoreTest, PutReplacesTheRecordWithTheSameId) {
  PostgresStore store(url_);
  CallRecord r = make_record(1, kT0);
  store.put(r);
  r.end_reason = "max-duration";
  r.created = kT0 + 1;
  r.quality = {};
  store.put(r);
  EXPECT_EQ(store.get(r.id), r);
  EXPECT_EQ(store.query({}).records.size(), 1u);
}

// The records API answers the same from either store: same filters, same order (ids compared
// bytewise, whatever the database's collation), same page boundaries and the same cursors.
TEST_F(PostgresStoreTest, PagesAndCursorsAreTheSameAsSqlites) {
  test::ScratchDir dir;
  SqliteStore sqlite(dir.file("calls.sqlite3"));
  PostgresStore pg(url_);
  const char* users[] = {"alice", "Bob", "carol", "dave"};
  const char* tenants[] = {"acme", "", "globex"};
  std::vector<CallRecord> all;
  for (int i = 0; i < 150; ++i) {
    CallRecord r = make_record(i * 7919 % 150, kT0 + (i % 6) * 1000);  // ties on created
    if (i % 5 == 0) r.id = "C_" + r.id.substr(2);  // upper and lower case ids in one tie
    r.caller = users[i % 4];
    r.callee = users[(i / 4 + 1 + i % 4) % 4];
    r.tenant = tenants[i % 3];
    r.outcome = kAllOutcomes[i % 7];
    all.push_back(r);
  }
  sqlite.put_batch(all);
  pg.put_batch(all);
  std::vector<RecordQuery> queries(9);
  queries[1].user = "carol";
  queries[2].tenant = "";
  queries[3].outcome = Outcome::kBusy;
  queries[4].since = kT0 + 2000;
  queries[5].until = kT0 + 3000;
  queries[6].user = "alice";
  queries[6].tenant = "globex";
  queries[6].since = kT0 + 1000;
  queries[6].until = kT0 + 5000;
  queries[7].user = "alice' OR '1'='1";  // bound, never spliced into SQL
  queries[8].user = "Bob";
  for (size_t limit : {size_t{7}, size_t{50}, size_t{1000}}) {
    for (size_t i = 0; i < queries.size(); ++i) {
      RecordQuery q = queries[i];
      q.limit = limit;
      const auto want = pages(sqlite, q);
      EXPECT_EQ(pages(pg, q), want) << "query " << i << " limit " << limit;
      // The cursors themselves are interchangeable between the stores.
      const RecordPage first = sqlite.query(q);
      if (!first.next_cursor.empty()) {
        q.cursor = first.next_cursor;
        EXPECT_EQ(pg.query(q).records, sqlite.query(q).records) << "query " << i;
        EXPECT_EQ(pg.query(q).next_cursor, sqlite.query(q).next_cursor) << "query " << i;
      }
    }
  }
  EXPECT_EQ(pages(pg, {}).front().size(), 100u);  // the default limit
  RecordQuery all_q;
  all_q.limit = 5000;  // clamped to 1000
  EXPECT_EQ(pg.query(all_q).records.size(), 150u);
}

TEST_F(PostgresStoreTest, MalformedCursorsAreInvalidArguments) {
  PostgresStore store(url_);
  for (const std::string& cursor :
       std::vector<std::string>{"!!", "MTo", "eA", std::string(3000, 'A')}) {
    RecordQuery q;
    q.cursor = cursor;
    EXPECT_THROW(store.query(q), std::invalid_argument) << cursor;
  }
}

TEST_F(PostgresStoreTest, MigratesOnceAndRecordsTheSchemaVersion) {
  { PostgresStore store(url_); }
  PostgresStore again(url_);
  RawPg raw(url_);
  EXPECT_EQ(raw.text("SELECT count(*) FROM callrelay_schema_version"), "1");
  EXPECT_EQ(raw.text("SELECT max(version) FROM callrelay_schema_version"),
            std::to_string(kPostgresSchemaVersion));
  // The order relies on bytewise ids (the cursor compares them the same way).
  EXPECT_EQ(raw.text("SELECT collation_name FROM information_schema.columns "
                     "WHERE table_name = 'call_records' AND column_name = 'id'"),
            "C");
}

TEST_F(PostgresStoreTest, InstancesStartingTogetherMigrateOnce) {
  constexpr int kInstances = 6;
  std::atomic<int> ready{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kInstances; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kInstances) std::this_thread::yield();
      try {
        PostgresStore store(url_);
        store.put(make_record(i, kT0 + i));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "instance " << i << ": " << e.what();
        ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  RawPg raw(url_);
  EXPECT_EQ(raw.text("SELECT count(*) FROM callrelay_schema_version"), "1");
  EXPECT_EQ(raw.text("SELECT count(*) FROM call_records"), std::to_string(kInstances));
}

TEST_F(PostgresStoreTest, RefusesADatabaseFromANewerSchema) {
  { PostgresStore store(url_); }
  RawPg(url_).text("INSERT INTO callrelay_schema_version (version) VALUES (99)");
  try {
    PostgresStore store(url_);
    FAIL() << "opened a database of schema version 99";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99 is newer"), std::string::npos)
        << e.what();
  }
}

TEST_F(PostgresStoreTest, AnUnreachableServerIsAClearErrorWithoutThePassword) {
  PostgresStore::Options o;
  o.connect_timeout_s = 2;
  try {
    PostgresStore store("postgresql://callrelay:pw-SECRET-1234@/callrelay?host=/nonexistent-dir",
                        o);
    FAIL() << "connected to nothing";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot connect"), std::string::npos) << what;
    EXPECT_EQ(what.find("pw-SECRET-1234"), std::string::npos) << what;
  }
}

TEST_F(PostgresStoreTest, ABatchCommitsWholeOrNotAtAll) {
  PostgresStore store(url_);
  std::vector<CallRecord> batch;
  for (int i = 0; i < 250; ++i) batch.push_back(make_record(i, kT0 + i));
  store.put_batch(batch);
  RecordQuery q;
  q.limit = 1000;
  EXPECT_EQ(store.query(q).records.size(), 250u);
  EXPECT_EQ(store.get(batch[137].id), batch[137]);

  // A record the database refuses (bytes that are not UTF-8) fails the whole batch.
  std::vector<CallRecord> bad = {make_record(260, kT0), make_record(261, kT0),
                                 make_record(262, kT0)};
  bad[1].caller = std::string("\xff\xfe", 2);
  EXPECT_THROW(store.put_batch(bad), std::runtime_error);
  EXPECT_EQ(store.get(bad[0].id), std::nullopt);
  EXPECT_EQ(store.query(q).records.size(), 250u);
  // The connection is usable after the rollback.
  bad.erase(bad.begin() + 1);
  store.put_batch(bad);
  EXPECT_EQ(store.get(bad[1].id), bad[1]);
}

// Runs last among these tests in declaration order; it stops and restarts the shared server.
TEST_F(PostgresStoreTest, RecordsWaitWhileTheServerIsDownAndAreStoredWhenItIsBack) {
  PostgresStore store(url_);
  store.put(make_record(0, kT0));  // both connections open before the server goes away
  EXPECT_EQ(store.query({}).records.size(), 1u);
  const uint64_t reconnects_before = store.reconnects();

  RecordWriter::Options o;
  o.retry_initial = 20ms;
  o.retry_max = 200ms;
  RecordWriter writer(store, {}, o);
  PgServer::instance().kill();  // as a crash: connections are cut, not closed
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(writer.submit(make_record(i, kT0 + i)));
  EXPECT_FALSE(writer.flush(300ms));  // nothing can be stored now
  EXPECT_GT(writer.retries(), 0u);
  EXPECT_EQ(writer.pending(), 20u);
  EXPECT_THROW(store.query({}), std::runtime_error);

  PgServer::instance().start();
  ASSERT_TRUE(writer.flush(30s)) << writer.pending() << " records still pending";
  EXPECT_EQ(writer.stored(), 20u);
  EXPECT_EQ(writer.dropped(), 0u);
  RecordQuery q;
  q.limit = 1000;
  std::set<std::string> stored;
  for (const auto& r : store.query(q).records) stored.insert(r.id);
  EXPECT_EQ(stored.size(), 21u);
  for (int i = 0; i <= 20; ++i) EXPECT_TRUE(stored.count(make_record(i, kT0).id)) << i;
  EXPECT_GE(store.reconnects(), reconnects_before + 2);  // the writer's and the reader's
}

}  // namespace
}  // namespace callrelay::calls
