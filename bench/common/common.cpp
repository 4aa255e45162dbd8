#include "bench/common/common.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace callrelay::bench {

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

sockaddr_in parse_addr(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    throw std::invalid_argument("expected a.b.c.d:port, got '" + std::string(text) + "'");
  }
  const std::string ip(text.substr(0, colon));
  const std::string port(text.substr(colon + 1));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  char* end = nullptr;
  const unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1 || port.empty() || *end != '\0' ||
      p > 65535) {
    throw std::invalid_argument("expected a.b.c.d:port, got '" + std::string(text) + "'");
  }
  addr.sin_port = htons(static_cast<uint16_t>(p));
  return addr;
}

std::string to_string(const sockaddr_in& addr) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(addr.sin_port));
}

int open_udp(const sockaddr_in& local, const sockaddr_in* remote, int buffer_bytes) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0 ||
      (remote != nullptr &&
       connect(fd, reinterpret_cast<const sockaddr*>(remote), sizeof *remote) != 0)) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }

std::optional<CpuTicks> read_cpu_ticks(int cpu) {
  std::ifstream in("/proc/stat");
  const std::string want = "cpu" + std::to_string(cpu);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != want) continue;
    uint64_t v[8] = {};  // user nice system idle iowait irq softirq steal
    for (auto& x : v) fields >> x;
    CpuTicks t;
    t.busy = v[0] + v[1] + v[2] + v[5] + v[6];
    t.total = t.busy + v[3] + v[4] + v[7];
    t.irq = v[5] + v[6];
    return t;
  }
  return std::nullopt;
}

double ticks_per_second() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }

std::optional<uint64_t> read_vmrss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::strtoull(line.c_str() + 6, nullptr, 10);
    }
  }
  return std::nullopt;
}

std::optional<double> read_process_cpu_s(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close_paren + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // fields 3..13
  uint64_t utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return static_cast<double>(utime + stime) / ticks_per_second();
}

namespace {
uint64_t* map_counter(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open counter file " + path + ": " + strerror(errno));
  if ((flags & O_CREAT) != 0 && ftruncate(fd, 64) != 0) {
    close(fd);
    throw std::runtime_error("cannot size counter file " + path);
  }
  void* p = mmap(nullptr, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw std::runtime_error("cannot map counter file " + path);
  return static_cast<uint64_t*>(p);
}
}  // namespace

SharedCounter SharedCounter::create(const std::string& path) {
  return SharedCounter(map_counter(path, O_RDWR | O_CREAT | O_TRUNC));
}
SharedCounter SharedCounter::open(const std::string& path) {
  return SharedCounter(map_counter(path, O_RDWR));
}
SharedCounter::SharedCounter(SharedCounter&& other) noexcept : value_(other.value_) {
  other.value_ = nullptr;
}
SharedCounter::~SharedCounter() {
  if (value_ != nullptr) munmap(value_, 64);
}
uint64_t SharedCounter::load() const {
  return std::atomic_ref<uint64_t>(*value_).load(std::memory_order_relaxed);
}
void SharedCounter::add(uint64_t n) {
  std::atomic_ref<uint64_t> v(*value_);
  v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

MsgBatch::MsgBatch(size_t count, size_t buffer_size)
    : buffer_size_(buffer_size),
      storage_(count * buffer_size),
      hdrs_(count),
      iovs_(count),
      addrs_(count) {}

void MsgBatch::prepare_recv(size_t i, size_t offset) {
  iovs_[i].iov_base = buffer(i) + offset;
  iovs_[i].iov_len = buffer_size_ - offset;
  msghdr& m = hdrs_[i].msg_hdr;
  m = msghdr{};
  m.msg_iov = &iovs_[i];
  m.msg_iovlen = 1;
  m.msg_name = &addrs_[i];
  m.msg_namelen = sizeof(sockaddr_in);
  hdrs_[i].msg_len = 0;
}

void MsgBatch::prepare_send(size_t i, const uint8_t* data, size_t len, const sockaddr_in* to) {
  iovs_[i].iov_base = const_cast<uint8_t*>(data);
  iovs_[i].iov_len = len;
  msghdr& m = hdrs_[i].msg_hdr;
  m = msghdr{};
  m.msg_iov = &iovs_[i];
  m.msg_iovlen = 1;
  if (to != nullptr) {
    addrs_[i] = *to;
    m.msg_name = &addrs_[i];
    m.msg_namelen = sizeof(sockaddr_in);
  }
  hdrs_[i].msg_len = 0;
}

size_t send_all(int fd, mmsghdr* hdrs, size_t count) {
  size_t sent = 0;
  while (sent < count) {
    const int n = sendmmsg(fd, hdrs + sent, static_cast<unsigned>(count - sent), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    sent += static_cast<size_t>(n);
  }
  return sent;
}

Args::Args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string token = argv[i];
    if (token.rfind("--", 0) != 0)
      throw std::invalid_argument("unexpected argument '" + token + "'");
    token = token.substr(2);
    if (i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0) {
      values_[token] = argv[++i];
    } else {
      values_[token] = "";
    }
  }
}

bool Args::flag(const std::string& key) {
  used_.insert(key);
  return values_.count(key) != 0;
}

std::string Args::str(const std::string& key, const std::string& fallback) {
  used_.insert(key);
  const auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

double Args::num(const std::string& key, double fallback) {
  used_.insert(key);
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') {
    throw std::invalid_argument("--" + key + " expects a number, got '" + it->second + "'");
  }
  return v;
}

std::vector<uint64_t> Args::list(const std::string& key, const std::vector<uint64_t>& fallback) {
  used_.insert(key);
  const auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  std::vector<uint64_t> out;
  std::istringstream in(it->second);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    out.push_back(std::strtoull(item.c_str(), &end, 10));
    if (item.empty() || *end != '\0') {
      throw std::invalid_argument("--" + key + " expects numbers like 1000,10000");
    }
  }
  return out;
}

void Args::finish() const {
  std::string unknown;
  for (const auto& [key, value] : values_) {
    if (used_.count(key) == 0) unknown += " --" + key;
  }
  if (!unknown.empty()) throw std::invalid_argument("unknown option(s):" + unknown);
}

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace callrelay::bench
