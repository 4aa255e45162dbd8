#include "tests/streams/stream_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "relay/net/socket_ops.hpp"
#include "relay/stun/integrity.hpp"
#include "tests/streams/self_signed.hpp"

namespace callrelay::net::testing {
namespace {

int connect_to(const stun::Endpoint& server, std::string& error) {
  const int fd = ::socket(server.is_v4() ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  sockaddr_storage ss{};
  const socklen_t len = write_sockaddr(server, ss);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    error = "connect to " + server.to_string() + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int64_t mono_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

bool wait_readable(int fd, int timeout_ms) {
  const int64_t deadline = mono_ms() + std::max(timeout_ms, 0);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(deadline - mono_ms(), 0)));
    if (n >= 0 || errno != EINTR) return n > 0;  // a signal: wait out the rest
  }
}

/// Calls `io` (an SSL_* call when `ssl`, else a socket call) again while it failed only because
/// a signal interrupted its syscall, and returns its last result. A socket with SO_RCVTIMEO set
/// is never restarted after a signal handler ran, whatever SA_RESTART says (signal(7)); OpenSSL
/// then reports WANT_READ/WANT_WRITE and the same call is to be repeated.
template <typename F>
int retry_interrupted(SSL* ssl, F&& io) {
  int rc = 0;
  for (int tries = 0; tries < 100; ++tries) {
    ERR_clear_error();
    errno = 0;
    rc = io();
    const int err = errno;
    if (rc > 0) break;
    const bool again =
        ssl == nullptr ? rc < 0
                       : SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ ||
                             SSL_get_error(ssl, rc) == SSL_ERROR_WANT_WRITE;
    if (!again || err != EINTR) break;
  }
  return rc;
}

}  // namespace

StreamClient::StreamClient(const stun::Endpoint& server) : fd_(connect_to(server, error_)) {}

StreamClient::StreamClient(const stun::Endpoint& server, const TlsOptions& tls)
    : fd_(connect_to(server, error_)), tls_(true) {
  if (fd_ < 0) return;
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (tls.min_version) SSL_CTX_set_min_proto_version(ctx_, tls.min_version);
  if (tls.max_version) SSL_CTX_set_max_proto_version(ctx_, tls.max_version);
  // Old versions need the lowest security level on Debian's OpenSSL; the server must refuse.
  if (tls.max_version && tls.max_version < TLS1_2_VERSION) {
    SSL_CTX_set_security_level(ctx_, 0);
    SSL_CTX_set_cipher_list(ctx_, "DEFAULT@SECLEVEL=0");
  }
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd_);
  SSL_set_tlsext_host_name(ssl, tls.sni.c_str());
  timeval tv{kWaitMs / 1000, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const int rc = retry_interrupted(ssl, [&] { return SSL_connect(ssl); });
  if (rc == 1) {
    ssl_ = ssl;
  } else {
    const int saved_errno = errno;
    const int why = SSL_get_error(ssl, rc);
    const unsigned long queued = ERR_peek_last_error();
    char reason[256] = "";
    if (queued != 0) ERR_error_string_n(queued, reason, sizeof reason);
    error_ = "TLS handshake with " + server.to_string() + " failed: SSL_get_error " +
             std::to_string(why) + (reason[0] ? std::string(", ") + reason : std::string()) +
             (saved_errno ? std::string(", errno: ") + std::strerror(saved_errno) : std::string());
    SSL_free(ssl);
  }
}

StreamClient::~StreamClient() { close(); }

void StreamClient::close() {
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  if (ctx_) SSL_CTX_free(ctx_);
  ctx_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string StreamClient::tls_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

stun::Endpoint StreamClient::local() const {
  const auto ep = local_endpoint(fd_);
  return ep ? *ep : stun::Endpoint{};
}

bool StreamClient::send_all(std::span<const uint8_t> data) {
  if (!ok()) return false;
  size_t off = 0;
  while (off < data.size()) {
    const int n = retry_interrupted(ssl_, [&] {
      return ssl_ ? SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off))
                  : static_cast<int>(
                        ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL));
    });
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void StreamClient::cork(bool on) {
  const int v = on ? 1 : 0;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &v, sizeof v);
}

bool StreamClient::fill(int timeout_ms) {
  if (!ok() || closed_) return false;
  if (!(ssl_ && SSL_pending(ssl_) > 0) && !wait_readable(fd_, timeout_ms)) return false;
  uint8_t tmp[16384];
  const int n = retry_interrupted(ssl_, [&] {
    return ssl_ ? SSL_read(ssl_, tmp, sizeof tmp)
                : static_cast<int>(::recv(fd_, tmp, sizeof tmp, 0));
  });
  if (n <= 0) {
    closed_ = true;  // orderly close, reset or TLS alert: the server ended the connection
    return false;
  }
  buf_.insert(buf_.end(), tmp, tmp + n);
  return true;
}

std::optional<Bytes> StreamClient::read_frame(int timeout_ms) {
  const int64_t deadline = mono_ms() + timeout_ms;
  for (;;) {
    if (buf_.size() >= 4) {
      const size_t len = static_cast<size_t>(buf_[2]) << 8 | buf_[3];
      size_t size = 0;
      if ((buf_[0] & 0xC0) == 0)
        size = 20 + len;
      else if ((buf_[0] & 0xC0) == 0x40)
        size = (4 + len + 3) & ~size_t{3};
      else
        return std::nullopt;  // the server sent garbage
      if (buf_.size() >= size) {
        Bytes frame(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(size));
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(size));
        return frame;
      }
    }
    if (!fill(static_cast<int>(deadline - mono_ms()))) return std::nullopt;
  }
}

bool StreamClient::closed_by_server(int timeout_ms) {
  const int64_t deadline = mono_ms() + timeout_ms;
  while (!closed_ && mono_ms() < deadline) {
    if (fill(static_cast<int>(deadline - mono_ms()))) buf_.clear();
  }
  return closed_;
}

void StreamClient::set_credentials(std::string username, std::string password, std::string realm) {
  username_ = std::move(username);
  password_ = std::move(password);
  realm_ = std::move(realm);
}

Bytes StreamClient::build(stun::Method m, stun::Class c, const Attrs& attrs, bool sign) {
  ++counter_;
  std::memcpy(tid_.data(), &counter_, sizeof(counter_));
  tid_[11] = static_cast<uint8_t>(fd_);
  Bytes out(2048);
  stun::MessageBuilder b(out, m, c, tid_);
  if (attrs) attrs(b);
  if (sign && !nonce_.empty()) {
    b.add_string(stun::attr::kUsername, username_);
    b.add_string(stun::attr::kRealm, realm_);
    b.add_string(stun::attr::kNonce, nonce_);
    b.add_integrity(stun::long_term_key(username_, realm_, password_));
  }
  b.add_fingerprint();
  out.resize(b.finish());
  return out;
}

std::optional<Response> StreamClient::request(stun::Method m, const Attrs& attrs, bool sign) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const Bytes req = build(m, stun::Class::kRequest, attrs, sign);
    const stun::TransactionId tid = tid_;
    if (!send_all(req)) return std::nullopt;
    std::optional<Response> r;
    while (!r) {
      auto raw = read_frame();
      if (!raw) return std::nullopt;
      Response got{std::move(*raw), std::nullopt};
      got.msg = stun::MessageView::parse(got.raw);
      if (got.msg && got.msg->transaction_id() == tid) r = std::move(got);
    }
    if (!r->msg) return r;
    const uint16_t code = r->error_code();
    if (!sign || (code != 401 && code != 438) || attempt == 1) return r;
    const auto nonce = r->msg->string(stun::attr::kNonce);
    if (!nonce) return r;
    nonce_ = std::string(*nonce);
  }
  return std::nullopt;
}

std::optional<stun::Endpoint> StreamClient::allocate() {
  const auto r = request(stun::Method::kAllocate,
                         [](stun::MessageBuilder& b) { b.add_requested_transport(17); });
  if (!r || !r->msg || r->error_code() != 0) return std::nullopt;
  return r->msg->xor_address(stun::attr::kXorRelayedAddress);
}

TestCertificate::TestCertificate() {
  char tmpl[] = "/tmp/callrelay-streams-XXXXXX";
  dir = ::mkdtemp(tmpl);
  cert_file = dir + "/cert.pem";
  key_file = dir + "/key.pem";
  const SelfSigned made = make_self_signed();
  FILE* f = std::fopen(cert_file.c_str(), "w");
  PEM_write_X509(f, made.cert.get());
  std::fclose(f);
  f = std::fopen(key_file.c_str(), "w");
  PEM_write_PrivateKey(f, made.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

TestCertificate::~TestCertificate() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace callrelay::net::testing
