// The quality column of the records database: stored and read back exactly, NULL for calls
// without quality, and databases written by the schema before it migrated in place.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "calls/store/sqlite_store.hpp"
#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

using test::make_record;
using test::RawDb;

constexpr TimeMs kT0 = 1796237106123;

/// The schema version 1 as the build before the quality column created it, verbatim.
constexpr const char* kSchemaV1 = R"sql(
PRAGMA journal_mode = WAL;
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
PRAGMA user_version = 1;
)sql";

/// make_record(n)'s row as the version 1 build's put() wrote it.
std::string v1_insert(int n) {
  const CallRecord r = make_record(n, kT0 + n);
  return "INSERT INTO calls VALUES ('" + r.id + "', 'alice', 'bob', 'acme', '" + r.caller_device +
         "', '" + r.answered_device + "', 1, " + std::to_string(int{r.media.video}) + ", " +
         std::to_string(r.created) + ", " + std::to_string(r.answered) + ", " +
         std::to_string(r.connected) + ", " + std::to_string(r.ended) +
         ", 'completed', 'user-hangup', 'callee', 4500, 2, 1, " +
         std::to_string(r.bytes_caller_to_callee) + ", 987654321, 3)";
}

class SqliteQualityTest : public ::testing::Test {
 protected:
  test::ScratchDir dir_;
  std::string path_ = dir_.file("calls.sqlite3");
};

TEST_F(SqliteQualityTest, QualityComesBackExactly) {
  const CallRecord r = make_record(3, kT0);
  ASSERT_FALSE(r.quality.empty());
  {
    SqliteStore store(path_);
    store.put(r);
    EXPECT_EQ(store.get(r.id), r);
  }
  SqliteStore reopened(path_);
  EXPECT_EQ(reopened.get(r.id), r);
  const RecordPage page = reopened.query({});
  ASSERT_EQ(page.records.size(), 1u);
  EXPECT_EQ(page.records[0], r);
}

TEST_F(SqliteQualityTest, ACallWithoutQualityStoresNull) {
  CallRecord r = make_record(1, kT0);
  r.quality = {};
  SqliteStore store(path_);
  store.put(r);
  EXPECT_EQ(RawDb(path_).text("SELECT quality IS NULL FROM calls"), "1");
  EXPECT_EQ(store.get(r.id), r);
  // Replacing the record with one that has quality fills the column.
  r.quality = test::make_quality(1, kT0);
  store.put(r);
  EXPECT_EQ(RawDb(path_).text("SELECT quality IS NULL FROM calls"), "0");
  EXPECT_EQ(store.get(r.id), r);
}

TEST_F(SqliteQualityTest, AVersionOneDatabaseIsMigratedInPlace) {
  {
    RawDb old(path_);
    old.exec(kSchemaV1);
    old.exec(v1_insert(1).c_str());
    old.exec(v1_insert(2).c_str());
  }
  {
    SqliteStore store(path_);
    // The old rows keep every field and read with empty quality.
    for (int n : {1, 2}) {
      CallRecord expected = make_record(n, kT0 + n);
      expected.quality = {};
      EXPECT_EQ(store.get(expected.id), expected) << n;
    }
    EXPECT_EQ(store.query({}).records.size(), 2u);
    store.put(make_record(3, kT0 + 3));
  }
  RawDb raw(path_);
  EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(kRecordSchemaVersion));
  EXPECT_EQ(raw.text("SELECT count(*) FROM pragma_table_info('calls') WHERE name = 'quality'"),
            "1");
  EXPECT_EQ(raw.text("SELECT count(*) FROM calls WHERE quality IS NULL"), "2");
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
  SqliteStore again(path_);  // a second open finds nothing to migrate
  EXPECT_EQ(again.get(make_record(3, kT0 + 3).id), make_record(3, kT0 + 3));
}

TEST_F(SqliteQualityTest, AnUnreadableQualityColumnIsAnErrorNamingTheRecord) {
  const CallRecord r = make_record(5, kT0);
  SqliteStore store(path_);
  store.put(r);
  for (const char* value : {"'not json'", "'{\"caller_to_callee\": 1}'", "'null'", "42"}) {
    RawDb(path_).exec((std::string("UPDATE calls SET quality = ") + value).c_str());
    try {
      store.get(r.id);
      ADD_FAILURE() << value << " was read";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(r.id), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace callrelay::calls
