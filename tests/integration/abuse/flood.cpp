// The abuse tests' client: a spoofed-looking request flood from many loopback source addresses,
// holders of many idle TCP (or slow HTTP) connections from one address, and a TURN Allocate
// over UDP or TCP from a chosen address. Loopback only (127.0.0.0/8 needs no privilege to bind);
// every wait is bounded.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "abuse/flood_net.hpp"
#include "abuse/stun_mini.hpp"

namespace callrelay::integ {
namespace {

using Clock = std::chrono::steady_clock;
using mini::Bytes;

int usage() {
  std::fprintf(stderr,
               "usage: callrelay_integ_flood flood HOST PORT PACKETS ADDRESSES PORTS_PER_ADDRESS PPS\n"
               "       callrelay_integ_flood hold HOST PORT SOURCE_IP COUNT tcp|http\n"
               "       callrelay_integ_flood allocate udp|tcp HOST PORT SOURCE_IP USERNAME PASSWORD\n");
  return 2;
}

/// The flood's requests, in turn: Bindings (answered with more bytes than they carry),
/// unauthenticated Allocates (401), Allocates with a bogus nonce and key (438 or 401), requests
/// with an unknown comprehension-required attribute (420) and non-STUN garbage (dropped).
Bytes flood_request(uint64_t i, bool* challenge) {
  *challenge = false;
  switch (i % 8) {
    case 0: case 1: case 2:
      return mini::header(mini::kBinding);
    case 3: case 4: {
      Bytes b = mini::header(mini::kAllocate);
      mini::requested_udp(b);
      *challenge = true;
      return b;
    }
    case 5: {
      Bytes b = mini::header(mini::kAllocate);
      mini::requested_udp(b);
      mini::attr(b, 0x0006, "1:flood");
      mini::attr(b, 0x0014, "callrelay");
      mini::attr(b, 0x0015, "not-a-nonce");
      mini::sign(b, mini::long_term_key("1:flood", "callrelay", "guess"));
      *challenge = true;
      return b;
    }
    case 6: {
      Bytes b = mini::header(mini::kBinding);
      const uint8_t v[4] = {0, 0, 0, 0};
      mini::attr(b, 0x7F01, v, 4);  // comprehension-required, unknown: 420
      return b;
    }
    default:
      return Bytes(16, 0xEE);  // first bits 11: neither STUN nor ChannelData
  }
}

struct FloodTotals {
  uint64_t packets = 0, bytes_sent = 0, answers = 0, bytes_answered = 0;
  uint64_t challenge_requests = 0, challenges_answered = 0;
};

void drain(int ep, FloodTotals& t) {
  epoll_event events[256];
  uint8_t buf[2048];
  const int n = ::epoll_wait(ep, events, 256, 0);
  for (int i = 0; i < n; ++i) {
    for (;;) {
      const ssize_t got = ::recv(events[i].data.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (got <= 0) break;
      ++t.answers;
      t.bytes_answered += static_cast<uint64_t>(got);
      const auto a = mini::parse(buf, static_cast<size_t>(got));
      if (a && (a->code == 401 || a->code == 438)) ++t.challenges_answered;
    }
  }
}

int flood(const std::string& host, uint16_t port, uint64_t packets, unsigned addresses,
          unsigned ports_per_address, uint64_t pps) {
  raise_nofile();
  std::vector<int> socks;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (unsigned a = 0; a < addresses; ++a) {
    const std::string src = "127.1." + std::to_string(a / 250) + "." + std::to_string(1 + a % 250);
    for (unsigned p = 0; p < ports_per_address; ++p) {
      const int fd = udp_socket(src);
      if (fd < 0) return 1;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      socks.push_back(fd);
    }
  }
  const Target to = target(host, port);
  FloodTotals t;
  const auto start = Clock::now();
  for (uint64_t i = 0; i < packets; ++i) {
    bool challenge = false;
    const Bytes req = flood_request(i, &challenge);
    const int fd = socks[i % socks.size()];
    if (::sendto(fd, req.data(), req.size(), 0, to.addr(), to.len) == static_cast<ssize_t>(req.size())) {
      ++t.packets;
      t.bytes_sent += req.size();
      if (challenge) ++t.challenge_requests;
    }
    if (i % 256 == 255) {
      drain(ep, t);
      // Keep to the rate, so the server (not the kernel's queues) sees what was sent.
      const auto due = start + std::chrono::microseconds(i * 1'000'000 / pps);
      if (due > Clock::now()) std::this_thread::sleep_until(due);
    }
  }
  // Stragglers: answers still queued at the server.
  for (int quiet = 0; quiet < 20;) {
    const uint64_t before = t.answers;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    drain(ep, t);
    quiet = t.answers == before ? quiet + 1 : 0;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("packets=%llu bytes_sent=%llu answers=%llu bytes_answered=%llu "
              "challenge_requests=%llu challenges_answered=%llu addresses=%u sockets=%zu "
              "seconds=%.1f\n",
              static_cast<unsigned long long>(t.packets),
              static_cast<unsigned long long>(t.bytes_sent),
              static_cast<unsigned long long>(t.answers),
              static_cast<unsigned long long>(t.bytes_answered),
              static_cast<unsigned long long>(t.challenge_requests),
              static_cast<unsigned long long>(t.challenges_answered), addresses, socks.size(),
              secs);
  return 0;
}

}  // namespace
}  // namespace callrelay::integ

int main(int argc, char** argv) {
  using namespace callrelay::integ;
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) return usage();
  const auto num = [](const std::string& s) { return std::stoull(s); };
  try {
    if (a[0] == "flood" && a.size() == 7) {
      return flood(a[1], static_cast<uint16_t>(num(a[2])), num(a[3]),
                   static_cast<unsigned>(num(a[4])), static_cast<unsigned>(num(a[5])), num(a[6]));
    }
    if (a[0] == "hold" && a.size() == 6 && (a[5] == "tcp" || a[5] == "http")) {
      return hold(a[1], static_cast<uint16_t>(num(a[2])), a[3], static_cast<unsigned>(num(a[4])),
                  a[5] == "http");
    }
    if (a[0] == "allocate" && a.size() == 7 && (a[1] == "udp" || a[1] == "tcp")) {
      return allocate(a[1] == "tcp", a[2], static_cast<uint16_t>(num(a[3])), a[4], a[5], a[6]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "callrelay_integ_flood: %s\n", e.what());
    return 2;
  }
  return usage();
}
