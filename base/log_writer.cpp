#include "base/log_writer.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>

namespace callrelay::log::detail {
namespace {

/// How long the writer lets lines gather after the first, and how many bytes of them cut that
/// short: a burst costs a worker on the writer's CPU a preemption per 128 KiB (about 250 lines,
/// a write of tens of microseconds), and a lone line waits at most 10 ms.
constexpr std::chrono::milliseconds kLinger{10};
constexpr size_t kWakeBytes = 128u << 10;

/// The most one write(2) takes. A kernel built without preemption (PREEMPT_NONE, the common
/// server default) lets a thread that wakes on the writer's CPU run only when the writer's
/// syscall returns: a burst's few MiB in one writev to a file held a worker back 3 to 4 ms
/// (bench/timers burst --observers), 64 KiB at a time 0.2 to 1.3 ms.
constexpr size_t kWriteChunk = 64u << 10;

/// Writes every byte of `iov` to stderr, at most kWriteChunk per syscall, waiting while a
/// non-blocking stderr is full. Gives up (the bytes are lost) when stderr is gone: there is
/// nowhere else to say so.
void write_all(iovec* iov, int count) {
  while (count > 0 && iov->iov_len == 0) {
    ++iov;
    --count;
  }
  while (count > 0) {
    // The leading iovecs that fit in one chunk; a longer first one is cut to a chunk.
    int take = 0;
    size_t bytes = 0;
    while (take < count && bytes + iov[take].iov_len <= kWriteChunk) bytes += iov[take++].iov_len;
    const ssize_t n = take == 0 ? ::write(STDERR_FILENO, iov->iov_base, kWriteChunk)
                                : ::writev(STDERR_FILENO, iov, take);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{STDERR_FILENO, POLLOUT, 0};
      (void)::poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return;
    auto left = static_cast<size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

/// The buffer, the writer thread and their bookkeeping: one per process, never destroyed, so a
/// line logged from a static destructor or another thread during exit finds it intact.
class Writer {
 public:
  Writer() {
    pthread_atfork([] { get().before_fork(); }, [] { get().after_fork_parent(); },
                   [] { get().after_fork_child(); });
  }

  static Writer& get() {
    static Writer* const w = new Writer;
    return *w;
  }

  bool append(std::string_view line) {
    std::unique_lock lock(mutex_);
    if (state_ == State::kNotStarted) start();
    if (state_ == State::kStopped) {
      lock.unlock();
      write_now(line);
      return true;
    }
    if (line.size() + 1 > kBufferBytes - pending_.size()) {
      ++unreported_drops_;
      dropped_total_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    // Few wake-ups: the writer sleeps without a deadline only on an empty buffer, so only the
    // line that makes it non-empty wakes it; then it lets lines gather for kLinger, and only
    // the line that crosses kWakeBytes cuts that short.
    const size_t before = pending_.size();
    pending_.append(line);
    pending_.push_back('\n');
    ++appended_;
    const bool wake = (idle_ && before == 0) ||
                      (lingering_ && before < kWakeBytes && pending_.size() >= kWakeBytes);
    lock.unlock();
    if (wake) work_.notify_one();
    return true;
  }

  void flush() { wait_written(std::nullopt); }
  bool flush_for(std::chrono::milliseconds limit) { return wait_written(limit); }

  uint64_t dropped() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  enum class State { kNotStarted, kRunning, kStopped };

  /// Under mutex_.
  void start() {
    pending_.reserve(kBufferBytes);
    taken_.reserve(kBufferBytes);
    // The writer takes no signal: a process that waits for its signals in one thread blocks
    // them before starting others, and the writer may start before that.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      thread_ = new std::thread([this] { run(); });
    } catch (const std::exception&) {
      // No thread to be had (a process at its limit): every line is written by its caller.
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      state_ = State::kStopped;
      return;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    state_ = State::kRunning;
    if (!exit_hook_) {
      exit_hook_ = true;
      std::atexit([] { get().stop(); });
      // An uncaught exception ends the process through std::terminate, which runs no exit
      // hook: the lines that led to it are written first (bounded, as at exit), then the
      // handler there was before says what was thrown and aborts.
      previous_terminate_ = std::set_terminate([] {
        (void)get().wait_written(std::chrono::seconds(2));
        if (get().previous_terminate_ != nullptr) get().previous_terminate_();
        std::abort();
      });
    }
  }

  void run() {
    pthread_setname_np(pthread_self(), "log-writer");
    // SCHED_BATCH, same weight: a woken writer waits for the running thread's turn to end
    // instead of preempting it, so a worker sharing its CPU is not stopped per batch of lines.
    const sched_param batch{};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch);
    std::unique_lock lock(mutex_);
    for (;;) {
      idle_ = true;
      work_.wait(lock, [this] { return !pending_.empty() || unreported_drops_ > 0 || stop_; });
      idle_ = false;
      // A burst's lines gather before they are written: a wake-up per line would cost a worker
      // sharing the writer's CPU a preemption per line (bench/timers: 47k a burst).
      lingering_ = true;
      work_.wait_for(lock, kLinger, [this] {
        return pending_.size() >= kWakeBytes || unreported_drops_ > 0 || flushers_ > 0 || stop_;
      });
      lingering_ = false;
      if (pending_.empty() && unreported_drops_ == 0) break;  // stopping, all written
      // The producers' buffer becomes ours to write and ours (emptied) becomes theirs: the
      // lock is held for a swap, never for a write.
      std::swap(pending_, taken_);
      const uint64_t upto = appended_;
      const uint64_t drops = std::exchange(unreported_drops_, 0);
      lock.unlock();
      // The lines dropped went missing after those taken (they found the buffer full), so the
      // count follows them.
      const std::string note = drops > 0 ? dropped_line(drops) + '\n' : std::string();
      iovec iov[2] = {{taken_.data(), taken_.size()},
                      {const_cast<char*>(note.data()), note.size()}};
      write_all(iov, note.empty() ? 1 : 2);
      taken_.clear();
      lock.lock();
      written_ = upto;
      if (flushers_ > 0) written_cv_.notify_all();
    }
  }

  /// Waits until the lines appended so far are written; false when `limit` passed first.
  bool wait_written(std::optional<std::chrono::milliseconds> limit) {
    std::unique_lock lock(mutex_);
    if (state_ != State::kRunning) return true;
    const uint64_t target = appended_;
    if (written_ >= target) return true;
    ++flushers_;
    if (lingering_) work_.notify_one();  // no lingering while someone waits
    const auto done = [&] { return written_ >= target; };
    bool ok = true;
    if (limit) {
      ok = written_cv_.wait_for(lock, *limit, done);
    } else {
      written_cv_.wait(lock, done);
    }
    --flushers_;
    return ok;
  }

  /// At exit: the lines still waiting are written, then the writer ends and later lines are
  /// written by whoever logs them. A stderr that takes nothing for seconds does not hold the
  /// exit: the writer is left behind (its state is never destroyed).
  void stop() {
    const bool written = wait_written(std::chrono::seconds(5));
    std::unique_lock lock(mutex_);
    if (state_ != State::kRunning) return;
    state_ = State::kStopped;
    stop_ = true;
    lock.unlock();
    work_.notify_one();
    if (written) {
      thread_->join();
    } else {
      thread_->detach();
    }
    delete thread_;
    thread_ = nullptr;
  }

  // fork(2) copies only the forking thread: the buffer is held still across the fork, and the
  // child starts a writer of its own on its first line, leaving the parent's lines to the
  // parent.
  void before_fork() { mutex_.lock(); }
  void after_fork_parent() { mutex_.unlock(); }
  void after_fork_child() {
    // The parent's writer may have been waiting on them: the child's are new.
    new (&work_) std::condition_variable;
    new (&written_cv_) std::condition_variable;
    pending_.clear();
    taken_.clear();
    written_ = appended_;
    unreported_drops_ = 0;
    flushers_ = 0;
    idle_ = false;
    lingering_ = false;
    stop_ = false;
    // The parent's thread, which the child does not have: its handle can be neither joined
    // nor destroyed, only kept (a leak checker would count it lost).
    forked_away_ = thread_;
    thread_ = nullptr;
    if (state_ == State::kRunning) state_ = State::kNotStarted;
    mutex_.unlock();
  }

  std::mutex mutex_;
  std::condition_variable work_;        // the writer waits for lines
  std::condition_variable written_cv_;  // flush() waits for the writer
  std::string pending_;                 // lines appended, each ending in '\n'
  std::string taken_;                   // the writer's: lines being written
  uint64_t appended_ = 0;               // lines ever appended
  uint64_t written_ = 0;                // of those, how many the writer is done with
  uint64_t unreported_drops_ = 0;
  std::atomic<uint64_t> dropped_total_{0};
  int flushers_ = 0;
  bool idle_ = false;       // the writer waits for a first line
  bool lingering_ = false;  // the writer lets lines gather
  bool stop_ = false;
  bool exit_hook_ = false;
  std::terminate_handler previous_terminate_ = nullptr;
  State state_ = State::kNotStarted;
  std::thread* thread_ = nullptr;
  std::thread* forked_away_ = nullptr;
};

}  // namespace

bool append_line(std::string_view line) { return Writer::get().append(line); }

void flush_lines() { Writer::get().flush(); }

bool flush_lines_for(std::chrono::milliseconds limit) { return Writer::get().flush_for(limit); }

uint64_t dropped_total() { return Writer::get().dropped(); }

void write_now(std::string_view line) {
  iovec iov[2] = {{const_cast<char*>(line.data()), line.size()}, {const_cast<char*>("\n"), 1}};
  write_all(iov, 2);
}

}  // namespace callrelay::log::detail
