#include "calls/store/record_writer.hpp"

#include <algorithm>
#include <exception>

#include "base/log.hpp"

namespace callrelay::calls {

RecordWriter::RecordWriter(RecordStore& store, StoredCallback on_stored)
    : RecordWriter(store, std::move(on_stored), Options{}) {}

RecordWriter::RecordWriter(RecordStore& store, StoredCallback on_stored, Options options)
    : store_(store),
      on_stored_(std::move(on_stored)),
      options_(options),
      thread_([this] { run(); }) {}

RecordWriter::~RecordWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (!queue_.empty()) {
    log::error("call_records.lost", {{"records", queue_.size()}}, "call records: ",
               queue_.size(), " records could not be stored at shutdown");
  }
}

bool RecordWriter::submit(CallRecord record) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < options_.max_pending) {
      queue_.push_back(std::move(record));
      pending_.store(queue_.size(), std::memory_order_relaxed);
      wake_.notify_one();
      return true;
    }
  }
  if (dropped_.fetch_add(1, std::memory_order_relaxed) == 0) {
    log::warn("call_records.queue_full", {{"max_pending", options_.max_pending}},
              "call records: the write queue is full (", options_.max_pending,
              " records); dropping records until the store catches up");
  }
  return false;
}

bool RecordWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return drained_.wait_for(lock, timeout, [this] { return queue_.empty(); });
}

bool RecordWriter::store_head(std::unique_lock<std::mutex>& lock) {
  // The head stays queued during put(): submit() only appends, so the reference is stable,
  // and a failure leaves the record where it was.
  const CallRecord& record = queue_.front();
  lock.unlock();
  std::string failure;
  try {
    store_.put(record);
  } catch (const std::exception& e) {
    failure = e.what();
    if (failure.empty()) failure = "unknown error";
  }
  if (!failure.empty()) {
    lock.lock();
    retries_.fetch_add(1, std::memory_order_relaxed);
    if (!failing_)
      log::warn("call_records.store_failed", {{"call_id", record.id}, {"error", failure}},
                "call records: cannot store ", record.id, " (", failure,
                "); retrying with backoff");
    failing_ = true;
    return false;
  }
  if (on_stored_) {
    try {
      on_stored_(record);
    } catch (const std::exception& e) {
      log::warn("call_records.after_store_failed", {{"call_id", record.id}, {"error", e.what()}},
                "call records: after storing ", record.id, ": ", e.what());
    }
  }
  lock.lock();
  if (failing_) {
    log::info("call_records.store_recovered", {{"retries", retries()}},
              "call records: storing again after ", retries(), " retries in all");
  }
  failing_ = false;
  queue_.pop_front();
  stored_.fetch_add(1, std::memory_order_relaxed);
  pending_.store(queue_.size(), std::memory_order_relaxed);
  if (queue_.empty()) drained_.notify_all();
  return true;
}

void RecordWriter::run() {
  std::unique_lock lock(mutex_);
  auto backoff = options_.retry_initial;
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    if (store_head(lock)) {
      backoff = options_.retry_initial;
      continue;
    }
    if (stopping_) return;  // the final drain attempt failed; the destructor logs the rest
    // Wait out the backoff unless asked to stop; stopping then makes one more attempt.
    wake_.wait_for(lock, backoff, [this] { return stopping_; });
    backoff = std::min(backoff * 2, options_.retry_max);
  }
}

}  // namespace callrelay::calls
