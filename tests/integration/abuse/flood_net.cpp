#include "abuse/flood_net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <vector>

#include "abuse/stun_mini.hpp"

namespace callrelay::integ {
namespace {

using Clock = std::chrono::steady_clock;
std::atomic<bool> g_stop{false};

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

int bound_socket(int type, const std::string& source) {
  const int fd = ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const Target src = target(source, 0);
  if (::bind(fd, src.addr(), src.len) != 0) {
    std::fprintf(stderr, "bind %s: %s\n", source.c_str(), std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Target target(const std::string& host, uint16_t port) {
  Target t;
  t.sin.sin_family = AF_INET;
  t.sin.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &t.sin.sin_addr) != 1) {
    throw std::invalid_argument("not a numeric IPv4 address: " + host);
  }
  return t;
}

uint64_t raise_nofile() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
  ::getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : r.rlim_cur;
}

int udp_socket(const std::string& source) {
  const int fd = bound_socket(SOCK_DGRAM, source);
  if (fd >= 0) {
    int size = 1 << 18;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  return fd;
}

// --- hold ------------------------------------------------------------------------------------

namespace {

struct Held {
  int fd = -1;
  bool connected = false;
  bool resolved = false;  ///< the first attempt connected or failed
  Clock::time_point reopen_at{};
};

struct Holder {
  Target to;
  std::string source;
  bool http = false;
  int ep = -1;
  std::vector<Held> conns;
  uint64_t opened = 0, closed_by_server = 0;

  void open(size_t i) {
    Held& h = conns[i];
    const bool resolved = h.resolved;
    h = Held{};
    h.resolved = resolved;
    h.fd = bound_socket(SOCK_STREAM, source);
    if (h.fd < 0) return;
    ++opened;
    if (::connect(h.fd, to.addr(), to.len) != 0 && errno != EINPROGRESS) return lost(i);
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, h.fd, &ev);
  }
  void lost(size_t i) {
    Held& h = conns[i];
    if (h.fd >= 0) ::close(h.fd);
    h.fd = -1;
    h.connected = false;
    h.resolved = true;
    h.reopen_at = Clock::now() + std::chrono::seconds(5);
    ++closed_by_server;
  }
  void on_event(size_t i, uint32_t events) {
    Held& h = conns[i];
    if (h.fd < 0) return;
    if ((events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) return lost(i);
    if ((events & EPOLLIN) != 0) {
      char buf[512];
      const ssize_t n = ::recv(h.fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return lost(i);
    }
    if ((events & EPOLLOUT) != 0 && !h.connected) {
      h.connected = true;
      h.resolved = true;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = i;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, h.fd, &ev);
      if (http) {  // a request head that never ends (no blank line)
        static const char kHead[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1";
        (void)::send(h.fd, kHead, sizeof kHead - 1, MSG_NOSIGNAL);
      }
    }
  }
  bool all_resolved() const {
    for (const Held& h : conns) {
      if (!h.resolved) return false;
    }
    return true;
  }
  size_t alive() const {
    size_t n = 0;
    for (const Held& h : conns) n += h.connected ? 1 : 0;
    return n;
  }
};

}  // namespace

int hold(const std::string& host, uint16_t port, const std::string& source, unsigned count,
         bool http) {
  const uint64_t limit = raise_nofile();
  if (limit < count + 64ULL) {
    std::printf("SKIP: RLIMIT_NOFILE hard limit %llu is too low for %u connections\n",
                static_cast<unsigned long long>(limit), count);
    return 77;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  Holder h{target(host, port), source, http, ::epoll_create1(EPOLL_CLOEXEC), {}, 0, 0};
  h.conns.resize(count);
  const auto start = Clock::now();
  for (size_t i = 0; i < count; ++i) h.open(i);
  bool reported = false;
  std::optional<Clock::time_point> resolved_at;
  epoll_event events[512];
  while (!g_stop) {
    const int n = ::epoll_wait(h.ep, events, 512, 100);
    for (int k = 0; k < n; ++k) h.on_event(events[k].data.u64, events[k].events);
    const auto now = Clock::now();
    for (size_t i = 0; i < count; ++i) {
      if (h.conns[i].fd < 0 && now >= h.conns[i].reopen_at) h.open(i);
    }
    if (!resolved_at && h.all_resolved()) resolved_at = now;
    // Settled: every first attempt connected or failed three seconds ago (or a minute passed),
    // so the server has had time to close what it refuses.
    if (!reported && ((resolved_at && ms_since(*resolved_at) >= 3000) || ms_since(start) >= 60000)) {
      const size_t alive = h.alive();
      reported = true;
      std::printf("held %zu of %u %s connections from %s (opened %llu, closed by the server "
                  "%llu) after %lld ms\n",
                  alive, count, http ? "slow http" : "idle tcp", source.c_str(),
                  static_cast<unsigned long long>(h.opened),
                  static_cast<unsigned long long>(h.closed_by_server),
                  static_cast<long long>(ms_since(start)));
      std::fflush(stdout);
    }
  }
  std::printf("final: %zu open, opened %llu, closed by the server %llu\n", h.alive(),
              static_cast<unsigned long long>(h.opened),
              static_cast<unsigned long long>(h.closed_by_server));
  return 0;
}

// --- allocate --------------------------------------------------------------------------------

namespace {

/// Sends `req` and waits for the answer with the same transaction id (UDP: retransmitted
/// every 500 ms; TCP: framed by the STUN length). nullopt after `deadline`.
std::optional<mini::Answer> exchange(int fd, bool tcp, const Target& to, const mini::Bytes& req,
                                     Clock::time_point deadline) {
  std::vector<uint8_t> in;
  auto next_send = Clock::now();
  while (Clock::now() < deadline) {
    if (Clock::now() >= next_send) {
      const ssize_t sent = tcp ? ::send(fd, req.data(), req.size(), MSG_NOSIGNAL)
                               : ::sendto(fd, req.data(), req.size(), 0, to.addr(), to.len);
      if (sent != static_cast<ssize_t>(req.size()) && tcp) return std::nullopt;
      next_send = tcp ? Clock::time_point::max() : Clock::now() + std::chrono::milliseconds(500);
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) != 1) continue;
    uint8_t buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (tcp) return std::nullopt;  // closed
      continue;
    }
    in.insert(in.end(), buf, buf + n);
    while (in.size() >= 20) {
      const size_t total = 20 + mini::get16(in.data() + 2);
      if (in.size() < total) break;
      const bool same = std::equal(in.begin() + 8, in.begin() + 20, req.begin() + 8);
      const auto a = mini::parse(in.data(), total);
      in.erase(in.begin(), in.begin() + static_cast<long>(total));
      if (same && a) return a;
    }
    if (!tcp) in.clear();
  }
  return std::nullopt;
}

}  // namespace

int allocate(bool tcp, const std::string& host, uint16_t port, const std::string& source,
             const std::string& username, const std::string& password) {
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(20);
  const Target to = target(host, port);
  const int fd = bound_socket(tcp ? SOCK_STREAM : SOCK_DGRAM, source);
  if (fd < 0) return 1;
  if (tcp) {
    if (::connect(fd, to.addr(), to.len) != 0 && errno != EINPROGRESS) return 1;
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, 10000) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      std::fprintf(stderr, "allocate: tcp connect from %s failed\n", source.c_str());
      return 1;
    }
  }
  mini::Bytes first = mini::header(mini::kAllocate);
  mini::requested_udp(first);
  const auto challenge = exchange(fd, tcp, to, first, deadline);
  if (!challenge || challenge->code != 401 || challenge->nonce.empty()) {
    std::fprintf(stderr, "allocate: no 401 with a nonce (got %s)\n",
                 challenge ? std::to_string(challenge->code).c_str() : "nothing");
    return 1;
  }
  mini::Bytes signed_req = mini::header(mini::kAllocate);
  mini::requested_udp(signed_req);
  mini::attr(signed_req, 0x0006, username);
  mini::attr(signed_req, 0x0014, challenge->realm);
  mini::attr(signed_req, 0x0015, challenge->nonce);
  mini::sign(signed_req, mini::long_term_key(username, challenge->realm, password));
  const auto ok = exchange(fd, tcp, to, signed_req, deadline);
  ::close(fd);
  if (!ok || ok->code != 0 || !ok->relayed) {
    std::fprintf(stderr, "allocate: no success (got %s)\n",
                 ok ? std::to_string(ok->code).c_str() : "nothing");
    return 1;
  }
  std::printf("allocated %s %s in %lld ms\n", tcp ? "tcp" : "udp", ok->relayed->c_str(),
              static_cast<long long>(ms_since(start)));
  return 0;
}

}  // namespace callrelay::integ
