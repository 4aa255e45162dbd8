// RecordWriter's batches: records that queue up while a batch is being stored go to the store
// together (one put_batch, one transaction), never more than Options::max_batch at once, in
// submission order; a failed batch is retried whole.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "calls/store/record_writer.hpp"
#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

using namespace std::chrono_literals;
using test::make_record;

/// Records each put_batch() call's size; the first call waits at a gate the test opens, and
/// calls throw while failures are scheduled.
class BatchStore : public RecordStore {
 public:
  void put(const CallRecord&) override { ADD_FAILURE() << "the writer should use put_batch"; }
  void put_batch(std::span<const CallRecord> records) override {
    std::unique_lock lock(mutex_);
    ++calls_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    if (failures_ > 0) {
      --failures_;
      throw std::runtime_error("connection to server lost");
    }
    sizes_.push_back(records.size());
    for (const auto& r : records) stored_.push_back(r.id);
  }
  RecordPage query(const RecordQuery&) override { return {}; }
  std::optional<CallRecord> get(std::string_view) override { return std::nullopt; }

  void set_open(bool open) {
    std::lock_guard lock(mutex_);
    open_ = open;
    changed_.notify_all();
  }
  void fail_next(int n) {
    std::lock_guard lock(mutex_);
    failures_ = n;
  }
  bool wait_for_calls(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 30s, [&] { return calls_ >= n; });
  }
  std::vector<size_t> sizes() {
    std::lock_guard lock(mutex_);
    return sizes_;
  }
  std::vector<std::string> stored() {
    std::lock_guard lock(mutex_);
    return stored_;
  }
  int calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  int failures_ = 0;
  int calls_ = 0;
  std::vector<size_t> sizes_;
  std::vector<std::string> stored_;
};

std::vector<std::string> ids_of(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(make_record(i, 0).id);
  return out;
}

TEST(RecordWriterBatches, RecordsQueuedDuringAStoreGoTogetherUpToTheLimit) {
  BatchStore store;
  store.set_open(false);
  RecordWriter::Options o;
  o.max_batch = 40;
  RecordWriter writer(store, {}, o);
  ASSERT_TRUE(writer.submit(make_record(0, 0)));
  ASSERT_TRUE(store.wait_for_calls(1));  // record 0 alone is in the store's hands
  for (int i = 1; i < 101; ++i) ASSERT_TRUE(writer.submit(make_record(i, 0)));
  EXPECT_EQ(writer.pending(), 101u);
  store.set_open(true);
  ASSERT_TRUE(writer.flush(30s));
  EXPECT_EQ(store.sizes(), (std::vector<size_t>{1, 40, 40, 20}));
  EXPECT_EQ(store.stored(), ids_of(101));
  EXPECT_EQ(writer.stored(), 101u);
  EXPECT_EQ(writer.pending(), 0u);
}

TEST(RecordWriterBatches, AFailedBatchIsRetriedWholeAndGrowsMeanwhile) {
  BatchStore store;
  store.set_open(false);
  RecordWriter::Options o;
  o.retry_initial = 1ms;
  o.retry_max = 5ms;
  o.max_batch = 10;
  std::vector<std::string> handed;
  std::mutex handed_mutex;
  RecordWriter writer(
      store,
      [&](const CallRecord& r) {
        std::lock_guard lock(handed_mutex);
        handed.push_back(r.id);
      },
      o);
  store.fail_next(3);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(writer.submit(make_record(i, 0)));
  ASSERT_TRUE(store.wait_for_calls(1));
  for (int i = 4; i < 25; ++i) ASSERT_TRUE(writer.submit(make_record(i, 0)));
  store.set_open(true);
  ASSERT_TRUE(writer.flush(30s));
  EXPECT_EQ(store.stored(), ids_of(25));  // each once, in submission order
  EXPECT_EQ(writer.retries(), 3u);
  // The retried batch was topped up to the limit; what follows goes in batches of 10 at most.
  const auto sizes = store.sizes();
  ASSERT_FALSE(sizes.empty());
  EXPECT_EQ(sizes.front(), 10u);
  for (size_t s : sizes) EXPECT_LE(s, 10u);
  std::lock_guard lock(handed_mutex);
  EXPECT_EQ(handed, ids_of(25));  // handed on after storing, in order
}

}  // namespace
}  // namespace callrelay::calls
