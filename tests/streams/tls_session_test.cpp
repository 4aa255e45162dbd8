// TlsSession without sockets: an OpenSSL client on memory BIOs talks to the server session, the
// test moving the ciphertext between them (whole, byte by byte, or cut mid-record).
#include "relay/net/tls_session.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "relay/net/stream_service.hpp"
#include "tests/streams/stream_client.hpp"

namespace callrelay::net {
namespace {

using Bytes = std::vector<uint8_t>;
using Status = TlsSession::Status;

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }
/// The first `n` bytes of `b`: what a read of `n` bytes into it returned.
Bytes head(const Bytes& b, size_t n) {
  return Bytes(b.begin(), b.begin() + static_cast<ptrdiff_t>(n));
}

/// A TLS client on two memory BIOs (what it sends accumulates in `out`, what it reads comes
/// from `in`).
class MemoryClient {
 public:
  explicit MemoryClient(int version = 0) : ctx_(SSL_CTX_new(TLS_client_method())) {
    if (version != 0) {
      SSL_CTX_set_min_proto_version(ctx_, version);
      SSL_CTX_set_max_proto_version(ctx_, version);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~MemoryClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  MemoryClient(const MemoryClient&) = delete;
  MemoryClient& operator=(const MemoryClient&) = delete;

  /// Drives the handshake one step; true once done.
  bool step() {
    ERR_clear_error();
    return SSL_do_handshake(ssl_) == 1;
  }
  /// Everything the client has written so far (and forgets it).
  Bytes take_sent() {
    Bytes b(static_cast<size_t>(BIO_ctrl_pending(out_)));
    if (!b.empty()) BIO_read(out_, b.data(), static_cast<int>(b.size()));
    return b;
  }
  void receive(std::span<const uint8_t> ciphertext) {
    if (!ciphertext.empty()) BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
  }
  /// One record's plaintext (SSL_read returns at most one), empty when none is complete.
  Bytes read_record() {
    Bytes b(20000);
    ERR_clear_error();
    const int n = SSL_read(ssl_, b.data(), static_cast<int>(b.size()));
    b.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return b;
  }
  /// Writes `plain` as one record.
  void write(const Bytes& plain) {
    ASSERT_EQ(SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())),
              static_cast<int>(plain.size()));
  }
  void close() { SSL_shutdown(ssl_); }
  /// TLS 1.3: new sending keys, and asks the server to change its own (RFC 8446 section 4.6.3).
  bool request_key_update() { return SSL_key_update(ssl_, SSL_KEY_UPDATE_REQUESTED) == 1; }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

/// Feeds `bytes` to the session through input_space(); false if they do not fit.
bool feed(TlsSession& s, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const std::span<uint8_t> space = s.input_space();
    if (space.empty()) return false;
    const size_t n = std::min(space.size(), bytes.size());
    std::copy_n(bytes.begin(), n, space.begin());
    s.input_added(n);
    bytes = bytes.subspan(n);
    if (!bytes.empty()) {
      // The session must take this input in before more can come: one byte of plaintext at a
      // time keeps any decrypted record inside it.
      Bytes sink(1 << 16);
      size_t got = 0;
      if (s.read(sink, got, true) == Status::kError) return false;
      if (got != 0) return false;  // the tests feed records whole before reading them
    }
  }
  return true;
}

/// Sends the session's output to the client and marks it sent.
void deliver(TlsSession& s, MemoryClient& c) {
  if (!s.has_output()) return;
  c.receive(s.take_output());
  s.output_sent();
}

/// Runs the handshake to completion.
void connect(TlsSession& s, MemoryClient& c) {
  for (int i = 0; i < 10; ++i) {
    const bool client_done = c.step();
    ASSERT_TRUE(feed(s, c.take_sent()));
    const Status st = s.handshake();
    ASSERT_NE(st, Status::kError) << s.error();
    deliver(s, c);
    if (client_done && st == Status::kOk) return;
  }
  FAIL() << "handshake did not finish";
}

class TlsSessionTest : public ::testing::Test {
 protected:
  TlsSessionTest() : ctx_(make_tls_context({cert_.cert_file, cert_.key_file, "1.2"})) {}
  SSL_CTX* ctx() { return ctx_->native_handle(); }
  testing::TestCertificate cert_;
  std::shared_ptr<asio::ssl::context> ctx_;
};

TEST_F(TlsSessionTest, EachWriteIsARecordAndAllLeaveInOneOutput) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    TlsSession s(ctx());
    MemoryClient c(version);
    connect(s, c);
    ASSERT_TRUE(s.handshake_done());
    ASSERT_TRUE(s.write(text("first")));
    ASSERT_TRUE(s.write(text("second")));
    ASSERT_TRUE(s.has_output());
    deliver(s, c);
    EXPECT_EQ(c.read_record(), text("first"));
    EXPECT_EQ(c.read_record(), text("second"));
    EXPECT_TRUE(c.read_record().empty());
    // More than a record's worth is cut into records of at most 16 KiB.
    const Bytes big(40000, 0x5A);
    ASSERT_TRUE(s.write(big));
    deliver(s, c);
    Bytes got;
    for (Bytes r = c.read_record(); !r.empty(); r = c.read_record()) {
      EXPECT_LE(r.size(), 16384u);
      got.insert(got.end(), r.begin(), r.end());
    }
    EXPECT_EQ(got, big);
  }
}

TEST_F(TlsSessionTest, ReadsOneRecordOrEveryRecordReceived) {
  TlsSession s(ctx());
  MemoryClient c;
  connect(s, c);
  c.write(text("aa"));
  c.write(text("bbb"));
  c.write(text("cccc"));
  ASSERT_TRUE(feed(s, c.take_sent()));
  Bytes out(64);
  size_t n = 0;
  ASSERT_EQ(s.read(out, n, false), Status::kOk);
  EXPECT_EQ(head(out, n), text("aa"));
  ASSERT_EQ(s.read(out, n, true), Status::kOk);
  EXPECT_EQ(head(out, n), text("bbbcccc"));
  EXPECT_EQ(s.read(out, n, true), Status::kWantRead);
  EXPECT_EQ(n, 0u);
  // A small room takes part of a record; the rest comes with the next read.
  c.write(text("0123456789"));
  ASSERT_TRUE(feed(s, c.take_sent()));
  ASSERT_EQ(s.read(std::span<uint8_t>(out).first(4), n, true), Status::kOk);
  EXPECT_EQ(head(out, 4), text("0123"));
  ASSERT_EQ(s.read(out, n, true), Status::kOk);
  EXPECT_EQ(head(out, n), text("456789"));
}

TEST_F(TlsSessionTest, RecordsArrivingAByteAtATime) {
  TlsSession s(ctx());
  MemoryClient c;
  connect(s, c);
  c.write(text("trickled"));
  const Bytes wire = c.take_sent();
  Bytes out(64);
  size_t n = 0;
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    const std::span<uint8_t> space = s.input_space();
    ASSERT_FALSE(space.empty());
    space[0] = wire[i];
    s.input_added(1);
    ASSERT_EQ(s.read(out, n, true), Status::kWantRead) << "byte " << i;
    // Every byte was taken in: the next can be read from the socket.
    EXPECT_EQ(s.input_buffered(), 0u);
  }
  s.input_space()[0] = wire.back();
  s.input_added(1);
  ASSERT_EQ(s.read(out, n, true), Status::kOk);
  EXPECT_EQ(head(out, n), text("trickled"));
}

TEST_F(TlsSessionTest, AReleasedSessionGoesOnWithAHalfReceivedRecord) {
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    auto first = std::make_unique<TlsSession>(ctx());
    MemoryClient c(version);
    connect(*first, c);
    c.write(text("before"));
    c.write(text("straddling"));
    const Bytes wire = c.take_sent();
    const size_t cut = wire.size() - 7;  // the second record's last 7 bytes come later
    ASSERT_TRUE(feed(*first, std::span<const uint8_t>(wire).first(cut)));
    Bytes out(64);
    size_t n = 0;
    ASSERT_EQ(first->read(out, n, true), Status::kOk);
    EXPECT_EQ(head(out, n), text("before"));
    ASSERT_EQ(first->read(out, n, true), Status::kWantRead);
    SSL* ssl = first->release();
    first.reset();  // the old session (and its BIO) is gone before the new one reads
    TlsSession second(ssl);
    ASSERT_TRUE(feed(second, std::span<const uint8_t>(wire).subspan(cut)));
    ASSERT_EQ(second.read(out, n, true), Status::kOk) << second.error();
    EXPECT_EQ(head(out, n), text("straddling"));
    ASSERT_TRUE(second.write(text("answer")));
    deliver(second, c);
    EXPECT_EQ(c.read_record(), text("answer"));
  }
}

TEST_F(TlsSessionTest, FreesItsBuffersOnlyWhenIdleAndWorksAfterwards) {
  TlsSession s(ctx());
  MemoryClient c;
  EXPECT_FALSE(s.free_buffers());  // mid-handshake
  connect(s, c);
  ASSERT_TRUE(s.write(text("queued")));
  EXPECT_FALSE(s.free_buffers());  // records not yet sent
  const std::span<const uint8_t> out = s.take_output();
  EXPECT_FALSE(s.free_buffers());  // records being sent
  c.receive(out);
  s.output_sent();
  EXPECT_EQ(c.read_record(), text("queued"));
  EXPECT_TRUE(s.free_buffers());
  for (int round = 0; round < 2; ++round) {
    c.write(text("ping"));
    ASSERT_TRUE(feed(s, c.take_sent()));
    Bytes plain(64);
    size_t n = 0;
    ASSERT_EQ(s.read(plain, n, true), Status::kOk);
    EXPECT_EQ(head(plain, n), text("ping"));
    ASSERT_TRUE(s.write(text("pong")));
    deliver(s, c);
    EXPECT_EQ(c.read_record(), text("pong"));
    EXPECT_TRUE(s.free_buffers());
  }
}

TEST_F(TlsSessionTest, GoesOnThroughAKeyUpdateTheClientAsksFor) {
  TlsSession s(ctx());
  MemoryClient c(TLS1_3_VERSION);
  connect(s, c);
  ASSERT_TRUE(c.request_key_update());
  c.write(text("after the update"));  // the KeyUpdate goes out before this record
  ASSERT_TRUE(feed(s, c.take_sent()));
  Bytes out(64);
  size_t n = 0;
  ASSERT_EQ(s.read(out, n, true), Status::kOk) << s.error();
  EXPECT_EQ(head(out, n), text("after the update"));
  // OpenSSL answers with a KeyUpdate of its own ahead of the server's next record: the client
  // reads that record with the server's new keys, in both rounds.
  for (const char* msg : {"with new keys", "and again"}) {
    ASSERT_TRUE(s.write(text(msg)));
    deliver(s, c);
    EXPECT_EQ(c.read_record(), text(msg));
  }
  c.write(text("client still heard"));
  ASSERT_TRUE(feed(s, c.take_sent()));
  ASSERT_EQ(s.read(out, n, true), Status::kOk) << s.error();
  EXPECT_EQ(head(out, n), text("client still heard"));
}

TEST_F(TlsSessionTest, CloseNotifyAndGarbageAreToldApart) {
  {
    TlsSession s(ctx());
    MemoryClient c;
    connect(s, c);
    c.write(text("last"));
    c.close();
    ASSERT_TRUE(feed(s, c.take_sent()));
    Bytes out(64);
    size_t n = 0;
    ASSERT_EQ(s.read(out, n, true), Status::kOk);  // the data before the alert comes first
    EXPECT_EQ(head(out, n), text("last"));
    EXPECT_EQ(s.read(out, n, true), Status::kClosed);
  }
  {
    TlsSession s(ctx());
    MemoryClient c;
    connect(s, c);
    Bytes forged = {0x17, 0x03, 0x03, 0x00, 0x20};  // an application-data record...
    forged.resize(forged.size() + 0x20, 0xEE);      // ...that does not decrypt
    ASSERT_TRUE(feed(s, forged));
    Bytes out(64);
    size_t n = 0;
    EXPECT_EQ(s.read(out, n, true), Status::kError);
    EXPECT_FALSE(s.error().empty());
  }
  {
    TlsSession s(ctx());
    const Bytes not_tls = text("GET / HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(feed(s, not_tls));
    EXPECT_EQ(s.handshake(), Status::kError);
    EXPECT_FALSE(s.error().empty());
  }
}

}  // namespace
}  // namespace callrelay::net
