// Stores call records on a thread of their own, so that ending a call never waits for a disk,
// and hands each stored record on (to the webhook).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "calls/store/record_store.hpp"

namespace callrelay::calls {

/// Owns one thread that stores submitted records into a RecordStore in submission order, up
/// to Options::max_batch at a time in one put_batch() (one transaction: a burst of ended calls
/// costs one commit, not one per call).
///
/// A record submit() accepted is never given up while the writer lives: when put_batch()
/// throws (disk full, I/O error, database unreachable) the batch is kept and retried with
/// backoff, a warning is logged once per failure streak, and the records behind it wait.
/// The queue is bounded so that a store that stays broken cannot exhaust memory: beyond
/// Options::max_pending, submit() refuses and counts the record as dropped.
///
/// Any thread may call submit(), flush() and the counters.
class RecordWriter {
 public:
  /// Called on the writer thread with each record once it is stored; exceptions are logged.
  using StoredCallback = std::function<void(const CallRecord&)>;

  struct Options {
    size_t max_pending = 100'000;                  ///< queued records, the batch being stored too
    std::chrono::milliseconds retry_initial{100};  ///< first wait after a failed put_batch()
    std::chrono::milliseconds retry_max{5'000};    ///< the doubling wait stops here
    size_t max_batch = 100;                        ///< records per put_batch(), at least 1
  };

  /// `store` must outlive the writer.
  explicit RecordWriter(RecordStore& store, StoredCallback on_stored = {});
  RecordWriter(RecordStore& store, StoredCallback on_stored, Options options);
  /// Stops the thread after a last attempt to store what is queued (no retries then: the
  /// process is going away); records left unstored are counted in an error log line.
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  /// Queues `record` and returns at once. False (and counted as dropped) when the queue is
  /// full or the writer is stopping.
  bool submit(CallRecord record);

  /// Waits until every record submitted so far is stored, at most `timeout`. True when the
  /// queue drained; false when the store is still failing or slow (for shutdown, which then
  /// logs what it leaves behind).
  bool flush(std::chrono::milliseconds timeout);

  uint64_t stored() const { return stored_.load(std::memory_order_relaxed); }
  uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }
  uint64_t pending() const { return pending_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run();
  /// Stores batch_ (topped up from the queue); false when put_batch() threw (the batch is
  /// kept for the next attempt).
  bool store_batch(std::unique_lock<std::mutex>& lock);
  size_t waiting() const { return queue_.size() + batch_.size(); }  ///< under mutex_

  RecordStore& store_;
  StoredCallback on_stored_;
  Options options_;

  std::mutex mutex_;
  std::condition_variable wake_;     ///< a record arrived, or stopping
  std::condition_variable drained_;  ///< the queue became empty
  std::deque<CallRecord> queue_;     ///< guarded by mutex_: not yet taken into a batch
  /// The batch being stored, or kept after a failure: older than every queued record. Changed
  /// only by the writer thread with mutex_ held; that thread reads it unlocked in put_batch().
  std::vector<CallRecord> batch_;
  bool stopping_ = false;  ///< guarded by mutex_
  bool failing_ = false;   ///< guarded by mutex_: in a failure streak (logged once)

  std::atomic<uint64_t> stored_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> dropped_{0};

  std::thread thread_;  ///< last: starts after every member above exists
};

}  // namespace callrelay::calls
