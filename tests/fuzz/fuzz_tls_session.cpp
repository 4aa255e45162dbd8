// libFuzzer target for TlsSession, the server side of TURN over TLS without I/O. Two modes,
// chosen by the first byte:
// - raw: the input is what a client sent before any handshake (a ClientHello or garbage), fed in
//   chunks of the fuzzer's choosing; the session must answer, ask for more or fail cleanly.
// - session: a real OpenSSL client (TLS 1.2 or 1.3) completes a handshake with the session,
//   then the fuzzer interleaves client writes, deliveries of the client's ciphertext cut
//   anywhere, server writes, sends that complete late, buffer trims, KeyUpdates and the
//   session moved to a new TlsSession mid-stream (as a hand-over between workers does). Every
//   byte each side wrote must reach the other in order, and the connection's invariant must
//   hold: once a read asks for more input, all input given was taken in.
#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "relay/net/tls_session.hpp"
#include "tests/streams/self_signed.hpp"

namespace {

using callrelay::net::TlsSession;
using Bytes = std::vector<uint8_t>;
using Status = TlsSession::Status;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Contexts {
  SSL_CTX* server = nullptr;
  SSL_CTX* client = nullptr;
};

/// A server context with a self-signed P-256 certificate made in memory, as make_tls_context
/// configures it (TLS 1.2 at least, no renegotiation), and a client context that trusts anything.
Contexts make_contexts() {
  Contexts c;
  const callrelay::net::testing::SelfSigned made = callrelay::net::testing::make_self_signed();
  c.server = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(c.server, TLS1_2_VERSION);
  SSL_CTX_set_options(c.server, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
  check(SSL_CTX_use_certificate(c.server, made.cert.get()) == 1);
  check(SSL_CTX_use_PrivateKey(c.server, made.key.get()) == 1);
  c.client = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(c.client, SSL_VERIFY_NONE, nullptr);
  return c;
}

const Contexts& contexts() {
  static const Contexts c = make_contexts();
  return c;
}

/// Gives `bytes` to the session through input_space(), taking in what it holds between chunks
/// the way a connection's read loop does; appends the plaintext to `plain`. False once the
/// session failed or closed.
bool deliver_to_session(TlsSession& s, std::span<const uint8_t> bytes, size_t room, bool all,
                        Bytes& plain) {
  Bytes buf(room);
  while (!bytes.empty()) {
    const std::span<uint8_t> space = s.input_space();
    check(!space.empty());  // the connection reads only after a kWantRead
    const size_t n = std::min(space.size(), bytes.size());
    std::copy_n(bytes.begin(), n, space.begin());
    s.input_added(n);
    bytes = bytes.subspan(n);
    for (;;) {
      size_t got = 0;
      const Status st = s.read(buf, got, all);
      if (st == Status::kOk) {
        check(got > 0 && got <= buf.size());
        plain.insert(plain.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(got));
        continue;
      }
      if (st != Status::kWantRead) return false;
      check(s.input_buffered() == 0);
      break;
    }
  }
  return true;
}

void fuzz_raw(FuzzedDataProvider& in) {
  TlsSession s(contexts().server);
  while (in.remaining_bytes() > 0) {
    const Bytes chunk = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 512));
    const std::span<uint8_t> space = s.input_space();
    check(!space.empty());
    const size_t n = std::min(space.size(), chunk.size());
    std::copy_n(chunk.begin(), n, space.begin());
    s.input_added(n);
    TlsSession::clear_errors();
    const Status st = s.handshake();
    if (s.has_output()) {
      check(!s.take_output().empty());
      s.output_sent();
    }
    if (st == Status::kError) {
      check(!s.error().empty());
      return;
    }
    if (st != Status::kWantRead) return;  // a fuzzer cannot finish a handshake alone
    check(s.input_buffered() == 0);
  }
}

class Client {
 public:
  explicit Client(int version) : ssl_(SSL_new(contexts().client)) {
    SSL_set_min_proto_version(ssl_, version);
    SSL_set_max_proto_version(ssl_, version);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~Client() { SSL_free(ssl_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool step() { return SSL_do_handshake(ssl_) == 1; }
  Bytes take_sent() {
    Bytes b(static_cast<size_t>(BIO_ctrl_pending(out_)));
    if (!b.empty()) BIO_read(out_, b.data(), static_cast<int>(b.size()));
    return b;
  }
  void receive(std::span<const uint8_t> b) {
    if (!b.empty()) check(BIO_write(in_, b.data(), static_cast<int>(b.size())) > 0);
  }
  void write(const Bytes& b) {
    if (!b.empty()) check(SSL_write(ssl_, b.data(), static_cast<int>(b.size())) > 0);
  }
  /// Every plaintext byte the client can read now.
  void read_all(Bytes& plain) {
    ERR_clear_error();
    Bytes buf(20000);
    for (;;) {
      const int n = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
      if (n <= 0) {
        check(SSL_get_error(ssl_, n) == SSL_ERROR_WANT_READ);
        ERR_clear_error();
        return;
      }
      plain.insert(plain.end(), buf.begin(), buf.begin() + n);
    }
  }
  bool key_update() { return SSL_key_update(ssl_, SSL_KEY_UPDATE_REQUESTED) == 1; }

 private:
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

void fuzz_session(FuzzedDataProvider& in) {
  const int version = in.ConsumeBool() ? TLS1_3_VERSION : TLS1_2_VERSION;
  auto s = std::make_unique<TlsSession>(contexts().server);
  Client c(version);
  Bytes sink;
  for (int i = 0;; ++i) {
    check(i < 20);
    const bool client_done = c.step();
    ERR_clear_error();
    const Bytes hello = c.take_sent();
    if (!hello.empty()) {
      const std::span<uint8_t> space = s->input_space();
      check(space.size() >= hello.size());  // a flight of this client fits one read
      std::copy(hello.begin(), hello.end(), space.begin());
      s->input_added(hello.size());
    }
    TlsSession::clear_errors();
    const Status st = s->handshake();
    check(st == Status::kOk || st == Status::kWantRead);
    if (s->has_output()) {
      c.receive(s->take_output());
      s->output_sent();
    }
    if (client_done && st == Status::kOk) break;
  }
  check(s->handshake_done());

  Bytes wire;        // client ciphertext not yet given to the session
  Bytes to_server;   // what the client wrote
  Bytes at_server;   // what the session read
  Bytes to_client;   // what the session wrote
  Bytes at_client;   // what the client read
  std::span<const uint8_t> in_flight;  // output taken by take_output(), not yet "sent"
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0: {  // the client writes a record
        const Bytes b = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 3000));
        c.write(b);
        to_server.insert(to_server.end(), b.begin(), b.end());
        const Bytes sent = c.take_sent();
        wire.insert(wire.end(), sent.begin(), sent.end());
        break;
      }
      case 1: {  // part of what the client sent reaches the session
        const size_t n = in.ConsumeIntegralInRange<size_t>(0, wire.size());
        const size_t room = in.ConsumeIntegralInRange<size_t>(1, 5000);
        TlsSession::clear_errors();
        check(deliver_to_session(*s, std::span<const uint8_t>(wire).first(n), room,
                                 in.ConsumeBool(), at_server));
        wire.erase(wire.begin(), wire.begin() + static_cast<ptrdiff_t>(n));
        break;
      }
      case 2: {  // the session writes one to three frames, a record each
        const int frames = in.ConsumeIntegralInRange<int>(1, 3);
        TlsSession::clear_errors();
        for (int f = 0; f < frames; ++f) {
          const Bytes b = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 20000));
          if (b.empty()) break;
          check(s->write(b));
          to_client.insert(to_client.end(), b.begin(), b.end());
        }
        break;
      }
      case 3:  // a send starts, or the one in flight completes
        if (s->sending()) {
          c.receive(in_flight);
          s->output_sent();
          in_flight = {};
        } else if (s->has_output()) {
          in_flight = s->take_output();
          check(!in_flight.empty());
        }
        break;
      case 4:  // the connection sweep
        if (s->free_buffers()) check(!s->has_output() && !s->sending());
        break;
      case 5:  // handed to another worker: only with nothing on its way out
        if (!s->sending() && !s->has_output()) {
          // Every record given was read (deliveries read until more input is wanted), so the
          // session holds no plaintext: at most a partial record, which moves with it.
          Bytes none(64);
          size_t got = 0;
          TlsSession::clear_errors();
          check(s->read(none, got, true) == Status::kWantRead);
          SSL* ssl = s->release();
          check(ssl != nullptr);
          s.reset();
          s = std::make_unique<TlsSession>(ssl);
        }
        break;
      case 6:
        if (version == TLS1_3_VERSION) {
          check(c.key_update());
          c.write(Bytes{0x4b});  // the update leaves with the next record
          to_server.push_back(0x4b);
          const Bytes sent = c.take_sent();
          wire.insert(wire.end(), sent.begin(), sent.end());
        }
        break;
    }
    // What each side received so far is a prefix of what the other wrote.
    check(at_server.size() <= to_server.size() &&
          std::equal(at_server.begin(), at_server.end(), to_server.begin()));
    c.read_all(at_client);
    check(at_client.size() <= to_client.size() &&
          std::equal(at_client.begin(), at_client.end(), to_client.begin()));
  }
  // Everything left arrives: nothing may be lost or reordered.
  TlsSession::clear_errors();
  check(deliver_to_session(*s, wire, 4096, true, at_server));
  check(at_server == to_server);
  if (s->sending()) {
    c.receive(in_flight);
    s->output_sent();
  }
  if (s->has_output()) {
    c.receive(s->take_output());
    s->output_sent();
  }
  c.read_all(at_client);
  check(at_client == to_client);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider in(data + 1, size - 1);
  if (data[0] & 1) {
    fuzz_raw(in);
  } else {
    fuzz_session(in);
  }
  ERR_clear_error();
  return 0;
}
