#include "relay/net/tls_session.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace callrelay::net {

namespace {

/// OpenSSL's first queued reason after `what`; empties the thread's error queue, as the next
/// SSL call on this thread requires (SSL_get_error reads it).
std::string openssl_error(const char* what) {
  std::string s = what;
  const unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s += ": ";
    s += buf;
  }
  ERR_clear_error();
  return s;
}

}  // namespace

BIO_METHOD* TlsSession::bio_method() {
  // The BIO that joins OpenSSL to a session: reads take ciphertext from its input, writes
  // append records to its output and never block. One method table for the process.
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "callrelay-tls");
    if (m == nullptr || BIO_meth_set_read(m, &TlsSession::bio_read) != 1 ||
        BIO_meth_set_write(m, &TlsSession::bio_write) != 1 ||
        BIO_meth_set_ctrl(m, &TlsSession::bio_ctrl) != 1 ||
        BIO_meth_set_create(m, [](BIO* b) {
          BIO_set_init(b, 1);
          return 1;
        }) != 1) {
      throw std::runtime_error("tls: cannot create the session BIO method");
    }
    return m;
  }();
  return method;
}

int TlsSession::bio_read(BIO* bio, char* buf, int len) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  const size_t have = self->in_end_ - self->in_pos_;
  if (have == 0 || len <= 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  const size_t n = std::min(have, static_cast<size_t>(len));
  std::memcpy(buf, self->in_.data() + self->in_pos_, n);
  self->in_pos_ += n;
  if (self->in_pos_ == self->in_end_) self->in_pos_ = self->in_end_ = 0;
  return static_cast<int>(n);
}

int TlsSession::bio_write(BIO* bio, const char* buf, int len) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  const auto* p = reinterpret_cast<const uint8_t*>(buf);
  self->out_.insert(self->out_.end(), p, p + len);
  return len;
}

long TlsSession::bio_ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // the connection sends the output; nothing is held back here
    case BIO_CTRL_PENDING:
      return self == nullptr ? 0 : static_cast<long>(self->in_end_ - self->in_pos_);
    case BIO_CTRL_WPENDING:
      return self == nullptr ? 0 : static_cast<long>(self->out_.size());
    default:
      return 0;  // not supported (no kernel TLS, no datagram controls)
  }
}

TlsSession::TlsSession(SSL_CTX* ctx) : ssl_(SSL_new(ctx)) {
  if (ssl_ == nullptr) throw std::runtime_error(openssl_error("tls: cannot create a session"));
  SSL_set_accept_state(ssl_);
  attach();
}

TlsSession::TlsSession(SSL* ssl) : ssl_(ssl) { attach(); }

void TlsSession::attach() {
  BIO* bio = BIO_new(bio_method());
  if (bio == nullptr) {
    SSL_free(ssl_);
    throw std::runtime_error(openssl_error("tls: cannot create a session BIO"));
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by the session from here
  // A session keeps its record buffers while it relays (free_buffers() returns them when
  // idle): OpenSSL's SSL_MODE_RELEASE_BUFFERS would free and allocate about 34 KiB around every
  // record. Writes never block, so SSL_write always takes everything it is given.
  SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE);
  // One BIO read takes whatever ciphertext is buffered, instead of a header and then a body.
  SSL_set_read_ahead(ssl_, 1);
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

TlsSession::Status TlsSession::fail(int ret) {
  // SSL_get_error looks at the thread's error queue first, so callers empty it before a batch
  // of calls (clear_errors()); running out of input adds nothing to it.
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Status::kWantRead;
    case SSL_ERROR_ZERO_RETURN:
      ERR_clear_error();
      return Status::kClosed;
    default:
      error_ = openssl_error(err == SSL_ERROR_SSL ? "tls" : "tls: unexpected state");
      return Status::kError;
  }
}

void TlsSession::clear_errors() { ERR_clear_error(); }

TlsSession::Status TlsSession::handshake() {
  const int r = SSL_do_handshake(ssl_);
  return r == 1 ? Status::kOk : fail(r);
}

bool TlsSession::handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }

TlsSession::Status TlsSession::read(std::span<uint8_t> out, size_t& n, bool all) {
  n = 0;
  while (n < out.size()) {
    size_t got = 0;
    const int r = SSL_read_ex(ssl_, out.data() + n, out.size() - n, &got);
    if (r != 1) {
      const Status s = fail(r);
      // Plaintext already taken is returned first; a close or an error shows again on the next
      // read (OpenSSL keeps the session's state).
      return n > 0 ? Status::kOk : s;
    }
    n += got;
    if (!all) break;
  }
  return Status::kOk;
}

bool TlsSession::write(std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    size_t wrote = 0;
    const int r = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &wrote);
    if (r != 1) {
      error_ = openssl_error("tls write");
      return false;
    }
    bytes = bytes.subspan(wrote);
  }
  return true;
}

std::span<uint8_t> TlsSession::input_space() {
  if (in_end_ != in_pos_) return {};
  if (in_.size() < kInputBytes) in_.resize(kInputBytes);
  in_pos_ = in_end_ = 0;
  return {in_.data(), in_.size()};
}

void TlsSession::input_added(size_t n) { in_end_ = std::min(n, in_.size()); }

std::span<const uint8_t> TlsSession::take_output() {
  sending_ = true;
  std::swap(out_, sending_buf_);
  out_.clear();
  return {sending_buf_.data(), sending_buf_.size()};
}

void TlsSession::output_sent() {
  sending_ = false;
  sending_buf_.clear();
}

bool TlsSession::free_buffers() {
  if (!handshake_done() || sending_ || !out_.empty() || in_end_ != in_pos_) return false;
  // SSL_free_buffers refuses while a record is half read or half written.
  if (SSL_free_buffers(ssl_) != 1) return false;
  // The input buffer stays: the connection always has a socket read pending into it.
  std::vector<uint8_t>().swap(out_);
  std::vector<uint8_t>().swap(sending_buf_);
  return true;
}

SSL* TlsSession::release() {
  // The BIO points at this object: the adopting session gives the SSL object a BIO of its own.
  SSL_set_bio(ssl_, nullptr, nullptr);
  return std::exchange(ssl_, nullptr);
}

}  // namespace callrelay::net
