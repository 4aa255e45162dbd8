// How the TLS listener maps frames onto records and which suites it prefers, seen from a raw
// OpenSSL client: frames answered together leave in a record each, all in one TCP segment (with
// tls.records: packed, in one record), and the server's suite order wins (AES-128-GCM first)
// unless the client asks for ChaCha20-Poly1305 first.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "relay/net/socket_ops.hpp"
#include "relay/stun/channel_data.hpp"
#include "tests/streams/stream_fixture.hpp"
#include "tests/streams/tcp_segments.hpp"

namespace callrelay::net {
namespace {

using testing::Bytes;
using testing::StreamServerFixture;
using testing::TestCertificate;

/// A blocking TLS client over one socket with a receive timeout (every wait bounded).
class RawTlsClient {
 public:
  struct Options {
    int version = 0;           ///< 0: TLS 1.2 or 1.3
    const char* suites = "";   ///< TLS 1.3 suites in the client's order; empty: OpenSSL's
    const char* ciphers = "";  ///< TLS 1.2 ciphers in the client's order; empty: OpenSSL's
  };

  RawTlsClient(const stun::Endpoint& server, const Options& o) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    const socklen_t len = write_sockaddr(server, ss);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&ss), len) != 0) return;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{testing::kWaitMs / 1000, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (o.version != 0) {
      SSL_CTX_set_min_proto_version(ctx_, o.version);
      SSL_CTX_set_max_proto_version(ctx_, o.version);
    }
    if (*o.suites != 0) SSL_CTX_set_ciphersuites(ctx_, o.suites);
    if (*o.ciphers != 0) SSL_CTX_set_cipher_list(ctx_, o.ciphers);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = retried([&] { return SSL_connect(ssl_); }) == 1;
  }
  ~RawTlsClient() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  RawTlsClient(const RawTlsClient&) = delete;
  RawTlsClient& operator=(const RawTlsClient&) = delete;

  bool ok() const { return connected_; }

  /// Calls `io` again while OpenSSL says to retry (a signal interrupted the socket call),
  /// within the test's wait; returns its last result.
  template <typename F>
  int retried(F&& io) {
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(testing::kWaitMs);
    int r = io();
    while (r <= 0 && std::chrono::steady_clock::now() < until) {
      const int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) break;
      r = io();
    }
    return r;
  }
  std::string cipher() const { return SSL_get_cipher_name(ssl_); }
  int fd() const { return fd_; }

  /// Each element in a record of its own.
  bool write_records(const std::vector<Bytes>& records) {
    for (const Bytes& r : records) {
      const int n = retried([&] { return SSL_write(ssl_, r.data(), static_cast<int>(r.size())); });
      if (n != static_cast<int>(r.size())) {
        return false;
      }
    }
    return true;
  }
  /// The plaintext of the next record (SSL_read never returns more than one record), empty
  /// on timeout or error.
  Bytes read_record() {
    Bytes buf(65536);
    const int n = retried([&] { return SSL_read(ssl_, buf.data(), static_cast<int>(buf.size())); });
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
};

/// An unauthenticated Binding request (RFC 8489 section 6) with transaction id byte `id`.
Bytes binding_request(uint8_t id) {
  Bytes m = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
  for (int i = 0; i < 12; ++i) m.push_back(id);
  return m;
}

/// The transaction id bytes of the Binding success responses in `bytes`, in order; a frame
/// that is not one ends the list with 0.
std::vector<uint8_t> binding_answers(const Bytes& bytes) {
  std::vector<uint8_t> ids;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto size = stun::stream_frame_size({bytes.data() + pos, bytes.size() - pos});
    if (size.error || size.size == 0 || size.size > bytes.size() - pos) {
      ids.push_back(0);
      break;
    }
    const bool success = bytes[pos] == 0x01 && bytes[pos + 1] == 0x01;
    ids.push_back(success ? bytes[pos + 8] : 0);
    pos += size.size;
  }
  return ids;
}

TEST(StreamTlsRecords, AnswersToOneReadLeaveInARecordEachAndInOneSegment) {
  TestCertificate cert;
  StreamServerFixture f(1, {}, &cert);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    RawTlsClient c(f.tls(), {.version = version});
    ASSERT_TRUE(c.ok());
    // One round trip first: TLS 1.3 session tickets, sent after the handshake, are in by the
    // time its answer is read, so the segments counted below are the answers' alone.
    ASSERT_TRUE(c.write_records({binding_request(9)}));
    ASSERT_EQ(binding_answers(c.read_record()), (std::vector<uint8_t>{9}));
    const auto segments_before = testing::data_segments_in(c.fd());
    // Four requests in one record: the server reads them at once. Its four answers leave in
    // a record each (clients such as coturn's turnutils_uclient read a frame per record and
    // drop a record holding two), in order, and in one send.
    Bytes four;
    for (uint8_t id = 1; id <= 4; ++id) {
      const Bytes r = binding_request(id);
      four.insert(four.end(), r.begin(), r.end());
    }
    ASSERT_TRUE(c.write_records({four}));
    for (uint8_t id = 1; id <= 4; ++id) {
      EXPECT_EQ(binding_answers(c.read_record()), (std::vector<uint8_t>{id}))
          << "TLS version " << std::hex << version;
    }
    const auto segments_after = testing::data_segments_in(c.fd());
    if (segments_before && segments_after) {
      EXPECT_EQ(*segments_after - *segments_before, 1u)
          << "the four records came in more than one segment; TLS version " << std::hex
          << version;
    }
  }
}

TEST(StreamTlsRecords, PackedRecordsCarryTheAnswersToOneReadTogether) {
  TestCertificate cert;
  StreamLimits limits;
  limits.pack_tls_records = true;  // tls.records: packed
  StreamServerFixture f(1, limits, &cert);
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    RawTlsClient c(f.tls(), {.version = version});
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.write_records({binding_request(9)}));
    ASSERT_EQ(binding_answers(c.read_record()), (std::vector<uint8_t>{9}));
    Bytes four;
    for (uint8_t id = 1; id <= 4; ++id) {
      const Bytes r = binding_request(id);
      four.insert(four.end(), r.begin(), r.end());
    }
    ASSERT_TRUE(c.write_records({four}));
    // The four answers, queued by one read's handler, leave in one write: one record, in order.
    EXPECT_EQ(binding_answers(c.read_record()), (std::vector<uint8_t>{1, 2, 3, 4}))
        << "TLS version " << std::hex << version;
  }
}

TEST(StreamTlsRecords, ServerPrefersAes128GcmUnlessTheClientPutsChaChaFirst) {
  TestCertificate cert;  // P-256: the TLS 1.2 suites are the ECDSA ones
  StreamServerFixture f(1, {}, &cert);
  {
    RawTlsClient c(f.tls(), {.version = TLS1_3_VERSION,
                             .suites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"});
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.cipher(), "TLS_AES_128_GCM_SHA256");
  }
  {
    RawTlsClient c(f.tls(),
                   {.version = TLS1_2_VERSION,
                    .ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"});
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.cipher(), "ECDHE-ECDSA-AES128-GCM-SHA256");
  }
  {
    RawTlsClient c(f.tls(), {.version = TLS1_3_VERSION,
                             .suites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"});
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.cipher(), "TLS_CHACHA20_POLY1305_SHA256");
  }
  {  // a client that offers only AES-256-GCM still gets served
    RawTlsClient c(f.tls(), {.version = TLS1_3_VERSION, .suites = "TLS_AES_256_GCM_SHA384"});
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.cipher(), "TLS_AES_256_GCM_SHA384");
  }
}

}  // namespace
}  // namespace callrelay::net
