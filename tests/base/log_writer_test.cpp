// The log's writer thread: lines from many threads arrive whole and in each thread's order,
// flush() returns only once earlier lines are in stderr, a stderr nobody reads never holds a
// producer back (lines are dropped, counted and reported once it drains), and a process that
// exits normally, even a forked child, loses no line.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "base/log_writer.hpp"

namespace callrelay::log {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  (void)::lseek(fd, 0, SEEK_SET);
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

/// stderr sent to `fd` for one scope; the lines queued before it are written first where
/// they belong.
class Redirect {
 public:
  explicit Redirect(int fd) {
    flush();
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
  }
  ~Redirect() {
    flush();
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }

 private:
  int saved_ = -1;
};

/// An unlinked temporary file.
int temp_file() {
  char path[] = "/tmp/log_writer_test.XXXXXX";
  const int fd = ::mkstemp(path);
  ::unlink(path);
  return fd;
}

class LogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_level(Level::kInfo);
    set_format(Format::kText);
  }
  void TearDown() override { set_format(Format::kText); }
};

TEST_F(LogWriterTest, LinesFromManyThreadsArriveWholeAndInEachThreadsOrder) {
  constexpr int kThreads = 8;
  constexpr int kLines = 5000;
  const int fd = temp_file();
  ASSERT_GE(fd, 0);
  {
    Redirect r(fd);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        // Lines of different lengths, so a torn or merged line cannot look whole.
        for (int i = 0; i < kLines; ++i)
          write_line("t=" + std::to_string(t) + " i=" + std::to_string(i) + " " +
                     std::string(static_cast<size_t>(i % 97), 'x') + " end");
      });
    }
    for (auto& th : threads) th.join();
  }
  const auto lines = split_lines(read_all(fd));
  ::close(fd);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  std::map<int, int> next;  // thread -> the line number it must write next
  for (const std::string& line : lines) {
    int t = -1;
    int i = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "t=%d i=%d", &t, &i), 2) << line;
    const std::string whole = "t=" + std::to_string(t) + " i=" + std::to_string(i) + " " +
                              std::string(static_cast<size_t>(i % 97), 'x') + " end";
    ASSERT_EQ(line, whole);
    ASSERT_EQ(i, next[t]) << "thread " << t << " out of order";
    ++next[t];
  }
}

TEST_F(LogWriterTest, LinesLongerThanOneWriteArriveWholeBetweenShortOnes) {
  // The writer hands the kernel at most 64 KiB per syscall: a line longer than that is cut
  // across writes, and the lines around it must still come out whole and in order.
  const int fd = temp_file();
  ASSERT_GE(fd, 0);
  std::vector<std::string> sent;
  {
    Redirect r(fd);
    for (int i = 0; i < 40; ++i) {
      const size_t len =
          i % 3 == 0 ? (200u << 10) + static_cast<size_t>(i) : 10u + static_cast<size_t>(i);
      sent.push_back("n=" + std::to_string(i) + " " +
                     std::string(len, static_cast<char>('a' + i % 26)));
      write_line(sent.back());
    }
  }
  const auto lines = split_lines(read_all(fd));
  ::close(fd);
  ASSERT_EQ(lines.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) ASSERT_EQ(lines[i], sent[i]) << "line " << i;
}

TEST_F(LogWriterTest, FlushReturnsOnlyOnceEarlierLinesAreWritten) {
  const int fd = temp_file();
  ASSERT_GE(fd, 0);
  const int saved = ::dup(STDERR_FILENO);
  flush();
  ::dup2(fd, STDERR_FILENO);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i)
      write_line("round " + std::to_string(round) + " line " + std::to_string(i));
    flush();
    // No redirect undone, no other flush: what the file holds now is what flush() waited for.
    const auto lines = split_lines(read_all(fd));
    ASSERT_EQ(lines.size(), static_cast<size_t>((round + 1) * 500));
    ASSERT_EQ(lines.back(), "round " + std::to_string(round) + " line 499");
  }
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
}

/// stderr a pipe that nobody reads until the buffer is full: every producer call returns, the
/// lines past the buffer are dropped and counted, and once the pipe is drained a log.dropped
/// line with the count follows the lines that were kept.
void blocked_stderr_drops_and_reports(bool nonblocking) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  if (nonblocking) {
    ASSERT_EQ(::fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  }
  set_format(Format::kJson);
  const uint64_t dropped_before = dropped_lines();
  const std::string filler(1000, 'f');
  uint64_t kept = 0;
  uint64_t refused = 0;
  {
    Redirect r(p[1]);
    // The pipe holds 64 KiB and the writer waits on it with the rest: the buffer fills within
    // about twice its size of lines.
    const uint64_t most = 3 * detail::kBufferBytes / filler.size();
    for (uint64_t i = 0; i < most && refused < 100; ++i) {
      if (try_emit(Level::kInfo, "test.fill", {{"i", i}}, filler, 0)) {
        ++kept;
      } else {
        ++refused;
      }
    }
    EXPECT_EQ(refused, 100u) << "the buffer never filled";
    EXPECT_EQ(dropped_lines() - dropped_before, refused);
    // Drained by a reader until a line logged once the kept lines are written.
    std::string got;
    std::thread reader([&] {
      char buf[65536];
      while (got.find("\"event\":\"test.after\"") == std::string::npos) {
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
    });
    flush();
    emit(Level::kInfo, "test.after", {}, "after the drain");
    flush();
    reader.join();
    uint64_t fills = 0;
    int reports = 0;
    bool after_seen = false;
    for (const std::string& line : split_lines(got)) {
      const auto j = nlohmann::json::parse(line);  // every line whole and valid
      if (j["event"] == "test.fill") {
        EXPECT_EQ(reports, 0) << "a kept line after the report";
        ++fills;
      } else if (j["event"] == "log.dropped") {
        ++reports;
        EXPECT_EQ(j["level"], "warn");
        EXPECT_EQ(j["lines"].get<uint64_t>(), refused);
      } else if (j["event"] == "test.after") {
        EXPECT_EQ(reports, 1) << "the report comes before the next line";
        after_seen = true;
      }
    }
    EXPECT_EQ(fills, kept);
    EXPECT_EQ(reports, 1);
    EXPECT_TRUE(after_seen);
  }
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(LogWriterTest, BoundedFlushGivesUpOnAStuckStderrAndTheLinesStayQueued) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  {
    Redirect r(p[1]);
    // More than the pipe holds (64 KiB), and nobody reads it yet.
    const std::string filler(1000, 'f');
    for (int i = 0; i < 200; ++i) write_line("stuck " + std::to_string(i) + " " + filler);
    EXPECT_FALSE(flush_for(std::chrono::milliseconds(50)));
    // Drained now: every line is still written, whole and in order.
    std::string got;
    std::thread reader([&] {
      char buf[65536];
      while (got.find("stuck 199 " + filler + "\n") == std::string::npos) {
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
    });
    EXPECT_TRUE(flush_for(std::chrono::seconds(60)));
    reader.join();
    const auto lines = split_lines(got);
    ASSERT_EQ(lines.size(), 200u);
    for (int i = 0; i < 200; ++i)
      ASSERT_EQ(lines[static_cast<size_t>(i)], "stuck " + std::to_string(i) + " " + filler);
  }
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(LogWriterTest, BlockedPipeNeverHoldsTheProducerAndDropsAreReported) {
  blocked_stderr_drops_and_reports(false);
}

TEST_F(LogWriterTest, BlockedNonBlockingPipeNeverHoldsTheProducerAndDropsAreReported) {
  blocked_stderr_drops_and_reports(true);
}

/// What a forked child that queues `lines` lines and then ends with `end` wrote to its stderr,
/// a pipe that is read only once every line is queued: at the end the lines still wait for
/// the writer, and only a flush on the way out gets them written. `status`: how it ended.
template <typename End>
std::string child_output(int lines, End end, int* status) {
  int err[2];
  int queued[2];
  if (::pipe(err) != 0 || ::pipe(queued) != 0) return {};
  // The parent's writer is running and idle before the fork. A fork while it is still being
  // set up can leave the child's allocator locked under GCC's AddressSanitizer, whose runtime,
  // unlike glibc's malloc, does not take its locks across fork(2): the child's own writer then
  // never starts (seen: 7 runs in 40 wrote nothing). The parent's line is still waiting to be
  // written when the child is made.
  write_line("the parent's writer starts");
  flush();
  write_line("a line of the parent's before the fork: the child starts a writer of its own");
  const pid_t child = ::fork();
  if (child < 0) return {};
  if (child == 0) {
    const rlimit no_core{0, 0};
    (void)::setrlimit(RLIMIT_CORE, &no_core);
    ::dup2(err[1], STDERR_FILENO);
    ::close(err[0]);
    ::close(err[1]);
    for (int i = 0; i < lines; ++i) write_line("child line " + std::to_string(i));
    const char done = 'q';
    (void)::write(queued[1], &done, 1);
    end();
    std::_Exit(9);  // not reached
  }
  ::close(err[1]);
  ::close(queued[1]);
  char done = 0;
  (void)::read(queued[0], &done, 1);
  ::close(queued[0]);
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(err[0]);
  ::waitpid(child, status, 0);
  return out;
}

TEST_F(LogWriterTest, NormalExitWritesEveryLineEvenInAForkedChild) {
  constexpr int kLines = 20000;
  int status = 0;
  const auto lines = split_lines(child_output(kLines, [] { std::exit(0); }, &status));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GE(lines.size(), static_cast<size_t>(kLines));
  for (int i = 0; i < kLines; ++i) {
    ASSERT_EQ(lines[static_cast<size_t>(i)], "child line " + std::to_string(i));
  }
  // A sanitizer's own words at exit ("==pid==...") may follow, nothing else.
  for (size_t i = kLines; i < lines.size(); ++i)
    EXPECT_TRUE(lines[i].starts_with("==")) << lines[i];
}

TEST_F(LogWriterTest, TerminateWritesTheLinesBeforeIt) {
  constexpr int kLines = 20000;
  int status = 0;
  // As an uncaught exception ends a process: no exit hook runs.
  const auto lines = split_lines(child_output(kLines, [] { std::terminate(); }, &status));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  // The runtime's own words on the way out may follow.
  ASSERT_GE(lines.size(), static_cast<size_t>(kLines));
  for (int i = 0; i < kLines; ++i) {
    ASSERT_EQ(lines[static_cast<size_t>(i)], "child line " + std::to_string(i));
  }
}

}  // namespace
}  // namespace callrelay::log
