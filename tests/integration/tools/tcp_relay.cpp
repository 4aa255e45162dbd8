// RFC 6062 TCP allocations at the socket level (see tcp_relay.hpp). Like the other helpers it
// has its own small STUN encoder, independent of the project's codec, so the test stays an
// independent check of the server. The "peers" are plain sockets of this process on 127.0.0.1
// (the test server allows loopback peers). A failed check throws Failure, which run_tcp_relay
// turns into a FAIL line: every case reads as a straight sequence of steps and assertions.
#include "tests/integration/tools/tcp_relay.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/tools/turn_client.hpp"

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

// RFC 8656 / RFC 6062 methods (all below 0x10, so the message type is method | class bits).
constexpr uint16_t kAllocate = 0x0003, kRefresh = 0x0004, kCreatePermission = 0x0008;
constexpr uint16_t kConnect = 0x000A, kConnectionBind = 0x000B, kConnectionAttempt = 0x000C;
constexpr uint16_t kClassIndication = 0x0010, kClassSuccess = 0x0100, kClassError = 0x0110;
constexpr uint16_t kUsername = 0x0006, kIntegrity = 0x0008, kErrorCode = 0x0009;
constexpr uint16_t kXorPeer = 0x0012, kRealm = 0x0014, kNonce = 0x0015, kXorRelayed = 0x0016;
constexpr uint16_t kTransport = 0x0019, kConnectionId = 0x002A;
constexpr uint32_t kCookie = 0x2112A442;
constexpr size_t kHeader = 20;
constexpr uint8_t kProtocolTcp = 6;

/// Every wait for the server is bounded by this; loopback answers take milliseconds, so a
/// case that hits it has found a hang, not a slow machine.
constexpr int kAnswerMs = 5000;
/// How long "nothing happens" is watched for (no ConnectionAttempt, no second connection).
constexpr int kQuietMs = 500;
/// What the server keeps of a peer's bytes before the ConnectionBind (README "Transports":
/// "up to 64 KiB"), and what the inbound peer sends by then: more.
constexpr size_t kServerHolds = 65536;
constexpr size_t kEarlyInbound = 100 * 1024;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void check(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

struct Address {
  std::string ip;
  uint16_t port = 0;
  std::string text() const { return ip + ":" + std::to_string(port); }
  bool operator==(const Address& o) const { return ip == o.ip && port == o.port; }
};

Address to_address(const sockaddr_in& sa) {
  std::array<char, INET_ADDRSTRLEN> buf{};
  inet_ntop(AF_INET, &sa.sin_addr, buf.data(), buf.size());
  return Address{buf.data(), ntohs(sa.sin_port)};
}
sockaddr_in to_sockaddr(const Address& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a.port);
  check(inet_pton(AF_INET, a.ip.c_str(), &sa.sin_addr) == 1, "not an IPv4 address: " + a.ip);
  return sa;
}
Address local_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return to_address(sa);
}
Address remote_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return to_address(sa);
}

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}
Clock::time_point after_ms(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

/// Deterministic test content: a different stream per seed, so a byte that went the wrong way
/// or twice shows up as a mismatch at a precise offset.
Bytes pattern(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sockets: a connected TCP stream, plain or TLS (client side), non-blocking once set up.

SSL_CTX* client_tls_context() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    // The test server's certificate is a throwaway self-signed one (tls_versions.sh tests the
    // TLS setup itself); this client only needs the encrypted byte stream.
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    // callrelay closes TLS connections without close_notify (the peer closed, the allocation
    // ended): that is the EOF this test waits for, not an error.
    SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE);
    return c;
  }();
  return ctx;
}

enum class Io { kOk, kWouldBlock, kEof, kReset, kError };

class Conn {
 public:
  /// Connects to `to` (and runs the TLS handshake); nullptr with `*err` = errno if the TCP
  /// connection was refused or failed, a Failure if the TLS handshake failed.
  static std::unique_ptr<Conn> dial(const Address& to, bool tls, int* err = nullptr) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    check(fd >= 0, std::string("socket: ") + std::strerror(errno));
    const sockaddr_in sa = to_sockaddr(to);
    int e = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      e = errno;
      if (e == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        e = ::poll(&p, 1, kAnswerMs) == 1 ? 0 : ETIMEDOUT;
        socklen_t len = sizeof e;
        if (e == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
      }
    }
    if (e != 0) {
      ::close(fd);
      if (err != nullptr) *err = e;
      return nullptr;
    }
    auto c = std::unique_ptr<Conn>(new Conn(fd));
    if (tls) c->handshake();
    return c;
  }
  /// A plain connection accepted by a Listener.
  static std::unique_ptr<Conn> adopt(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return std::unique_ptr<Conn>(new Conn(fd));
  }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  Address local() const { return local_of(fd_); }
  Address remote() const { return remote_of(fd_); }

  /// Bytes read off the socket past the last STUN message taken: after a ConnectionBind
  /// response they are the first relayed bytes, so read_some() hands them out first.
  Bytes pending;

  Io read_some(uint8_t* p, size_t n, size_t& got) {
    got = 0;
    if (!pending.empty()) {
      got = std::min(n, pending.size());
      std::memcpy(p, pending.data(), got);
      pending.erase(pending.begin(), pending.begin() + static_cast<long>(got));
      return Io::kOk;
    }
    return recv_socket(p, n, got);
  }
  /// Appends what the socket has to `pending`.
  Io fill() {
    std::array<uint8_t, 16384> buf{};
    size_t got = 0;
    const Io r = recv_socket(buf.data(), buf.size(), got);
    pending.insert(pending.end(), buf.begin(), buf.begin() + static_cast<long>(got));
    return r;
  }

  Io write_some(const uint8_t* p, size_t n, size_t& put) {
    put = 0;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int r = SSL_write(ssl_, p, static_cast<int>(n));
      if (r > 0) {
        put = static_cast<size_t>(r);
        return Io::kOk;
      }
      return ssl_result(r);
    }
    const ssize_t r = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (r >= 0) {
      put = static_cast<size_t>(r);
      return Io::kOk;
    }
    return errno_result(errno);
  }

  /// Closes the connection (FIN; close_notify first over TLS). Idempotent.
  void close() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  explicit Conn(int fd) : fd_(fd) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }

  void handshake() {
    ssl_ = SSL_new(client_tls_context());
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    const auto deadline = after_ms(kAnswerMs);
    for (;;) {
      ERR_clear_error();
      const int r = SSL_connect(ssl_);
      if (r == 1) return;
      const int e = SSL_get_error(ssl_, r);
      check(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE, "TLS handshake failed");
      pollfd p{fd_, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
      check(::poll(&p, 1, ms_left(deadline)) == 1, "TLS handshake timed out");
    }
  }

  Io recv_socket(uint8_t* p, size_t n, size_t& got) {
    got = 0;
    if (fd_ < 0) return Io::kError;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int r = SSL_read(ssl_, p, static_cast<int>(n));
      if (r > 0) {
        got = static_cast<size_t>(r);
        return Io::kOk;
      }
      return ssl_result(r);
    }
    const ssize_t r = ::recv(fd_, p, n, 0);
    if (r > 0) {
      got = static_cast<size_t>(r);
      return Io::kOk;
    }
    return r == 0 ? Io::kEof : errno_result(errno);
  }

  Io ssl_result(int r) {
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:
        return Io::kWouldBlock;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kEof;
      case SSL_ERROR_SYSCALL:
        return errno == ECONNRESET || errno == EPIPE ? Io::kReset : Io::kError;
      default:
        return Io::kError;
    }
  }
  static Io errno_result(int e) {
    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) return Io::kWouldBlock;
    if (e == ECONNRESET || e == EPIPE) return Io::kReset;
    return Io::kError;
  }

  int fd_;
  SSL* ssl_ = nullptr;
};

/// Waits for `events` on `c` until the deadline; false on timeout.
bool wait_for(const Conn& c, short events, Clock::time_point deadline) {
  pollfd p{c.fd(), events, 0};
  return ::poll(&p, 1, ms_left(deadline)) == 1;
}

/// A TCP socket on 127.0.0.1 with a kernel-chosen port: listening (a peer), or only bound,
/// which holds a port that refuses connections (for the 447 case) without racing anyone.
class Listener {
 public:
  explicit Listener(bool listening = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in sa = to_sockaddr(Address{"127.0.0.1", 0});
    check(fd_ >= 0 && ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0,
          std::string("cannot bind a peer socket: ") + std::strerror(errno));
    if (listening) check(::listen(fd_, 16) == 0, "listen failed");
  }
  ~Listener() { ::close(fd_); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Address address() const { return local_of(fd_); }

  /// The next connection, or nullptr if none came within timeout_ms.
  std::unique_ptr<Conn> accept(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return nullptr;
    const int fd = ::accept(fd_, nullptr, nullptr);
    check(fd >= 0, std::string("accept: ") + std::strerror(errno));
    return Conn::adopt(fd);
  }

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Byte streams: several connections at once, each sending and/or expecting a stream.

/// One connection's part in a transfer: what it sends (then optionally closes), what it must
/// receive (compared byte by byte, however the reads split or coalesce it) and whether an EOF
/// must follow. Nothing happens on it before `delay_ms`, so the other side's bytes pile up in
/// the server's buffers first. Built as Leg("name", conn).sends(...).expects(...).
struct Leg {
  Leg(std::string n, Conn* c) : name(std::move(n)), conn(c) {}
  Leg&& sends(Bytes b) && {
    out = std::move(b);
    return std::move(*this);
  }
  Leg&& then_closes() && {
    close_after_send = true;
    return std::move(*this);
  }
  Leg&& expects(Bytes b) && {
    expect = std::move(b);
    return std::move(*this);
  }
  /// An EOF must follow the expected bytes; with `reset_ok` a connection reset counts too.
  Leg&& then_eof(bool reset_ok = false) && {
    expect_eof = true;
    eof_reset_ok = reset_ok;
    return std::move(*this);
  }
  Leg&& after_ms(int ms) && {
    delay_ms = ms;
    return std::move(*this);
  }

  std::string name;
  Conn* conn;
  Bytes out;
  bool close_after_send = false;
  Bytes expect;
  bool expect_eof = false;
  bool eof_reset_ok = false;
  int delay_ms = 0;

  size_t sent = 0, got = 0;
  bool closed = false, eof = false;
  bool done_sending() const { return sent == out.size() && (!close_after_send || closed); }
  bool done_receiving() const { return got == expect.size() && (!expect_eof || eof); }
  std::string progress() const {
    return name + ": sent " + std::to_string(sent) + "/" + std::to_string(out.size()) +
           ", received " + std::to_string(got) + "/" + std::to_string(expect.size()) +
           (expect_eof ? (eof ? ", EOF seen" : ", no EOF yet") : "");
  }
};

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

/// Runs the legs until each has sent and received everything, or fails (a mismatching or
/// extra byte, an early EOF or reset, or the timeout, with every leg's progress).
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

/// `c` must see the connection closed with no byte before (EOF, or a reset if `reset_ok`)
/// within timeout_ms.
void expect_closed(const std::string& name, Conn& c, int timeout_ms, bool reset_ok) {
  Leg l = Leg(name, &c).then_eof(reset_ok);
  transfer({&l}, timeout_ms);
}

/// `n` bytes from the client data connection to the peer and `n` others back, at the same
/// time; each side must receive exactly the other's stream.
void both_ways(Conn& client, Conn& peer, size_t n, uint32_t seed, int timeout_ms) {
  Leg c =
      Leg("client data connection", &client).sends(pattern(n, seed)).expects(pattern(n, seed + 1));
  Leg p = Leg("peer", &peer).sends(pattern(n, seed + 1)).expects(pattern(n, seed));
  transfer({&c, &p}, timeout_ms);
}

/// Nothing at all may arrive on `c` for quiet_ms (no byte, no close).
void expect_quiet(const std::string& name, Conn& c, int quiet_ms) {
  check(c.pending.empty(), name + ": " + std::to_string(c.pending.size()) + " unexpected bytes");
  if (!wait_for(c, POLLIN, after_ms(quiet_ms))) return;
  uint8_t byte = 0;
  size_t got = 0;
  const Io r = c.read_some(&byte, 1, got);
  check(r == Io::kWouldBlock, name + (r == Io::kOk ? ": unexpected bytes" : ": closed"));
}

// ---------------------------------------------------------------------------------------------
// STUN over a stream (RFC 8489 section 6.2.2: messages back to back, no framing added).

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) { return (uint32_t{get16(p)} << 16) | get16(p + 2); }
Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}

/// RFC 8489 section 14.2: XOR-MAPPED-ADDRESS layout, IPv4 (the peers are on 127.0.0.1).
Bytes xor_address(const Address& a) {
  const sockaddr_in sa = to_sockaddr(a);
  const uint32_t x_addr = ntohl(sa.sin_addr.s_addr) ^ kCookie;
  const auto x_port = static_cast<uint16_t>(a.port ^ (kCookie >> 16));
  Bytes v{0, 0x01, static_cast<uint8_t>(x_port >> 8), static_cast<uint8_t>(x_port)};
  const Bytes addr = be32(x_addr);
  v.insert(v.end(), addr.begin(), addr.end());
  return v;
}

struct Message {
  uint16_t type = 0;
  std::array<uint8_t, 12> tid{};
  std::vector<std::pair<uint16_t, Bytes>> attrs;

  uint16_t method() const { return type & ~kClassError & 0x3FFF; }
  bool is(uint16_t m, uint16_t cls) const { return type == (m | cls); }
  const Bytes* attr(uint16_t t) const {
    for (const auto& [at, v] : attrs) {
      if (at == t) return &v;
    }
    return nullptr;
  }
  /// 200 for a success response, the ERROR-CODE of an error response (0 if it has none), -1
  /// for anything else.
  int code() const {
    if ((type & kClassError) == kClassSuccess) return 200;
    if ((type & kClassError) != kClassError) return -1;
    const Bytes* e = attr(kErrorCode);
    return e != nullptr && e->size() >= 4 ? ((*e)[2] & 0x7) * 100 + (*e)[3] : 0;
  }
  std::optional<uint32_t> u32(uint16_t t) const {
    const Bytes* v = attr(t);
    if (v == nullptr || v->size() != 4) return std::nullopt;
    return get32(v->data());
  }
  std::optional<Address> address(uint16_t t) const {
    const Bytes* v = attr(t);
    if (v == nullptr || v->size() != 8 || (*v)[1] != 0x01) return std::nullopt;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(get16(v->data() + 2) ^ (kCookie >> 16)));
    sa.sin_addr.s_addr = htonl(get32(v->data() + 4) ^ kCookie);
    return to_address(sa);
  }
  std::string describe() const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "message type 0x%04x", type);
    const int c = code();
    return std::string(buf) + (c >= 0 ? " (" + std::to_string(c) + ")" : "");
  }
};

/// The next STUN message on `c`, or nothing if none is complete within timeout_ms. Fails on
/// a close or on bytes that are not STUN (a TCP allocation's control connection carries
/// nothing else).
std::optional<Message> read_message(Conn& c, int timeout_ms) {
  const auto deadline = after_ms(timeout_ms);
  for (;;) {
    if (c.pending.size() >= kHeader) {
      check((c.pending[0] & 0xC0) == 0 && get32(&c.pending[4]) == kCookie,
            "not a STUN message on a STUN connection");
      const size_t size = kHeader + get16(&c.pending[2]);
      if (c.pending.size() >= size) {
        Message m;
        m.type = get16(c.pending.data());
        std::copy(c.pending.begin() + 8, c.pending.begin() + kHeader, m.tid.begin());
        for (size_t at = kHeader; at + 4 <= size;) {
          const uint16_t type = get16(&c.pending[at]);
          const uint16_t len = get16(&c.pending[at + 2]);
          check(at + 4 + len <= size, "a STUN attribute overruns its message");
          const auto value = c.pending.begin() + static_cast<long>(at + 4);
          m.attrs.emplace_back(type, Bytes(value, value + len));
          at += 4 + ((len + 3u) & ~3u);
        }
        c.pending.erase(c.pending.begin(), c.pending.begin() + static_cast<long>(size));
        return m;
      }
    }
    const Io r = c.fill();
    if (r == Io::kOk) continue;
    check(r == Io::kWouldBlock,
          r == Io::kEof ? "the server closed a STUN connection" : "a STUN connection failed");
    if (!wait_for(c, POLLIN, deadline)) return std::nullopt;
  }
}

/// Writes as much of `bytes` as the sockets take within ms, and returns after ms in any case
/// (the server reads meanwhile what it will before a ConnectionBind): how many bytes went.
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

/// Long-term credentials (RFC 8489 section 9.2), learnt from the first 401 and kept: RFC 6062
/// section 4.4 has the data connections authenticate "using the same method and credentials
/// as for the control connection".
struct Credentials {
  std::string username, password;
  std::string realm, nonce;
  Bytes key;
};

/// A STUN client on one connection: requests with transaction matching; indications that
/// arrive meanwhile (ConnectionAttempt on a control connection) are kept for later.
class StunConn {
 public:
  explicit StunConn(std::unique_ptr<Conn> c) : conn_(std::move(c)), rng_(std::random_device{}()) {}
  std::unique_ptr<Conn> release() { return std::move(conn_); }

  /// Sends a request with `attrs`, signed with `cred` (after a 401 challenge if the realm is
  /// not known yet, and once more on 438 Stale Nonce), and returns the final response.
  Message request(uint16_t method, const std::vector<std::pair<uint16_t, Bytes>>& attrs,
                  Credentials& cred) {
    for (int round = 0; round < 3; ++round) {
      Bytes req = start(method);
      for (const auto& [type, value] : attrs) add_attr(req, type, value);
      const bool signed_request = !cred.realm.empty();
      if (signed_request) sign(req, cred);
      const Message resp = exchange(req);
      const int code = resp.code();
      const bool challenge = (code == 401 && !signed_request) || code == 438;
      const Bytes* realm = resp.attr(kRealm);
      const Bytes* nonce = resp.attr(kNonce);
      if (!challenge || realm == nullptr || nonce == nullptr) return resp;
      cred.realm.assign(realm->begin(), realm->end());
      cred.nonce.assign(nonce->begin(), nonce->end());
      cred.key = long_term_key(cred);
    }
    throw Failure("no final answer after repeated 401/438 challenges");
  }

  /// The next indication (kept or arriving within timeout_ms), or nothing.
  std::optional<Message> indication(int timeout_ms) {
    if (indications_.empty()) {
      auto m = read_message(*conn_, timeout_ms);
      if (!m) return std::nullopt;
      check((m->type & kClassError) == kClassIndication, "unexpected " + m->describe());
      indications_.push_back(*m);
    }
    Message m = indications_.front();
    indications_.pop_front();
    return m;
  }
  size_t kept_indications() const { return indications_.size(); }

 private:
  Bytes start(uint16_t method) {
    Bytes r(kHeader, 0);
    put16(r, 0, method);
    put16(r, 4, static_cast<uint16_t>(kCookie >> 16));
    put16(r, 6, static_cast<uint16_t>(kCookie));
    for (size_t i = 8; i < kHeader; ++i) r[i] = static_cast<uint8_t>(rng_());
    return r;
  }

  /// USERNAME, REALM, NONCE, then MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to it,
  /// with the length field already counting it (RFC 8489 section 14.5).
  static void sign(Bytes& r, const Credentials& cred) {
    add_attr(r, kUsername, Bytes(cred.username.begin(), cred.username.end()));
    add_attr(r, kRealm, Bytes(cred.realm.begin(), cred.realm.end()));
    add_attr(r, kNonce, Bytes(cred.nonce.begin(), cred.nonce.end()));
    const size_t covered = r.size();
    put16(r, 2, static_cast<uint16_t>(covered - kHeader + 24));
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int len = 0;
    HMAC(EVP_sha1(), cred.key.data(), static_cast<int>(cred.key.size()), r.data(), covered,
         mac.data(), &len);
    add_attr(r, kIntegrity, Bytes(mac.begin(), mac.begin() + len));
  }

  /// RFC 8489 section 9.2.2: key = MD5(username ":" realm ":" password).
  static Bytes long_term_key(const Credentials& c) {
    const std::string input = c.username + ":" + c.realm + ":" + c.password;
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    EVP_Digest(input.data(), input.size(), md.data(), &len, EVP_md5(), nullptr);
    return Bytes(md.begin(), md.begin() + len);
  }

  Message exchange(const Bytes& req) {
    write_all(*conn_, req);
    const auto deadline = after_ms(kAnswerMs);
    for (;;) {
      auto m = read_message(*conn_, ms_left(deadline));
      check(m.has_value(), "no answer to a request of type 0x" + hex(get16(req.data())) +
                               " within " + std::to_string(kAnswerMs) + " ms");
      if ((m->type & kClassError) == kClassIndication) {
        indications_.push_back(*m);
        continue;
      }
      check(std::equal(m->tid.begin(), m->tid.end(), req.begin() + 8),
            "a response to another transaction: " + m->describe());
      check(m->method() == get16(req.data()), "a response of another method: " + m->describe());
      return *m;
    }
  }
  static std::string hex(uint16_t v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04x", v);
    return buf;
  }

  std::unique_ptr<Conn> conn_;
  std::mt19937 rng_;
  std::deque<Message> indications_;
};

// ---------------------------------------------------------------------------------------------
// The TURN side: a TCP allocation on its control connection, and data connections.

void expect_code(const Message& m, int code, const std::string& what) {
  check(m.code() == code, what + ": expected " + std::to_string(code) + ", got " + m.describe());
}

std::unique_ptr<Conn> dial_server(const TcpRelayTarget& t) {
  int err = 0;
  auto c = Conn::dial(Address{t.host, t.port}, t.transport == "tls", &err);
  check(c != nullptr, "cannot connect to the server at " + t.host + ":" + std::to_string(t.port) +
                          ": " + std::strerror(err));
  return c;
}

class TcpAllocation {
 public:
  /// Connects the control connection and allocates: RFC 6062 section 5.1, REQUESTED-TRANSPORT
  /// TCP; the relayed address must be on 127.0.0.1 (where the test server relays).
  explicit TcpAllocation(const TcpRelayTarget& t)
      : target_(t), control_(dial_server(t)), cred_{t.username, t.password, {}, {}, {}} {
    const Message m =
        control_.request(kAllocate, {{kTransport, Bytes{kProtocolTcp, 0, 0, 0}}}, cred_);
    expect_code(m, 200, "Allocate with REQUESTED-TRANSPORT TCP");
    const auto relayed = m.address(kXorRelayed);
    check(relayed.has_value(), "Allocate success without an IPv4 XOR-RELAYED-ADDRESS");
    relayed_ = *relayed;
    check(relayed_.ip == "127.0.0.1" && relayed_.port != 0,
          "relayed address " + relayed_.text() + " is not on 127.0.0.1");
  }

  const Address& relayed() const { return relayed_; }
  StunConn& control() { return control_; }
  Credentials& credentials() { return cred_; }

  Message connect(const Address& peer) {
    return control_.request(kConnect, {{kXorPeer, xor_address(peer)}}, cred_);
  }
  /// Connect that must succeed: the CONNECTION-ID it names.
  uint32_t connect_ok(const Address& peer) {
    const Message m = connect(peer);
    expect_code(m, 200, "Connect to " + peer.text());
    const auto cid = m.u32(kConnectionId);
    check(cid.has_value(), "Connect success without a CONNECTION-ID");
    return *cid;
  }

  /// ConnectionBind for `cid` on a new connection to the server, signed with `cred` (fresh
  /// credentials learn their realm and nonce on that connection). The response and the
  /// connection, whose `pending` bytes are the first relayed ones.
  std::pair<Message, std::unique_ptr<Conn>> bind(uint32_t cid, Credentials& cred) {
    StunConn data(dial_server(target_));
    const Message m = data.request(kConnectionBind, {{kConnectionId, be32(cid)}}, cred);
    check(data.kept_indications() == 0, "an indication on a data connection");
    return {m, data.release()};
  }
  std::unique_ptr<Conn> bind_ok(uint32_t cid) {
    auto [m, conn] = bind(cid, cred_);
    expect_code(m, 200, "ConnectionBind for connection " + std::to_string(cid));
    return std::move(conn);
  }

  /// Waits for the ConnectionAttempt announcing a peer connection from `peer` (RFC 6062
  /// section 5.3): its CONNECTION-ID.
  uint32_t connection_attempt(const Address& peer) {
    const auto m = control_.indication(kAnswerMs);
    check(m.has_value(), "no ConnectionAttempt within " + std::to_string(kAnswerMs) + " ms");
    check(m->is(kConnectionAttempt, kClassIndication),
          "expected a ConnectionAttempt indication, got " + m->describe());
    const auto cid = m->u32(kConnectionId);
    check(cid.has_value(), "ConnectionAttempt without a CONNECTION-ID");
    const auto from = m->address(kXorPeer);
    check(from.has_value(), "ConnectionAttempt without an IPv4 XOR-PEER-ADDRESS");
    check(*from == peer,
          "ConnectionAttempt names peer " + from->text() + ", the peer is " + peer.text());
    return *cid;
  }

 private:
  TcpRelayTarget target_;
  StunConn control_;
  Credentials cred_;
  Address relayed_;
};

/// Connect to a local listener: the CONNECTION-ID and the peer's end of the connection, which
/// must come from the relayed transport address (RFC 6062 section 5.2: "The local endpoint is
/// the relayed transport address associated with the allocation").
std::pair<uint32_t, std::unique_ptr<Conn>> connect_peer(TcpAllocation& a, Listener& l) {
  const uint32_t cid = a.connect_ok(l.address());
  auto peer = l.accept(kAnswerMs);
  check(peer != nullptr, "the peer listener saw no connection after a successful Connect");
  check(peer->remote() == a.relayed(), "the relay connected from " + peer->remote().text() +
                                           ", not from the relayed address " + a.relayed().text());
  return {cid, std::move(peer)};
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// The cases.

void case_outbound(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  Listener listener;
  auto [cid, peer] = connect_peer(a, listener);

  // RFC 6062 section 5.2: the server "MUST buffer any data received from the peer" until the
  // ConnectionBind, and section 5.4 delivers it first. The pause lets the server read it.
  const Bytes early = pattern(3000, 1);
  write_all(*peer, early);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  say("connection-id " + std::to_string(cid) + " buffered 3000");
  auto data = a.bind_ok(cid);
  Leg first = Leg("client data connection (early bytes)", data.get()).expects(early);
  transfer({&first}, kAnswerMs);

  // Then both directions at once, each larger than what the sockets and the server buffer,
  // so flow control runs in both directions.
  constexpr size_t kEachWay = 1 << 20;
  both_ways(*data, *peer, kEachWay, 2, 10000);
  expect_quiet("client data connection", *data, 100);
  expect_quiet("peer", *peer, 100);
  say("outbound: 3000 early bytes, then " + std::to_string(kEachWay) + " bytes each way");
}

void case_close(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  Listener listener;
  constexpr size_t kTail = 512 * 1024;

  // RFC 6062 section 5.5: "When a peer data connection is closed or times out, the server MUST
  // close the corresponding client data connection"; what the peer sent first still arrives.
  // The client reads late, so those bytes wait in the server when the peer's FIN comes.
  {
    auto [cid, peer] = connect_peer(a, listener);
    auto data = a.bind_ok(cid);
    Leg far = Leg("peer", peer.get()).sends(pattern(kTail, 4)).then_closes();
    Leg client = Leg("client data connection", data.get())
                     .expects(pattern(kTail, 4))
                     .then_eof()
                     .after_ms(300);
    transfer({&far, &client}, 8000);
    say("peer close: client read " + std::to_string(kTail) + " bytes, then EOF");
  }
  // "When a client data connection is closed or times out, the server MUST close the
  // corresponding peer data connection", again after the client's last bytes.
  {
    auto [cid, peer] = connect_peer(a, listener);  // 446 here: the first one was not forgotten
    auto data = a.bind_ok(cid);
    Leg client = Leg("client data connection", data.get()).sends(pattern(kTail, 5)).then_closes();
    Leg far = Leg("peer", peer.get()).expects(pattern(kTail, 5)).then_eof().after_ms(300);
    transfer({&client, &far}, 8000);
    say("client close: peer read " + std::to_string(kTail) + " bytes, then EOF");
  }
  // Neither close ended the allocation, and the second one left no state behind either.
  auto [cid, peer] = connect_peer(a, listener);
  (void)cid;
  expect_code(a.control().request(kRefresh, {}, a.credentials()), 200,
              "Refresh after the data connections closed");
  say("close: allocation alive, Connect to the same peer succeeds again");
}

void case_connect_errors(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  // "If the connection attempt fails or times out, the server MUST return a 447 (Connection
  // Timeout or Failure) error." A bound, non-listening socket refuses at once; the second try
  // shows the failed attempt left nothing behind (a leftover would make it 446).
  const Listener dead(/*listening=*/false);
  for (int i = 0; i < 2; ++i) {
    const auto start = Clock::now();
    expect_code(a.connect(dead.address()), 447, "Connect to a port nothing listens on");
    check(Clock::now() - start < std::chrono::seconds(3), "the 447 took more than 3 s");
  }
  // "If the request does not contain an XOR-PEER-ADDRESS attribute ... 400 (Bad Request)".
  expect_code(a.control().request(kConnect, {}, a.credentials()), 400,
              "Connect without XOR-PEER-ADDRESS");

  // "If the server has already successfully processed a Connect request for this allocation
  // with the same XOR-PEER-ADDRESS, and the resulting client and peer data connections are
  // either pending or active, it MUST return a 446 (Connection Already Exists) error."
  Listener listener;
  auto [cid, peer] = connect_peer(a, listener);
  (void)cid;
  expect_code(a.connect(listener.address()), 446, "a second Connect to the same peer");
  check(listener.accept(kQuietMs) == nullptr, "the refused Connect still opened a connection");

  // Once that (never bound) peer connection closes, the peer address is free again. The
  // server sees the FIN asynchronously, so a 446 right after the close is allowed, for a
  // bounded time only.
  peer->close();
  int refused = 0;
  for (;; ++refused) {
    const Message m = a.connect(listener.address());
    if (m.code() == 200) break;
    expect_code(m, 446, "Connect after the peer connection closed");
    check(refused < 20, "still 446 two seconds after the peer connection closed");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  check(listener.accept(kAnswerMs) != nullptr, "no connection after the third Connect");
  say("connect-errors: 447 twice, 400, 446; free again after " + std::to_string(refused) +
      " early 446");
}

void case_inbound(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  // RFC 6062 section 5.3: "If there is no permission installed for the IP address of the peer,
  // the server MUST immediately close the connection." (The kernel completes the handshake;
  // the close follows.) And nothing may reach the client about it.
  {
    int err = 0;
    auto stranger = Conn::dial(a.relayed(), false, &err);
    check(stranger != nullptr, "a peer could not connect to the relayed address " +
                                   a.relayed().text() + ": " + std::strerror(err));
    expect_closed("peer without a permission", *stranger, 2000, /*reset_ok=*/true);
    check(!a.control().indication(kQuietMs).has_value(),
          "a ConnectionAttempt for a peer without a permission");
  }
  expect_code(
      a.control().request(kCreatePermission, {{kXorPeer, xor_address(Address{"127.0.0.1", 0})}},
                          a.credentials()),
      200, "CreatePermission for 127.0.0.1");

  // Now the peer is announced with a ConnectionAttempt naming its address, and what it sends
  // before the ConnectionBind reaches the client first: here more than the server holds for
  // an unbound connection (64 KiB, README "Transports"), so the rest waits in TCP flow
  // control and must follow once the bind resumes the reads.
  int err = 0;
  auto peer = Conn::dial(a.relayed(), false, &err);
  check(peer != nullptr, std::string("a permitted peer could not connect: ") + std::strerror(err));
  const uint32_t cid = a.connection_attempt(peer->local());
  const Bytes early = pattern(kEarlyInbound, 6);
  const size_t early_sent = write_for(*peer, early, 300);
  check(early_sent > kServerHolds, "the sockets took only " + std::to_string(early_sent) +
                                       " early bytes; the server's 64 KiB would not fill");
  say("connection-id " + std::to_string(cid) + " buffered " + std::to_string(kServerHolds) +
      ", inbound from " + peer->local().text());
  auto data = a.bind_ok(cid);
  constexpr size_t kEachWay = 256 * 1024;
  Bytes to_client = early;
  const Bytes rest = pattern(kEachWay, 7);
  to_client.insert(to_client.end(), rest.begin(), rest.end());
  Bytes from_peer(early.begin() + static_cast<long>(early_sent), early.end());
  from_peer.insert(from_peer.end(), rest.begin(), rest.end());
  Leg client =
      Leg("client data connection", data.get()).sends(pattern(kEachWay, 8)).expects(to_client);
  Leg far = Leg("peer", peer.get()).sends(from_peer).expects(pattern(kEachWay, 8));
  transfer({&client, &far}, 8000);
  check(!a.control().indication(100).has_value(), "a second ConnectionAttempt");
  say("inbound: refused without a permission; with one, " + std::to_string(kEarlyInbound) +
      " early bytes then " + std::to_string(kEachWay) + " bytes each way");
}

void case_bind_errors(const TcpRelayTarget& t) {
  check(!t.other_username.empty(), "bind-errors needs a second USERNAME PASSWORD");
  TcpAllocation a(t);
  Listener listener;
  auto [cid, peer] = connect_peer(a, listener);

  // "If the request does not contain the CONNECTION-ID attribute, or if this attribute does
  // not refer to an existing pending connection, the server MUST return a 400 (Bad Request)".
  {
    auto [m, conn] = a.bind(cid ^ 0x5A5A5A5Au, a.credentials());
    expect_code(m, 400, "ConnectionBind with an unknown CONNECTION-ID");
  }
  // RFC 6062 section 4.4: the same credentials as the control connection. Another user's
  // valid ones are refused (441, as on another user's allocation) without using up the id.
  {
    Credentials other{t.other_username, t.other_password, {}, {}, {}};
    auto [m, conn] = a.bind(cid, other);
    expect_code(m, 441, "ConnectionBind with another user's credentials");
  }
  // The control connection carries the allocation and cannot become a data connection.
  expect_code(a.control().request(kConnectionBind, {{kConnectionId, be32(cid)}}, a.credentials()),
              400, "ConnectionBind on the control connection");

  auto data = a.bind_ok(cid);
  both_ways(*data, *peer, 4096, 9, kAnswerMs);
  // Bound now, so no longer "an existing pending connection".
  {
    auto [m, conn] = a.bind(cid, a.credentials());
    expect_code(m, 400, "a second ConnectionBind for a bound connection");
  }
  // None of the refused binds disturbed the bound pair.
  both_ways(*data, *peer, 100, 11, kAnswerMs);
  say("bind-errors: 400 unknown id, 441 other user, 400 on control, 400 bound twice");
}

void case_control_close(const TcpRelayTarget& t) {
  auto a = std::make_unique<TcpAllocation>(t);
  const Address relayed = a->relayed();
  Listener bound_listener, pending_listener;
  auto [cid, peer] = connect_peer(*a, bound_listener);
  auto data = a->bind_ok(cid);
  both_ways(*data, *peer, 4096, 13, kAnswerMs);
  auto [pending_cid, pending_peer] = connect_peer(*a, pending_listener);
  (void)pending_cid;

  // RFC 6062 section 5.5 / RFC 8656: the allocation lives as long as its control connection;
  // when it ends, every peer and client data connection of it goes too.
  a.reset();
  expect_closed("bound client data connection", *data, 3000, /*reset_ok=*/true);
  expect_closed("bound peer", *peer, 3000, /*reset_ok=*/true);
  expect_closed("peer waiting for its ConnectionBind", *pending_peer, 3000,
                /*reset_ok=*/true);
  // And the relayed address no longer takes connections.
  int err = 0;
  auto late = Conn::dial(relayed, false, &err);
  check(late == nullptr && err == ECONNREFUSED,
        "the relayed address " + relayed.text() + " still accepts connections");
  say("control-close: data connection, its peer, a pending peer closed; relay port closed");
}

void case_udp_allocate(const TcpRelayTarget& t) {
  // RFC 6062 section 5.1: "If the client connection transport is not TCP or TLS, the server
  // MUST reject the request with a 400 (Bad Request) error."
  TurnClient client(t.host, t.port, t.username, t.password);
  check(client.ok(), "no UDP socket");
  const auto code = client.allocate(kProtocolTcp);
  check(code.has_value(), "no answer to Allocate over UDP");
  check(*code == 400, "Allocate TCP over UDP: expected 400, got " + std::to_string(*code));
  say("udp-allocate: 400");
}

}  // namespace

int run_tcp_relay(const std::string& test_case, const TcpRelayTarget& target) {
  // A write to a connection the server closed must fail, not kill the tool.
  std::signal(SIGPIPE, SIG_IGN);
  const bool udp = target.transport == "udp";
  if (!udp && target.transport != "tcp" && target.transport != "tls") return 2;
  if (udp != (test_case == "udp-allocate")) return 2;
  try {
    if (test_case == "outbound") {
      case_outbound(target);
    } else if (test_case == "close") {
      case_close(target);
    } else if (test_case == "connect-errors") {
      case_connect_errors(target);
    } else if (test_case == "inbound") {
      case_inbound(target);
    } else if (test_case == "bind-errors") {
      case_bind_errors(target);
    } else if (test_case == "control-close") {
      case_control_close(target);
    } else if (test_case == "udp-allocate") {
      case_udp_allocate(target);
    } else {
      return 2;
    }
  } catch (const Failure& f) {
    std::fprintf(stderr, "FAIL tcp-relay %s over %s: %s\n", test_case.c_str(),
                 target.transport.c_str(), f.what());
    return 1;
  }
  say("PASS tcp-relay " + test_case + " over " + target.transport);
  return 0;
}

}  // namespace callrelay::integ
