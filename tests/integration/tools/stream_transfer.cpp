// Byte streams of the stream TURN client (see stream_turn_client.hpp): deterministic content
// moved over several connections at once and compared byte for byte, and the checks that a
// connection closes or stays quiet.
#include "tests/integration/tools/stream_turn_client.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

namespace callrelay::integ {
namespace {

/// Up to 8 bytes in hex, for mismatch reports.
std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    out += buf;
  }
  return out + (n > 8 ? "..." : "");
}

}  // namespace

Bytes pattern(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

void transfer(std::vector<Leg*> legs, int timeout_ms) {
  const auto start = Clock::now();
  const auto deadline = after_ms(timeout_ms);
  std::vector<uint8_t> buf(65536);
  for (;;) {
    bool all_done = true;
    std::vector<pollfd> fds;
    int wait_ms = 50;
    for (Leg* l : legs) {
      if (l->done_sending() && l->done_receiving()) continue;
      all_done = false;
      const int age = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
      if (age < l->delay_ms) {
        wait_ms = std::min(wait_ms, l->delay_ms - age);
        continue;
      }
      // Send what the socket takes now.
      while (l->sent < l->out.size()) {
        size_t put = 0;
        const size_t n = std::min<size_t>(l->out.size() - l->sent, 65536);
        const Io r = l->conn->write_some(l->out.data() + l->sent, n, put);
        if (r == Io::kWouldBlock) break;
        check(r == Io::kOk, l->name + ": write failed after " + std::to_string(l->sent) + " bytes");
        l->sent += put;
      }
      if (l->sent == l->out.size() && l->close_after_send && !l->closed) {
        l->conn->close();
        l->closed = true;
      }
      // Take what arrived: no more than expected, unless an EOF must follow (then any extra
      // byte is an error, and reading on is how it shows).
      while (!l->closed && !l->done_receiving()) {
        size_t got = 0;
        const size_t want =
            l->expect_eof ? buf.size() : std::min(buf.size(), l->expect.size() - l->got);
        const Io r = l->conn->read_some(buf.data(), want, got);
        if (r == Io::kWouldBlock) break;
        if (r == Io::kEof || (r == Io::kReset && l->eof_reset_ok)) {
          check(l->got == l->expect.size(), l->name + ": connection closed after " +
                                                std::to_string(l->got) + " of " +
                                                std::to_string(l->expect.size()) + " bytes");
          check(l->expect_eof, l->name + ": unexpected EOF");
          l->eof = true;
          break;
        }
        check(r == Io::kOk, l->name + (r == Io::kReset ? ": connection reset" : ": read failed") +
                                " after " + std::to_string(l->got) + " bytes");
        check(l->got + got <= l->expect.size(),
              l->name + ": " + std::to_string(l->got + got - l->expect.size()) +
                  " bytes more than the " + std::to_string(l->expect.size()) + " expected");
        const auto mismatch = std::mismatch(buf.begin(), buf.begin() + static_cast<long>(got),
                                            l->expect.begin() + static_cast<long>(l->got));
        if (mismatch.first != buf.begin() + static_cast<long>(got)) {
          const auto at = static_cast<size_t>(mismatch.first - buf.begin());
          throw Failure(l->name + ": byte " + std::to_string(l->got + at) + " of " +
                        std::to_string(l->expect.size()) + " differs from what was sent (read of " +
                        std::to_string(got) + " bytes: " + hex_bytes(&buf[at], got - at) +
                        ", expected " + hex_bytes(&l->expect[l->got + at], got - at) + ")");
        }
        l->got += got;
      }
      if (l->closed) continue;
      short events = 0;
      if (!l->done_receiving()) events |= POLLIN;
      if (l->sent < l->out.size()) events |= POLLOUT;
      if (events != 0) fds.push_back(pollfd{l->conn->fd(), events, 0});
    }
    if (all_done) return;
    if (Clock::now() >= deadline) {
      std::string state;
      for (const Leg* l : legs) state += "\n  " + l->progress();
      throw Failure("transfer not finished within " + std::to_string(timeout_ms) + " ms:" + state);
    }
    ::poll(fds.data(), fds.size(), std::min(wait_ms, ms_left(deadline)));
  }
}

void expect_closed(const std::string& name, Conn& c, int timeout_ms, bool reset_ok) {
  Leg l = Leg(name, &c).then_eof(reset_ok);
  transfer({&l}, timeout_ms);
}

void both_ways(Conn& client, Conn& peer, size_t n, uint32_t seed, int timeout_ms) {
  Leg c =
      Leg("client data connection", &client).sends(pattern(n, seed)).expects(pattern(n, seed + 1));
  Leg p = Leg("peer", &peer).sends(pattern(n, seed + 1)).expects(pattern(n, seed));
  transfer({&c, &p}, timeout_ms);
}

void expect_quiet(const std::string& name, Conn& c, int quiet_ms) {
  check(c.pending.empty(), name + ": " + std::to_string(c.pending.size()) + " unexpected bytes");
  if (!wait_for(c, POLLIN, after_ms(quiet_ms))) return;
  uint8_t byte = 0;
  size_t got = 0;
  const Io r = c.read_some(&byte, 1, got);
  check(r == Io::kWouldBlock, name + (r == Io::kOk ? ": unexpected bytes" : ": closed"));
}

size_t write_for(Conn& c, const Bytes& bytes, int ms) {
  const auto deadline = after_ms(ms);
  size_t sent = 0;
  while (sent < bytes.size() && Clock::now() < deadline) {
    size_t put = 0;
    const Io r = c.write_some(bytes.data() + sent, bytes.size() - sent, put);
    check(r == Io::kOk || r == Io::kWouldBlock, "write failed after " + std::to_string(sent));
    sent += put;
    if (r == Io::kWouldBlock) wait_for(c, POLLOUT, deadline);
  }
  // The server reads what the kernel holds for it (up to its own limit) in the meantime.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::max(0, ms_left(deadline))));
  return sent;
}

void write_all(Conn& c, const Bytes& bytes) {
  Leg l = Leg("request", &c).sends(bytes);
  transfer({&l}, kAnswerMs);
}

}  // namespace callrelay::integ
