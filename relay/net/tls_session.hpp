// The server side of one TLS session, without I/O: ciphertext read from the socket goes in with
// input_space()/input_added(), plaintext comes out of read(); plaintext goes in with write() and
// the records it makes come out of take_output() for the socket. OpenSSL does the protocol and
// the record protection; the session is its BIO, so that ciphertext is copied once between the
// socket's buffers and OpenSSL's record buffers (a BIO pair, as Asio's stream uses, copies it
// twice more), and so that one connection can write any number of records and send them in one
// send. Thread: one at a time (its connection's worker; a hand-over moves the SSL object).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace callrelay::net {

class TlsSession {
 public:
  /// A new server session of `ctx`, expecting a ClientHello.
  explicit TlsSession(SSL_CTX* ctx);
  /// An established session handed over from another TlsSession (release()); takes the one
  /// reference `ssl` carries. Plaintext and partial records it already holds are kept.
  explicit TlsSession(SSL* ssl);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  /// One socket read's worth of ciphertext (input_space()): a whole record of the largest size
  /// (RFC 8446 section 5.2: 2^14 bytes of plaintext plus at most 256 of expansion, plus the
  /// 5-byte header) fits. Its plaintext is never larger.
  static constexpr size_t kInputBytes = 16384 + 256 + 5;

  enum class Status {
    kOk,        ///< done (handshake) or bytes returned (read)
    kWantRead,  ///< needs more ciphertext: read the socket into input_space()
    kClosed,    ///< the client sent close_notify
    kError,     ///< a protocol or decryption error: error() says which; close the connection
  };

  /// Empties the thread's OpenSSL error queue, which must be empty when a handshake(), read()
  /// or write() fails for its status to be told right (SSL_get_error). A failure empties it
  /// again; other code on the thread may not, so call this once before each batch of calls
  /// (per socket read and per write, not per record: it costs a thread-local lookup).
  static void clear_errors();

  /// Advances the handshake with the input given so far. Output to send may appear either way.
  Status handshake();
  bool handshake_done() const;

  /// Decrypts into `out`: with `all`, every complete record already received that fits,
  /// otherwise at most one record's worth (SSL_read). kOk with `n` bytes; kWantRead when
  /// nothing is buffered (n is 0). Records may also leave output (a KeyUpdate's answer).
  Status read(std::span<uint8_t> out, size_t& n, bool all);

  /// Encrypts `bytes` into records (up to 16 KiB each) appended to the output; false on error
  /// (error() says why; the session is then unusable).
  bool write(std::span<const uint8_t> bytes);

  /// Where to read ciphertext from the socket; empty while unconsumed input is buffered (every
  /// read returns kWantRead only once all input was taken in).
  std::span<uint8_t> input_space();
  /// `n` bytes were read into input_space().
  void input_added(size_t n);
  /// Ciphertext taken in but not yet passed to OpenSSL.
  size_t input_buffered() const { return in_end_ - in_pos_; }

  /// Whether records wait to be sent that take_output() has not handed out.
  bool has_output() const { return !out_.empty(); }
  /// Hands out every record made so far (valid until output_sent()); new records go to a
  /// second buffer meanwhile. Requires !sending().
  std::span<const uint8_t> take_output();
  /// The bytes of take_output() were sent (or dropped with the connection).
  void output_sent();
  bool sending() const { return sending_; }

  /// Frees OpenSSL's record buffers (about 34 KiB) and this session's output buffers while
  /// the connection is idle; they come back on the next read or write. The input buffer stays
  /// (a socket read is pending into it). False, nothing freed, when they hold data
  /// (mid-handshake, records being sent, input buffered).
  bool free_buffers();

  /// Moves the established session out for another TlsSession(SSL*): the caller owns the
  /// returned reference. Requires no buffered input or output; this session is unusable after.
  SSL* release();

  /// OpenSSL's reason for the last kError or failed write.
  const std::string& error() const { return error_; }
  SSL* native_handle() const { return ssl_; }

 private:
  static BIO_METHOD* bio_method();
  static int bio_read(BIO* bio, char* buf, int len);
  static int bio_write(BIO* bio, const char* buf, int len);
  static long bio_ctrl(BIO* bio, int cmd, long num, void* ptr);
  void attach();
  Status fail(int ret);

  SSL* ssl_ = nullptr;
  std::vector<uint8_t> in_;  ///< ciphertext read from the socket, [in_pos_, in_end_) not taken
  size_t in_pos_ = 0, in_end_ = 0;
  std::vector<uint8_t> out_;          ///< records not yet handed out
  std::vector<uint8_t> sending_buf_;  ///< records handed out by take_output()
  bool sending_ = false;
  std::string error_;
};

}  // namespace callrelay::net
