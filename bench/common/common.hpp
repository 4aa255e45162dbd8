// Helpers shared by the benchmark tools: sockets, batches for recvmmsg/sendmmsg, /proc readers,
// a shared-memory counter and a small command-line parser. Linux only, IPv4 only: the bench
// runs on loopback and measures the relay, not address handling.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace callrelay::bench {

/// CLOCK_MONOTONIC in nanoseconds: every timestamp and deadline in the bench.
uint64_t now_ns();

/// Parses "a.b.c.d:port". Throws std::invalid_argument naming the text when it is not one.
sockaddr_in parse_addr(std::string_view text);
std::string to_string(const sockaddr_in& addr);

/// Opens a non-blocking UDP socket bound to `local` (port 0: kernel picks one), connected to
/// `remote` when given, with `buffer_bytes` of send and receive buffer when non-zero.
/// Returns -1 (errno set) on failure so callers can decide whether that is fatal.
int open_udp(const sockaddr_in& local, const sockaddr_in* remote, int buffer_bytes);

/// SIGINT/SIGTERM set a flag that every loop polls, so each tool stops within its poll period.
void install_stop_handlers();
bool stop_requested();

/// Busy and total time of one CPU from /proc/stat, in clock ticks. Busy is
/// user+nice+system+irq+softirq: it includes kernel network time no process is charged for.
struct CpuTicks {
  uint64_t busy = 0;
  uint64_t total = 0;
  uint64_t irq = 0;  ///< irq+softirq alone (reported, to see how much is network work)
};
std::optional<CpuTicks> read_cpu_ticks(int cpu);
/// Clock ticks per second (sysconf(_SC_CLK_TCK)).
double ticks_per_second();
/// VmRSS of `pid` in KiB, from /proc/PID/status.
std::optional<uint64_t> read_vmrss_kib(int pid);
/// User+system CPU seconds of `pid` (all threads), from /proc/PID/stat.
std::optional<double> read_process_cpu_s(int pid);

/// A 64-bit counter in a small shared file mapping, so bench_echo can publish how many
/// datagrams it received and bench_loadgen can read it at the edges of its measurement window
/// without any extra traffic. One writer.
class SharedCounter {
 public:
  /// Creates (truncating) or opens the file; throws std::runtime_error naming it on failure.
  static SharedCounter create(const std::string& path);
  static SharedCounter open(const std::string& path);
  SharedCounter(SharedCounter&& other) noexcept;
  SharedCounter& operator=(SharedCounter&&) = delete;
  SharedCounter(const SharedCounter&) = delete;
  ~SharedCounter();

  uint64_t load() const;
  void add(uint64_t n);

 private:
  explicit SharedCounter(uint64_t* value) : value_(value) {}
  uint64_t* value_ = nullptr;
};

/// Preallocated headers, iovecs, addresses and buffers for recvmmsg/sendmmsg.
class MsgBatch {
 public:
  MsgBatch(size_t count, size_t buffer_size);
  size_t capacity() const { return hdrs_.size(); }
  size_t buffer_size() const { return buffer_size_; }
  mmsghdr* hdrs() { return hdrs_.data(); }
  mmsghdr& hdr(size_t i) { return hdrs_[i]; }
  uint8_t* buffer(size_t i) { return storage_.data() + i * buffer_size_; }
  sockaddr_in& addr(size_t i) { return addrs_[i]; }
  /// Points entry i at its own buffer starting at `offset`, and at its address slot.
  void prepare_recv(size_t i, size_t offset = 0);
  /// Points entry i at `len` bytes of `data` to be sent to `to` (nullptr: connected socket).
  void prepare_send(size_t i, const uint8_t* data, size_t len, const sockaddr_in* to);

 private:
  size_t buffer_size_;
  std::vector<uint8_t> storage_;
  std::vector<mmsghdr> hdrs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_in> addrs_;
};

/// Sends all `count` prepared entries with sendmmsg, retrying on partial sends and EINTR.
/// Returns how many were handed to the kernel (fewer only on a socket error or EAGAIN).
size_t send_all(int fd, mmsghdr* hdrs, size_t count);

/// "--key value" and "--flag" options. Unknown or unused options are an error reported by
/// finish(), so a typo never silently runs a different benchmark.
class Args {
 public:
  /// Throws std::invalid_argument for a token that is not an option.
  Args(int argc, char** argv);
  bool flag(const std::string& key);
  std::string str(const std::string& key, const std::string& fallback);
  double num(const std::string& key, double fallback);
  /// Comma-separated unsigned numbers ("1000,10000").
  std::vector<uint64_t> list(const std::string& key, const std::vector<uint64_t>& fallback);
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  /// Throws std::invalid_argument naming every option that was given but never read.
  void finish() const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
};

/// Raises RLIMIT_NOFILE to its hard limit (holding 10k allocations needs 10k sockets).
void raise_fd_limit();

}  // namespace callrelay::bench
