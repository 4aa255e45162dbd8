// A small TURN client over TCP and TLS for the RFC 6062 cases (tcp_relay.cpp): connections,
// plain or TLS, and local peer listeners on 127.0.0.1; byte streams moved over several
// connections at once and compared; STUN messages built, signed and parsed over a stream; a TCP
// allocation with its control connection, Connect and ConnectionBind. Like the other helpers it
// has its own small STUN encoder, independent of the project's codec. A failed check throws
// Failure: the callers read as a straight sequence of steps and assertions.
// Connections are in stream_conn.cpp, byte streams in stream_transfer.cpp, STUN and TURN in
// stream_turn_client.cpp.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/tools/tcp_relay.hpp"

namespace callrelay::integ {

using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

// RFC 8656 / RFC 6062 methods (all below 0x10, so the message type is method | class bits).
constexpr uint16_t kAllocate = 0x0003, kRefresh = 0x0004, kCreatePermission = 0x0008;
constexpr uint16_t kConnect = 0x000A, kConnectionBind = 0x000B, kConnectionAttempt = 0x000C;
constexpr uint16_t kClassIndication = 0x0010, kClassSuccess = 0x0100, kClassError = 0x0110;
constexpr uint16_t kUsername = 0x0006, kIntegrity = 0x0008, kErrorCode = 0x0009;
constexpr uint16_t kXorPeer = 0x0012, kRealm = 0x0014, kNonce = 0x0015, kXorRelayed = 0x0016;
constexpr uint16_t kTransport = 0x0019, kConnectionId = 0x002A;
constexpr uint32_t kCookie = 0x2112A442;
constexpr size_t kHeader = 20;
constexpr uint8_t kProtocolTcp = 6;

/// Every wait for the server is bounded by this; loopback answers take milliseconds, so a
/// case that hits it has found a hang, not a slow machine.
constexpr int kAnswerMs = 5000;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// Throws Failure(what) unless ok.
void check(bool ok, const std::string& what);

struct Address {
  std::string ip;
  uint16_t port = 0;
  std::string text() const { return ip + ":" + std::to_string(port); }
  bool operator==(const Address& o) const { return ip == o.ip && port == o.port; }
};

int ms_left(Clock::time_point deadline);
Clock::time_point after_ms(int ms);

/// Deterministic test content: a different stream per seed, so a byte that went the wrong way
/// or twice shows up as a mismatch at a precise offset.
Bytes pattern(size_t size, uint32_t seed);

// ---------------------------------------------------------------------------------------------
// Sockets: a connected TCP stream, plain or TLS (client side), non-blocking once set up.

enum class Io { kOk, kWouldBlock, kEof, kReset, kError };

class Conn {
 public:
  /// Connects to `to` (and runs the TLS handshake); nullptr with `*err` = errno if the TCP
  /// connection was refused or failed, a Failure if the TLS handshake failed.
  static std::unique_ptr<Conn> dial(const Address& to, bool tls, int* err = nullptr);
  /// A plain connection accepted by a Listener.
  static std::unique_ptr<Conn> adopt(int fd);
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  Address local() const;
  Address remote() const;

  /// Bytes read off the socket past the last STUN message taken: after a ConnectionBind
  /// response they are the first relayed bytes, so read_some() hands them out first.
  Bytes pending;

  Io read_some(uint8_t* p, size_t n, size_t& got);
  /// Appends what the socket has to `pending`.
  Io fill();
  Io write_some(const uint8_t* p, size_t n, size_t& put);

  /// Closes the connection (FIN; close_notify first over TLS). Idempotent.
  void close();

 private:
  explicit Conn(int fd);

  void handshake();
  Io recv_socket(uint8_t* p, size_t n, size_t& got);
  Io ssl_result(int r);
  static Io errno_result(int e);

  int fd_;
  SSL* ssl_ = nullptr;
};

/// Waits for `events` on `c` until the deadline; false on timeout.
bool wait_for(const Conn& c, short events, Clock::time_point deadline);

/// A TCP socket on 127.0.0.1 with a kernel-chosen port: listening (a peer), or only bound,
/// which holds a port that refuses connections (for the 447 case) without racing anyone.
class Listener {
 public:
  explicit Listener(bool listening = true);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Address address() const;

  /// The next connection, or nullptr if none came within timeout_ms.
  std::unique_ptr<Conn> accept(int timeout_ms);

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Byte streams: several connections at once, each sending and/or expecting a stream.

/// One connection's part in a transfer: what it sends (then optionally closes), what it must
/// receive (compared byte by byte, however the reads split or coalesce it) and whether an EOF
/// must follow. Nothing happens on it before `delay_ms`, so the other side's bytes pile up in
/// the server's buffers first. Built as Leg("name", conn).sends(...).expects(...).
struct Leg {
  Leg(std::string n, Conn* c) : name(std::move(n)), conn(c) {}
  Leg&& sends(Bytes b) && {
    out = std::move(b);
    return std::move(*this);
  }
  Leg&& then_closes() && {
    close_after_send = true;
    return std::move(*this);
  }
  Leg&& expects(Bytes b) && {
    expect = std::move(b);
    return std::move(*this);
  }
  /// An EOF must follow the expected bytes; with `reset_ok` a connection reset counts too.
  Leg&& then_eof(bool reset_ok = false) && {
    expect_eof = true;
    eof_reset_ok = reset_ok;
    return std::move(*this);
  }
  Leg&& after_ms(int ms) && {
    delay_ms = ms;
    return std::move(*this);
  }

  std::string name;
  Conn* conn;
  Bytes out;
  bool close_after_send = false;
  Bytes expect;
  bool expect_eof = false;
  bool eof_reset_ok = false;
  int delay_ms = 0;

  size_t sent = 0, got = 0;
  bool closed = false, eof = false;
  bool done_sending() const { return sent == out.size() && (!close_after_send || closed); }
  bool done_receiving() const { return got == expect.size() && (!expect_eof || eof); }
  std::string progress() const {
    return name + ": sent " + std::to_string(sent) + "/" + std::to_string(out.size()) +
           ", received " + std::to_string(got) + "/" + std::to_string(expect.size()) +
           (expect_eof ? (eof ? ", EOF seen" : ", no EOF yet") : "");
  }
};

/// Runs the legs until each has sent and received everything, or fails (a mismatching or
/// extra byte, an early EOF or reset, or the timeout, with every leg's progress).
void transfer(std::vector<Leg*> legs, int timeout_ms);

/// `c` must see the connection closed with no byte before (EOF, or a reset if `reset_ok`)
/// within timeout_ms.
void expect_closed(const std::string& name, Conn& c, int timeout_ms, bool reset_ok);

/// `n` bytes from the client data connection to the peer and `n` others back, at the same
/// time; each side must receive exactly the other's stream.
void both_ways(Conn& client, Conn& peer, size_t n, uint32_t seed, int timeout_ms);

/// Nothing at all may arrive on `c` for quiet_ms (no byte, no close).
void expect_quiet(const std::string& name, Conn& c, int quiet_ms);

/// Writes as much of `bytes` as the sockets take within ms, and returns after ms in any case
/// (the server reads meanwhile what it will before a ConnectionBind): how many bytes went.
size_t write_for(Conn& c, const Bytes& bytes, int ms);

void write_all(Conn& c, const Bytes& bytes);

// ---------------------------------------------------------------------------------------------
// STUN over a stream (RFC 8489 section 6.2.2: messages back to back, no framing added).

Bytes be32(uint32_t v);

/// RFC 8489 section 14.2: XOR-MAPPED-ADDRESS layout, IPv4 (the peers are on 127.0.0.1).
Bytes xor_address(const Address& a);

struct Message {
  uint16_t type = 0;
  std::array<uint8_t, 12> tid{};
  std::vector<std::pair<uint16_t, Bytes>> attrs;

  uint16_t method() const { return type & ~kClassError & 0x3FFF; }
  bool is(uint16_t m, uint16_t cls) const { return type == (m | cls); }
  const Bytes* attr(uint16_t t) const;
  /// 200 for a success response, the ERROR-CODE of an error response (0 if it has none), -1
  /// for anything else.
  int code() const;
  std::optional<uint32_t> u32(uint16_t t) const;
  std::optional<Address> address(uint16_t t) const;
  std::string describe() const;
};

/// Long-term credentials (RFC 8489 section 9.2), learnt from the first 401 and kept: RFC 6062
/// section 4.4 has the data connections authenticate "using the same method and credentials
/// as for the control connection".
struct Credentials {
  std::string username, password;
  std::string realm, nonce;
  Bytes key;
};

/// A STUN client on one connection: requests with transaction matching; indications that
/// arrive meanwhile (ConnectionAttempt on a control connection) are kept for later.
class StunConn {
 public:
  explicit StunConn(std::unique_ptr<Conn> c) : conn_(std::move(c)), rng_(std::random_device{}()) {}
  std::unique_ptr<Conn> release() { return std::move(conn_); }

  /// Sends a request with `attrs`, signed with `cred` (after a 401 challenge if the realm is
  /// not known yet, and once more on 438 Stale Nonce), and returns the final response.
  Message request(uint16_t method, const std::vector<std::pair<uint16_t, Bytes>>& attrs,
                  Credentials& cred);

  /// The next indication (kept or arriving within timeout_ms), or nothing.
  std::optional<Message> indication(int timeout_ms);
  size_t kept_indications() const { return indications_.size(); }

 private:
  Bytes start(uint16_t method);
  static void sign(Bytes& r, const Credentials& cred);
  static Bytes long_term_key(const Credentials& c);
  Message exchange(const Bytes& req);
  static std::string hex(uint16_t v);

  std::unique_ptr<Conn> conn_;
  std::mt19937 rng_;
  std::deque<Message> indications_;
};

// ---------------------------------------------------------------------------------------------
// The TURN side: a TCP allocation on its control connection, and data connections.

void expect_code(const Message& m, int code, const std::string& what);

class TcpAllocation {
 public:
  /// Connects the control connection and allocates: RFC 6062 section 5.1, REQUESTED-TRANSPORT
  /// TCP; the relayed address must be on 127.0.0.1 (where the test server relays).
  explicit TcpAllocation(const TcpRelayTarget& t);

  const Address& relayed() const { return relayed_; }
  StunConn& control() { return control_; }
  Credentials& credentials() { return cred_; }

  Message connect(const Address& peer);
  /// Connect that must succeed: the CONNECTION-ID it names.
  uint32_t connect_ok(const Address& peer);

  /// ConnectionBind for `cid` on a new connection to the server, signed with `cred` (fresh
  /// credentials learn their realm and nonce on that connection). The response and the
  /// connection, whose `pending` bytes are the first relayed ones.
  std::pair<Message, std::unique_ptr<Conn>> bind(uint32_t cid, Credentials& cred);
  std::unique_ptr<Conn> bind_ok(uint32_t cid);

  /// Waits for the ConnectionAttempt announcing a peer connection from `peer` (RFC 6062
  /// section 5.3): its CONNECTION-ID.
  uint32_t connection_attempt(const Address& peer);

 private:
  TcpRelayTarget target_;
  StunConn control_;
  Credentials cred_;
  Address relayed_;
};

/// Connect to a local listener: the CONNECTION-ID and the peer's end of the connection, which
/// must come from the relayed transport address (RFC 6062 section 5.2: "The local endpoint is
/// the relayed transport address associated with the allocation").
std::pair<uint32_t, std::unique_ptr<Conn>> connect_peer(TcpAllocation& a, Listener& l);

}  // namespace callrelay::integ
