#include "bench/loadgen/stream_client.hpp"

#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "relay/stun/channel_data.hpp"

namespace callrelay::bench {

namespace {

// Fits the largest frame a stream may carry (STUN: 20 + 65532 bytes, ChannelData: 4 + 65535
// padded) with room to read behind it, so a partial frame never blocks the buffer.
constexpr size_t kInBufferSize = 128 * 1024;

std::string openssl_error(const char* what) {
  char text[256] = "no OpenSSL error queued";
  if (const unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, text, sizeof text);
  return std::string(what) + ": " + text;
}

}  // namespace

TlsClientContext::TlsClientContext() : ctx_(SSL_CTX_new(TLS_client_method())) {
  if (ctx_ == nullptr) throw std::runtime_error(openssl_error("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  // Partial writes let flush() hand the socket what it takes, like send() on TCP; the output
  // buffer may grow (and move) between a blocked SSL_write and its retry.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Without read-ahead OpenSSL reads each record with two read() calls (header, then body);
  // the generator is the bottleneck on 2 cores, so let it read what the socket has at once.
  SSL_CTX_set_read_ahead(ctx_, 1);
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

StreamClient::StreamClient(StreamClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      state_(std::exchange(other.state_, State::kClosed)),
      want_write_(other.want_write_),
      in_(std::move(other.in_)),
      in_len_(other.in_len_),
      out_(std::move(other.out_)),
      out_sent_(other.out_sent_),
      write_buffer_(std::exchange(other.write_buffer_, nullptr)),
      error_(std::move(other.error_)) {}

StreamClient::~StreamClient() { close(); }

bool StreamClient::open(const sockaddr_in& server, SSL_CTX* tls, bool record_per_frame) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return broken(std::string("socket: ") + std::strerror(errno));
  // Browsers and libnice send each TURN frame as it comes; Nagle would hold the window's
  // frames back behind a delayed ACK and turn the saturation run into a 40 ms ping-pong.
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd_, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0 &&
      errno != EINPROGRESS) {
    return broken(std::string("connect: ") + std::strerror(errno));
  }
  if (tls != nullptr) {
    ssl_ = SSL_new(tls);
    if (ssl_ == nullptr) return broken(openssl_error("SSL_new"));
    BIO* socket_bio = BIO_new_socket(fd_, BIO_NOCLOSE);
    if (socket_bio == nullptr) return broken(openssl_error("BIO_new_socket"));
    if (record_per_frame) {
      // OpenSSL writes each record to the socket BIO as it seals it: a buffer in front keeps
      // the records of one flush() for one send, as a browser's TLS socket gathers the records
      // written while its previous send was in flight. The socket BIO serves both directions
      // (one reference for each).
      write_buffer_ = BIO_new(BIO_f_buffer());
      if (write_buffer_ == nullptr || BIO_set_write_buffer_size(write_buffer_, 256 * 1024) != 1) {
        BIO_free(write_buffer_);  // no-op on null
        write_buffer_ = nullptr;
        BIO_free(socket_bio);
        return broken(openssl_error("BIO_f_buffer"));
      }
      BIO_up_ref(socket_bio);
      BIO_push(write_buffer_, socket_bio);
      SSL_set_bio(ssl_, socket_bio, write_buffer_);
    } else {
      SSL_set_bio(ssl_, socket_bio, socket_bio);
    }
    SSL_set_connect_state(ssl_);
  }
  in_.resize(kInBufferSize);
  state_ = State::kConnecting;
  return true;
}

bool StreamClient::progress() {
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return broken(std::string("connect: ") + std::strerror(err));
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      return true;  // still connecting: EPOLLOUT comes when it is done
    }
    state_ = ssl_ != nullptr ? State::kHandshaking : State::kOpen;
  }
  if (state_ == State::kHandshaking) {
    ERR_clear_error();  // SSL_get_error reads the queue: it must hold only this call's errors
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      state_ = State::kOpen;
      want_write_ = false;
      return true;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      return broken(openssl_error("TLS handshake"));
    }
    want_write_ = e == SSL_ERROR_WANT_WRITE;
  }
  return state_ != State::kClosed;
}

void StreamClient::close() {
  if (ssl_ != nullptr) {
    if (state_ == State::kOpen) {
      SSL_shutdown(ssl_);  // one non-blocking try at close_notify
      if (write_buffer_ != nullptr) BIO_flush(write_buffer_);
    }
    SSL_free(ssl_);  // frees the write buffer and the socket BIO with it
    ssl_ = nullptr;
    write_buffer_ = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  state_ = State::kClosed;
}

bool StreamClient::broken(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  state_ = State::kClosed;
  return false;
}

bool StreamClient::flush() {
  if (state_ != State::kOpen) return state_ != State::kClosed;
  while (out_sent_ < out_.size()) {
    const uint8_t* data = out_.data() + out_sent_;
    size_t len = out_.size() - out_sent_;
    if (write_buffer_ != nullptr) {
      // A record per frame: out_ holds whole frames, and a blocked SSL_write is retried with
      // the same frame, so out_sent_ always stands at a frame's start.
      const auto frame = stun::stream_frame_size({data, len});
      if (!frame.error && frame.size > 0 && frame.size <= len) len = frame.size;
    }
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(len, INT32_MAX)));
      if (n <= 0) {
        const int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        return broken(openssl_error("SSL_write"));
      }
      out_sent_ += static_cast<size_t>(n);
    } else {
      const ssize_t n = send(fd_, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return broken(std::string("send: ") + std::strerror(errno));
      }
      out_sent_ += static_cast<size_t>(n);
    }
  }
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
  return send_records();
}

bool StreamClient::records_held() const {
  return write_buffer_ != nullptr && BIO_wpending(write_buffer_) > 0;
}

bool StreamClient::send_records() {
  if (!records_held()) return true;
  if (BIO_flush(write_buffer_) == 1) return true;
  if (BIO_should_retry(write_buffer_)) return true;  // the rest goes when the socket is writable
  return broken(std::string("send: ") + std::strerror(errno));
}

StreamClient::Fill StreamClient::fill() {
  if (state_ != State::kOpen) return state_ == State::kClosed ? Fill::kClosed : Fill::kDrained;
  const size_t room = in_.size() - in_len_;
  if (room == 0) {
    broken("input buffer full without a whole frame");
    return Fill::kClosed;
  }
  uint8_t* into = in_.data() + in_len_;
  if (ssl_ != nullptr) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, into, static_cast<int>(std::min<size_t>(room, INT32_MAX)));
    if (n > 0) {
      in_len_ += static_cast<size_t>(n);
      want_write_ = false;
      // Nothing left in OpenSSL's buffer: whatever else arrived is in the socket, and the
      // level-triggered epoll wakes us for it (saves the read that would say EAGAIN).
      return SSL_has_pending(ssl_) ? Fill::kMore : Fill::kDrained;
    }
    const int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ) return Fill::kDrained;
    if (e == SSL_ERROR_WANT_WRITE) {
      want_write_ = true;
      return Fill::kDrained;
    }
    broken(e == SSL_ERROR_ZERO_RETURN ? "server closed the TLS session"
                                      : openssl_error("SSL_read"));
    return Fill::kClosed;
  }
  const ssize_t n = recv(fd_, into, room, MSG_DONTWAIT);
  if (n > 0) {
    in_len_ += static_cast<size_t>(n);
    return static_cast<size_t>(n) < room ? Fill::kDrained : Fill::kMore;  // short read: empty
  }
  if (n < 0 && errno == EINTR) return Fill::kMore;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Fill::kDrained;
  broken(n == 0 ? "server closed the connection" : std::string("recv: ") + std::strerror(errno));
  return Fill::kClosed;
}

std::string StreamClient::tls_description() const {
  if (ssl_ == nullptr) return "none";
  return std::string(SSL_get_version(ssl_)) + "/" + SSL_get_cipher_name(ssl_);
}

}  // namespace callrelay::bench
