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
  if (waiting() != 0) {
    log::error("call_records.lost", {{"records", waiting()}}, "call records: ", waiting(),
               " records could not be stored at shutdown");
  }
}

bool RecordWriter::submit(CallRecord record) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && waiting() < options_.max_pending) {
      queue_.push_back(std::move(record));
      pending_.store(waiting(), std::memory_order_relaxed);
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
  return drained_.wait_for(lock, timeout, [this] { return waiting() == 0; });
}

bool RecordWriter::store_batch(std::unique_lock<std::mutex>& lock) {
  // Only this thread changes batch_, so it is read unlocked during put_batch(); submit() only
  // appends to queue_. A retried batch is topped up too: records are stored by id, so the
  // ones a failed attempt did store are stored once.
  const size_t max_batch = std::max<size_t>(options_.max_batch, 1);
  while (batch_.size() < max_batch && !queue_.empty()) {
    batch_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  lock.unlock();
  std::string failure;
  try {
    store_.put_batch(batch_);
  } catch (const std::exception& e) {
    failure = e.what();
    if (failure.empty()) failure = "unknown error";
  }
  if (!failure.empty()) {
    lock.lock();
    retries_.fetch_add(1, std::memory_order_relaxed);
    if (!failing_)
      log::warn("call_records.store_failed",
                {{"call_id", batch_.front().id}, {"records", batch_.size()}, {"error", failure}},
                "call records: cannot store ", batch_.size(), " record(s) from ", batch_.front().id,
                " (", failure, "); retrying with backoff");
    failing_ = true;
    return false;
  }
  if (on_stored_) {
    for (const CallRecord& record : batch_) {
      try {
        on_stored_(record);
      } catch (const std::exception& e) {
        log::warn("call_records.after_store_failed", {{"call_id", record.id}, {"error", e.what()}},
                  "call records: after storing ", record.id, ": ", e.what());
      }
    }
  }
  lock.lock();
  if (failing_) {
    log::info("call_records.store_recovered", {{"retries", retries()}},
              "call records: storing again after ", retries(), " retries in all");
  }
  failing_ = false;
  stored_.fetch_add(batch_.size(), std::memory_order_relaxed);
  batch_.clear();
  pending_.store(waiting(), std::memory_order_relaxed);
  if (waiting() == 0) drained_.notify_all();
  return true;
}

void RecordWriter::run() {
  std::unique_lock lock(mutex_);
  auto backoff = options_.retry_initial;
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || waiting() != 0; });
    if (waiting() == 0) return;  // stopping with nothing left
    if (store_batch(lock)) {
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
