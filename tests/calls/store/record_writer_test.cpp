// RecordWriter against a fake store whose put() can be held or made to fail: submit() never
// waits for the store, a failing put() is retried until it succeeds, order is kept.
#include "calls/store/record_writer.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

using namespace std::chrono_literals;
using test::make_record;

/// Generous: only reached when the writer is broken.
constexpr auto kPatience = 30s;

/// A RecordStore whose put() waits at a gate the test opens, and throws while failures are
/// scheduled, as a full disk would.
class GatedStore : public RecordStore {
 public:
  void put(const CallRecord& record) override {
    std::unique_lock lock(mutex_);
    ++puts_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    if (failures_ > 0) {
      --failures_;
      throw std::runtime_error("database or disk is full");
    }
    stored_.push_back(record);
    changed_.notify_all();
  }
  RecordPage query(const RecordQuery&) override { return {}; }
  std::optional<CallRecord> get(std::string_view id) override {
    std::lock_guard lock(mutex_);
    for (const auto& r : stored_) {
      if (r.id == id) return r;
    }
    return std::nullopt;
  }

  void set_open(bool open) {
    std::lock_guard lock(mutex_);
    open_ = open;
    changed_.notify_all();
  }
  void fail_next(int n) {
    std::lock_guard lock(mutex_);
    failures_ = n;
  }
  /// Waits until put() has been entered `n` times in all.
  bool wait_for_puts(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return puts_ >= n; });
  }
  int puts() {
    std::lock_guard lock(mutex_);
    return puts_;
  }
  std::vector<std::string> stored_ids() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& r : stored_) out.push_back(r.id);
    return out;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  int failures_ = 0;
  int puts_ = 0;
  std::vector<CallRecord> stored_;
};

std::vector<std::string> ids_of(int first, int count) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i) out.push_back(make_record(i, 0).id);
  return out;
}

RecordWriter::Options fast_retries() {
  RecordWriter::Options o;
  o.retry_initial = 1ms;
  o.retry_max = 4ms;
  return o;
}

TEST(RecordWriter, SubmitReturnsWhileTheStoreBlocks) {
  GatedStore store;
  store.set_open(false);
  RecordWriter writer(store);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(writer.submit(make_record(i, i)));
  ASSERT_TRUE(store.wait_for_puts(1));
  EXPECT_EQ(writer.pending(), 5u);  // the one in put() is still pending
  EXPECT_EQ(writer.stored(), 0u);
  EXPECT_FALSE(writer.flush(10ms));  // the store is held: nothing can drain
  store.set_open(true);
  ASSERT_TRUE(writer.flush(kPatience));
  EXPECT_EQ(store.stored_ids(), ids_of(0, 5));
  EXPECT_EQ(writer.stored(), 5u);
  EXPECT_EQ(writer.pending(), 0u);
  EXPECT_EQ(writer.retries(), 0u);
}

TEST(RecordWriter, FailedPutsAreRetriedInOrderUntilTheStoreRecovers) {
  GatedStore store;
  store.fail_next(4);
  RecordWriter writer(store, {}, fast_retries());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(writer.submit(make_record(i, i)));
  ASSERT_TRUE(writer.flush(kPatience));
  EXPECT_EQ(store.stored_ids(), ids_of(0, 3));  // each once, in submission order
  EXPECT_EQ(store.puts(), 7);
  EXPECT_EQ(writer.retries(), 4u);
  EXPECT_EQ(writer.stored(), 3u);
  EXPECT_EQ(writer.dropped(), 0u);
}

TEST(RecordWriter, EachStoredRecordIsHandedOnAfterItIsStored) {
  GatedStore store;
  store.fail_next(2);
  std::vector<std::string> handed;
  bool stored_first = true;
  RecordWriter writer(
      store,
      [&](const CallRecord& r) {
        stored_first = stored_first && store.get(r.id).has_value();
        handed.push_back(r.id);
      },
      fast_retries());
  for (int i = 0; i < 4; ++i) writer.submit(make_record(i, i));
  ASSERT_TRUE(writer.flush(kPatience));
  EXPECT_EQ(handed, ids_of(0, 4));  // read after flush: the callback ran before the pop
  EXPECT_TRUE(stored_first);
}

TEST(RecordWriter, AFullQueueDropsAndCounts) {
  GatedStore store;
  store.set_open(false);
  RecordWriter::Options options;
  options.max_pending = 3;
  RecordWriter writer(store, {}, options);
  int accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += writer.submit(make_record(i, i)) ? 1 : 0;
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(writer.dropped(), 2u);
  store.set_open(true);
  ASSERT_TRUE(writer.flush(kPatience));
  EXPECT_EQ(store.stored_ids(), ids_of(0, 3));
}

TEST(RecordWriter, DestructionMakesAFinalAttemptWithoutWaitingOutTheBackoff) {
  GatedStore store;
  store.fail_next(1);
  RecordWriter::Options options;
  options.retry_initial = std::chrono::hours(1);  // the test would hang if it were waited out
  options.retry_max = std::chrono::hours(1);
  {
    RecordWriter writer(store, {}, options);
    for (int i = 0; i < 3; ++i) writer.submit(make_record(i, i));
    ASSERT_TRUE(store.wait_for_puts(1));
    while (writer.retries() == 0) std::this_thread::yield();  // the first put() failed
  }
  EXPECT_EQ(store.stored_ids(), ids_of(0, 3));
}

TEST(RecordWriter, DestructionReturnsWhileTheStoreStillFails) {
  GatedStore store;
  store.fail_next(1000);
  RecordWriter::Options options;
  options.retry_initial = std::chrono::hours(1);
  {
    RecordWriter writer(store, {}, options);
    writer.submit(make_record(1, 1));
    ASSERT_TRUE(store.wait_for_puts(1));
    while (writer.retries() == 0) std::this_thread::yield();  // now in its backoff
  }
  EXPECT_TRUE(store.stored_ids().empty());
  EXPECT_EQ(store.puts(), 2);  // the failed one and the final attempt
}

}  // namespace
}  // namespace callrelay::calls
