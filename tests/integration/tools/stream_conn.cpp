// Connections of the stream TURN client (see stream_turn_client.hpp): TCP streams to the server,
// plain or TLS, and the peers' listeners on 127.0.0.1 (the test server allows loopback peers).
#include "tests/integration/tools/stream_turn_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "tests/integration/tools/stream_socket_address.hpp"

namespace callrelay::integ {
namespace detail {

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

}  // namespace detail
namespace {

using detail::to_address;
using detail::to_sockaddr;

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

}  // namespace

void check(bool ok, const std::string& what) {
  if (!ok) throw Failure(what);
}

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}
Clock::time_point after_ms(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

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

}  // namespace callrelay::integ
