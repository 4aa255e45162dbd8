// The TURN-over-TCP/TLS client of the RFC 6062 cases (see stream_turn_client.hpp). The
// "peers" are plain sockets of this process on 127.0.0.1 (the test server allows loopback
// peers).
#include "tests/integration/tools/stream_turn_client.hpp"

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
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace callrelay::integ {
namespace {

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

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) { return (uint32_t{get16(p)} << 16) | get16(p + 2); }

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}

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

std::unique_ptr<Conn> dial_server(const TcpRelayTarget& t) {
  int err = 0;
  auto c = Conn::dial(Address{t.host, t.port}, t.transport == "tls", &err);
  check(c != nullptr, "cannot connect to the server at " + t.host + ":" + std::to_string(t.port) +
                          ": " + std::strerror(err));
  return c;
}

}  // namespace

void check(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}
Clock::time_point after_ms(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

Bytes pattern(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sockets.

std::unique_ptr<Conn> Conn::dial(const Address& to, bool tls, int* err) {
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

std::unique_ptr<Conn> Conn::adopt(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<Conn>(new Conn(fd));
}

Address Conn::local() const { return local_of(fd_); }
Address Conn::remote() const { return remote_of(fd_); }

Io Conn::read_some(uint8_t* p, size_t n, size_t& got) {
  got = 0;
  if (!pending.empty()) {
    got = std::min(n, pending.size());
    std::memcpy(p, pending.data(), got);
    pending.erase(pending.begin(), pending.begin() + static_cast<long>(got));
    return Io::kOk;
  }
  return recv_socket(p, n, got);
}

Io Conn::fill() {
  std::array<uint8_t, 16384> buf{};
  size_t got = 0;
  const Io r = recv_socket(buf.data(), buf.size(), got);
  pending.insert(pending.end(), buf.begin(), buf.begin() + static_cast<long>(got));
  return r;
}

Io Conn::write_some(const uint8_t* p, size_t n, size_t& put) {
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

void Conn::close() {
  if (ssl_ != nullptr) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Conn::Conn(int fd) : fd_(fd) {
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void Conn::handshake() {
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

Io Conn::recv_socket(uint8_t* p, size_t n, size_t& got) {
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

Io Conn::ssl_result(int r) {
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

Io Conn::errno_result(int e) {
  if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR) return Io::kWouldBlock;
  if (e == ECONNRESET || e == EPIPE) return Io::kReset;
  return Io::kError;
}

bool wait_for(const Conn& c, short events, Clock::time_point deadline) {
  pollfd p{c.fd(), events, 0};
  return ::poll(&p, 1, ms_left(deadline)) == 1;
}

Listener::Listener(bool listening) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in sa = to_sockaddr(Address{"127.0.0.1", 0});
  check(fd_ >= 0 && ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0,
        std::string("cannot bind a peer socket: ") + std::strerror(errno));
  if (listening) check(::listen(fd_, 16) == 0, "listen failed");
}

Listener::~Listener() { ::close(fd_); }

Address Listener::address() const { return local_of(fd_); }

std::unique_ptr<Conn> Listener::accept(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return nullptr;
  const int fd = ::accept(fd_, nullptr, nullptr);
  check(fd >= 0, std::string("accept: ") + std::strerror(errno));
  return Conn::adopt(fd);
}

// ---------------------------------------------------------------------------------------------
// Byte streams.

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

// ---------------------------------------------------------------------------------------------
// STUN over a stream.

Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes xor_address(const Address& a) {
  const sockaddr_in sa = to_sockaddr(a);
  const uint32_t x_addr = ntohl(sa.sin_addr.s_addr) ^ kCookie;
  const auto x_port = static_cast<uint16_t>(a.port ^ (kCookie >> 16));
  Bytes v{0, 0x01, static_cast<uint8_t>(x_port >> 8), static_cast<uint8_t>(x_port)};
  const Bytes addr = be32(x_addr);
  v.insert(v.end(), addr.begin(), addr.end());
  return v;
}

const Bytes* Message::attr(uint16_t t) const {
  for (const auto& [at, v] : attrs) {
    if (at == t) return &v;
  }
  return nullptr;
}

int Message::code() const {
  if ((type & kClassError) == kClassSuccess) return 200;
  if ((type & kClassError) != kClassError) return -1;
  const Bytes* e = attr(kErrorCode);
  return e != nullptr && e->size() >= 4 ? ((*e)[2] & 0x7) * 100 + (*e)[3] : 0;
}

std::optional<uint32_t> Message::u32(uint16_t t) const {
  const Bytes* v = attr(t);
  if (v == nullptr || v->size() != 4) return std::nullopt;
  return get32(v->data());
}

std::optional<Address> Message::address(uint16_t t) const {
  const Bytes* v = attr(t);
  if (v == nullptr || v->size() != 8 || (*v)[1] != 0x01) return std::nullopt;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(get16(v->data() + 2) ^ (kCookie >> 16)));
  sa.sin_addr.s_addr = htonl(get32(v->data() + 4) ^ kCookie);
  return to_address(sa);
}

std::string Message::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "message type 0x%04x", type);
  const int c = code();
  return std::string(buf) + (c >= 0 ? " (" + std::to_string(c) + ")" : "");
}

Message StunConn::request(uint16_t method, const std::vector<std::pair<uint16_t, Bytes>>& attrs,
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

std::optional<Message> StunConn::indication(int timeout_ms) {
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

Bytes StunConn::start(uint16_t method) {
  Bytes r(kHeader, 0);
  put16(r, 0, method);
  put16(r, 4, static_cast<uint16_t>(kCookie >> 16));
  put16(r, 6, static_cast<uint16_t>(kCookie));
  for (size_t i = 8; i < kHeader; ++i) r[i] = static_cast<uint8_t>(rng_());
  return r;
}

/// USERNAME, REALM, NONCE, then MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to it,
/// with the length field already counting it (RFC 8489 section 14.5).
void StunConn::sign(Bytes& r, const Credentials& cred) {
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
Bytes StunConn::long_term_key(const Credentials& c) {
  const std::string input = c.username + ":" + c.realm + ":" + c.password;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md.data(), &len, EVP_md5(), nullptr);
  return Bytes(md.begin(), md.begin() + len);
}

Message StunConn::exchange(const Bytes& req) {
  write_all(*conn_, req);
  const auto deadline = after_ms(kAnswerMs);
  for (;;) {
    auto m = read_message(*conn_, ms_left(deadline));
    check(m.has_value(), "no answer to a request of type 0x" + hex(get16(req.data())) + " within " +
                             std::to_string(kAnswerMs) + " ms");
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

std::string StunConn::hex(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The TURN side.

void expect_code(const Message& m, int code, const std::string& what) {
  check(m.code() == code, what + ": expected " + std::to_string(code) + ", got " + m.describe());
}

TcpAllocation::TcpAllocation(const TcpRelayTarget& t)
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

Message TcpAllocation::connect(const Address& peer) {
  return control_.request(kConnect, {{kXorPeer, xor_address(peer)}}, cred_);
}

uint32_t TcpAllocation::connect_ok(const Address& peer) {
  const Message m = connect(peer);
  expect_code(m, 200, "Connect to " + peer.text());
  const auto cid = m.u32(kConnectionId);
  check(cid.has_value(), "Connect success without a CONNECTION-ID");
  return *cid;
}

std::pair<Message, std::unique_ptr<Conn>> TcpAllocation::bind(uint32_t cid, Credentials& cred) {
  StunConn data(dial_server(target_));
  const Message m = data.request(kConnectionBind, {{kConnectionId, be32(cid)}}, cred);
  check(data.kept_indications() == 0, "an indication on a data connection");
  return {m, data.release()};
}

std::unique_ptr<Conn> TcpAllocation::bind_ok(uint32_t cid) {
  auto [m, conn] = bind(cid, cred_);
  expect_code(m, 200, "ConnectionBind for connection " + std::to_string(cid));
  return std::move(conn);
}

uint32_t TcpAllocation::connection_attempt(const Address& peer) {
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

std::pair<uint32_t, std::unique_ptr<Conn>> connect_peer(TcpAllocation& a, Listener& l) {
  const uint32_t cid = a.connect_ok(l.address());
  auto peer = l.accept(kAnswerMs);
  check(peer != nullptr, "the peer listener saw no connection after a successful Connect");
  check(peer->remote() == a.relayed(), "the relay connected from " + peer->remote().text() +
                                           ", not from the relayed address " + a.relayed().text());
  return {cid, std::move(peer)};
}

}  // namespace callrelay::integ
