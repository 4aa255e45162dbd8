// A blocking TURN client over TCP or TLS for tests: every wait has a deadline (no sleeps), so
// a missing answer fails the test instead of hanging it.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "relay/stun/builder.hpp"
#include "relay/stun/endpoint.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::net::testing {

using Bytes = std::vector<uint8_t>;

/// One client connection. TLS: no certificate verification (the tests' certificate is
/// self-signed), `sni` sent, versions limited to [min_version, max_version] (0: library
/// default).
class StreamClient {
 public:
  struct TlsOptions {
    std::string sni = "localhost";
    int min_version = 0;
    int max_version = 0;
  };
  /// Plain TCP.
  explicit StreamClient(const stun::Endpoint& server);
  /// TLS.
  StreamClient(const stun::Endpoint& server, const TlsOptions& tls);
  ~StreamClient();
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  /// Connected (and for TLS, handshake done).
  bool ok() const { return fd_ >= 0 && (!tls_ || ssl_ != nullptr); }
  /// Why the connection or the handshake failed, for a test's failure message.
  const std::string& error() const { return error_; }
  /// The negotiated TLS version ("TLSv1.3"), empty for TCP.
  std::string tls_version() const;
  stun::Endpoint local() const;

  bool send_all(std::span<const uint8_t> data);
  /// TCP_CORK: while on, what send_all() writes (a TLS record per call) is held back, and
  /// leaves together, in full segments, when it is turned off.
  void cork(bool on);
  /// The next STUN message or ChannelData frame (with its padding) within `timeout_ms`.
  std::optional<Bytes> read_frame(int timeout_ms = kWaitMs);
  /// Whether the server closed the connection within `timeout_ms` (frames read meanwhile are
  /// discarded).
  bool closed_by_server(int timeout_ms = kWaitMs);
  void close();

  // TURN with REST credentials, as TurnClient does over UDP.
  void set_credentials(std::string username, std::string password, std::string realm);
  using Attrs = std::function<void(stun::MessageBuilder&)>;
  Bytes build(stun::Method m, stun::Class c, const Attrs& attrs, bool sign);
  std::optional<Response> request(stun::Method m, const Attrs& attrs, bool sign = true);
  /// Allocate (UDP relay) with the 401 round; the relayed address.
  std::optional<stun::Endpoint> allocate();

 private:
  /// Reads more bytes into buf_; false on timeout, close or error (closed_ says which).
  bool fill(int timeout_ms);

  int fd_ = -1;
  bool tls_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool closed_ = false;
  std::string error_;
  Bytes buf_;
  std::string username_, password_, realm_, nonce_;
  stun::TransactionId tid_{};
  uint32_t counter_ = 0;
};

/// A self-signed P-256 certificate for CN=localhost written as PEM files in a temporary
/// directory (removed on destruction).
struct TestCertificate {
  TestCertificate();
  ~TestCertificate();
  std::string dir, cert_file, key_file;
};

}  // namespace callrelay::net::testing
