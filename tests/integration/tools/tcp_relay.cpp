// RFC 6062 TCP allocations at the socket level (see tcp_relay.hpp): the cases, on the small
// TURN-over-TCP/TLS client of stream_turn_client.hpp. The "peers" are plain sockets of this
// process on 127.0.0.1 (the test server allows loopback peers). A failed check throws Failure,
// which run_tcp_relay turns into a FAIL line: every case reads as a straight sequence of steps
// and assertions.
#include "tests/integration/tools/tcp_relay.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>

#include "tests/integration/tools/stream_turn_client.hpp"
#include "tests/integration/tools/turn_client.hpp"

namespace callrelay::integ {
namespace {

/// How long "nothing happens" is watched for (no ConnectionAttempt, no second connection).
constexpr int kQuietMs = 500;
/// What the server keeps of a peer's bytes before the ConnectionBind (README "Transports":
/// "up to 64 KiB"), and what the inbound peer sends by then: more.
constexpr size_t kServerHolds = 65536;
constexpr size_t kEarlyInbound = 100 * 1024;

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// The cases.

void case_outbound(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  Listener listener;
  auto [cid, peer] = connect_peer(a, listener);

  // RFC 6062 section 5.2: the server "MUST buffer any data received from the peer" until the
  // ConnectionBind, and section 5.4 delivers it first. The pause lets the server read it.
  const Bytes early = pattern(3000, 1);
  write_all(*peer, early);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  say("connection-id " + std::to_string(cid) + " buffered 3000");
  auto data = a.bind_ok(cid);
  Leg first = Leg("client data connection (early bytes)", data.get()).expects(early);
  transfer({&first}, kAnswerMs);

  // Then both directions at once, each larger than what the sockets and the server buffer,
  // so flow control runs in both directions.
  constexpr size_t kEachWay = 1 << 20;
  both_ways(*data, *peer, kEachWay, 2, 10000);
  expect_quiet("client data connection", *data, 100);
  expect_quiet("peer", *peer, 100);
  say("outbound: 3000 early bytes, then " + std::to_string(kEachWay) + " bytes each way");
}

void case_close(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  Listener listener;
  constexpr size_t kTail = 512 * 1024;

  // RFC 6062 section 5.5: "When a peer data connection is closed or times out, the server MUST
  // close the corresponding client data connection"; what the peer sent first still arrives.
  // The client reads late, so those bytes wait in the server when the peer's FIN comes.
  {
    auto [cid, peer] = connect_peer(a, listener);
    auto data = a.bind_ok(cid);
    Leg far = Leg("peer", peer.get()).sends(pattern(kTail, 4)).then_closes();
    Leg client = Leg("client data connection", data.get())
                     .expects(pattern(kTail, 4))
                     .then_eof()
                     .after_ms(300);
    transfer({&far, &client}, 8000);
    say("peer close: client read " + std::to_string(kTail) + " bytes, then EOF");
  }
  // "When a client data connection is closed or times out, the server MUST close the
  // corresponding peer data connection", again after the client's last bytes.
  {
    auto [cid, peer] = connect_peer(a, listener);  // 446 here: the first one was not forgotten
    auto data = a.bind_ok(cid);
    Leg client = Leg("client data connection", data.get()).sends(pattern(kTail, 5)).then_closes();
    Leg far = Leg("peer", peer.get()).expects(pattern(kTail, 5)).then_eof().after_ms(300);
    transfer({&client, &far}, 8000);
    say("client close: peer read " + std::to_string(kTail) + " bytes, then EOF");
  }
  // Neither close ended the allocation, and the second one left no state behind either.
  auto [cid, peer] = connect_peer(a, listener);
  (void)cid;
  expect_code(a.control().request(kRefresh, {}, a.credentials()), 200,
              "Refresh after the data connections closed");
  say("close: allocation alive, Connect to the same peer succeeds again");
}

void case_connect_errors(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  // "If the connection attempt fails or times out, the server MUST return a 447 (Connection
  // Timeout or Failure) error." A bound, non-listening socket refuses at once; the second try
  // shows the failed attempt left nothing behind (a leftover would make it 446).
  const Listener dead(/*listening=*/false);
  for (int i = 0; i < 2; ++i) {
    const auto start = Clock::now();
    expect_code(a.connect(dead.address()), 447, "Connect to a port nothing listens on");
    check(Clock::now() - start < std::chrono::seconds(3), "the 447 took more than 3 s");
  }
  // "If the request does not contain an XOR-PEER-ADDRESS attribute ... 400 (Bad Request)".
  expect_code(a.control().request(kConnect, {}, a.credentials()), 400,
              "Connect without XOR-PEER-ADDRESS");

  // "If the server has already successfully processed a Connect request for this allocation
  // with the same XOR-PEER-ADDRESS, and the resulting client and peer data connections are
  // either pending or active, it MUST return a 446 (Connection Already Exists) error."
  Listener listener;
  auto [cid, peer] = connect_peer(a, listener);
  (void)cid;
  expect_code(a.connect(listener.address()), 446, "a second Connect to the same peer");
  check(listener.accept(kQuietMs) == nullptr, "the refused Connect still opened a connection");

  // Once that (never bound) peer connection closes, the peer address is free again. The
  // server sees the FIN asynchronously, so a 446 right after the close is allowed, for a
  // bounded time only.
  peer->close();
  int refused = 0;
  for (;; ++refused) {
    const Message m = a.connect(listener.address());
    if (m.code() == 200) break;
    expect_code(m, 446, "Connect after the peer connection closed");
    check(refused < 20, "still 446 two seconds after the peer connection closed");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  check(listener.accept(kAnswerMs) != nullptr, "no connection after the third Connect");
  say("connect-errors: 447 twice, 400, 446; free again after " + std::to_string(refused) +
      " early 446");
}

void case_inbound(const TcpRelayTarget& t) {
  TcpAllocation a(t);
  // RFC 6062 section 5.3: "If there is no permission installed for the IP address of the peer,
  // the server MUST immediately close the connection." (The kernel completes the handshake;
  // the close follows.) And nothing may reach the client about it.
  {
    int err = 0;
    auto stranger = Conn::dial(a.relayed(), false, &err);
    check(stranger != nullptr, "a peer could not connect to the relayed address " +
                                   a.relayed().text() + ": " + std::strerror(err));
    expect_closed("peer without a permission", *stranger, 2000, /*reset_ok=*/true);
    check(!a.control().indication(kQuietMs).has_value(),
          "a ConnectionAttempt for a peer without a permission");
  }
  expect_code(
      a.control().request(kCreatePermission, {{kXorPeer, xor_address(Address{"127.0.0.1", 0})}},
                          a.credentials()),
      200, "CreatePermission for 127.0.0.1");

  // Now the peer is announced with a ConnectionAttempt naming its address, and what it sends
  // before the ConnectionBind reaches the client first: here more than the server holds for
  // an unbound connection (64 KiB, README "Transports"), so the rest waits in TCP flow
  // control and must follow once the bind resumes the reads.
  int err = 0;
  auto peer = Conn::dial(a.relayed(), false, &err);
  check(peer != nullptr, std::string("a permitted peer could not connect: ") + std::strerror(err));
  const uint32_t cid = a.connection_attempt(peer->local());
  const Bytes early = pattern(kEarlyInbound, 6);
  const size_t early_sent = write_for(*peer, early, 300);
  check(early_sent > kServerHolds, "the sockets took only " + std::to_string(early_sent) +
                                       " early bytes; the server's 64 KiB would not fill");
  say("connection-id " + std::to_string(cid) + " buffered " + std::to_string(kServerHolds) +
      ", inbound from " + peer->local().text());
  auto data = a.bind_ok(cid);
  constexpr size_t kEachWay = 256 * 1024;
  Bytes to_client = early;
  const Bytes rest = pattern(kEachWay, 7);
  to_client.insert(to_client.end(), rest.begin(), rest.end());
  Bytes from_peer(early.begin() + static_cast<long>(early_sent), early.end());
  from_peer.insert(from_peer.end(), rest.begin(), rest.end());
  Leg client =
      Leg("client data connection", data.get()).sends(pattern(kEachWay, 8)).expects(to_client);
  Leg far = Leg("peer", peer.get()).sends(from_peer).expects(pattern(kEachWay, 8));
  transfer({&client, &far}, 8000);
  check(!a.control().indication(100).has_value(), "a second ConnectionAttempt");
  say("inbound: refused without a permission; with one, " + std::to_string(kEarlyInbound) +
      " early bytes then " + std::to_string(kEachWay) + " bytes each way");
}

void case_bind_errors(const TcpRelayTarget& t) {
  check(!t.other_username.empty(), "bind-errors needs a second USERNAME PASSWORD");
  TcpAllocation a(t);
  Listener listener;
  auto [cid, peer] = connect_peer(a, listener);

  // "If the request does not contain the CONNECTION-ID attribute, or if this attribute does
  // not refer to an existing pending connection, the server MUST return a 400 (Bad Request)".
  {
    auto [m, conn] = a.bind(cid ^ 0x5A5A5A5Au, a.credentials());
    expect_code(m, 400, "ConnectionBind with an unknown CONNECTION-ID");
  }
  // RFC 6062 section 4.4: the same credentials as the control connection. Another user's
  // valid ones are refused (441, as on another user's allocation) without using up the id.
  {
    Credentials other{t.other_username, t.other_password, {}, {}, {}};
    auto [m, conn] = a.bind(cid, other);
    expect_code(m, 441, "ConnectionBind with another user's credentials");
  }
  // The control connection carries the allocation and cannot become a data connection.
  expect_code(a.control().request(kConnectionBind, {{kConnectionId, be32(cid)}}, a.credentials()),
              400, "ConnectionBind on the control connection");

  auto data = a.bind_ok(cid);
  both_ways(*data, *peer, 4096, 9, kAnswerMs);
  // Bound now, so no longer "an existing pending connection".
  {
    auto [m, conn] = a.bind(cid, a.credentials());
    expect_code(m, 400, "a second ConnectionBind for a bound connection");
  }
  // None of the refused binds disturbed the bound pair.
  both_ways(*data, *peer, 100, 11, kAnswerMs);
  say("bind-errors: 400 unknown id, 441 other user, 400 on control, 400 bound twice");
}

void case_control_close(const TcpRelayTarget& t) {
  auto a = std::make_unique<TcpAllocation>(t);
  const Address relayed = a->relayed();
  Listener bound_listener, pending_listener;
  auto [cid, peer] = connect_peer(*a, bound_listener);
  auto data = a->bind_ok(cid);
  both_ways(*data, *peer, 4096, 13, kAnswerMs);
  auto [pending_cid, pending_peer] = connect_peer(*a, pending_listener);
  (void)pending_cid;

  // RFC 6062 section 5.5 / RFC 8656: the allocation lives as long as its control connection;
  // when it ends, every peer and client data connection of it goes too.
  a.reset();
  expect_closed("bound client data connection", *data, 3000, /*reset_ok=*/true);
  expect_closed("bound peer", *peer, 3000, /*reset_ok=*/true);
  expect_closed("peer waiting for its ConnectionBind", *pending_peer, 3000,
                /*reset_ok=*/true);
  // And the relayed address no longer takes connections.
  int err = 0;
  auto late = Conn::dial(relayed, false, &err);
  check(late == nullptr && err == ECONNREFUSED,
        "the relayed address " + relayed.text() + " still accepts connections");
  say("control-close: data connection, its peer, a pending peer closed; relay port closed");
}

void case_udp_allocate(const TcpRelayTarget& t) {
  // RFC 6062 section 5.1: "If the client connection transport is not TCP or TLS, the server
  // MUST reject the request with a 400 (Bad Request) error."
  TurnClient client(t.host, t.port, t.username, t.password);
  check(client.ok(), "no UDP socket");
  const auto code = client.allocate(kProtocolTcp);
  check(code.has_value(), "no answer to Allocate over UDP");
  check(*code == 400, "Allocate TCP over UDP: expected 400, got " + std::to_string(*code));
  say("udp-allocate: 400");
}

}  // namespace

int run_tcp_relay(const std::string& test_case, const TcpRelayTarget& target) {
  // A write to a connection the server closed must fail, not kill the tool.
  std::signal(SIGPIPE, SIG_IGN);
  const bool udp = target.transport == "udp";
  if (!udp && target.transport != "tcp" && target.transport != "tls") return 2;
  if (udp != (test_case == "udp-allocate")) return 2;
  try {
    if (test_case == "outbound") {
      case_outbound(target);
    } else if (test_case == "close") {
      case_close(target);
    } else if (test_case == "connect-errors") {
      case_connect_errors(target);
    } else if (test_case == "inbound") {
      case_inbound(target);
    } else if (test_case == "bind-errors") {
      case_bind_errors(target);
    } else if (test_case == "control-close") {
      case_control_close(target);
    } else if (test_case == "udp-allocate") {
      case_udp_allocate(target);
    } else {
      return 2;
    }
  } catch (const Failure& f) {
    std::fprintf(stderr, "FAIL tcp-relay %s over %s: %s\n", test_case.c_str(),
                 target.transport.c_str(), f.what());
    return 1;
  }
  say("PASS tcp-relay " + test_case + " over " + target.transport);
  return 0;
}

}  // namespace callrelay::integ
