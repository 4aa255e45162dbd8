// The TURN side of the stream TURN client of the RFC 6062 cases (see stream_turn_client.hpp):
// STUN messages built, signed and parsed over a stream, and a TCP allocation with its control
// connection, Connect and ConnectionBind. Connections are stream_conn.cpp's, the byte streams
// stream_transfer.cpp's.
#include "tests/integration/tools/stream_turn_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "tests/integration/tools/stream_socket_address.hpp"

namespace callrelay::integ {
namespace {

using detail::to_address;
using detail::to_sockaddr;

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) { return (uint32_t{get16(p)} << 16) | get16(p + 2); }

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}

/// The next STUN message on `c`, or nothing if none is complete within timeout_ms. Fails on
/// a close or on bytes that are not STUN (a TCP allocation's control connection carries
/// nothing else).
std::optional<Message> read_message(Conn& c, int timeout_ms) {
  const auto deadline = after_ms(timeout_ms);
  for (;;) {
    if (c.pending.size() >= kHeader) {
      check((c.pending[0] & 0xC0) == 0 && get32(&c.pending[4]) == kCookie,
            "not a STUN message on a STUN connection");
      const size_t size = kHeader + get16(&c.pending[2]);
      if (c.pending.size() >= size) {
        Message m;
        m.type = get16(c.pending.data());
        std::copy(c.pending.begin() + 8, c.pending.begin() + kHeader, m.tid.begin());
        for (size_t at = kHeader; at + 4 <= size;) {
          const uint16_t type = get16(&c.pending[at]);
          const uint16_t len = get16(&c.pending[at + 2]);
          check(at + 4 + len <= size, "a STUN attribute overruns its message");
          const auto value = c.pending.begin() + static_cast<long>(at + 4);
          m.attrs.emplace_back(type, Bytes(value, value + len));
          at += 4 + ((len + 3u) & ~3u);
        }
        c.pending.erase(c.pending.begin(), c.pending.begin() + static_cast<long>(size));
        return m;
      }
    }
    const Io r = c.fill();
    if (r == Io::kOk) continue;
    check(r == Io::kWouldBlock,
          r == Io::kEof ? "the server closed a STUN connection" : "a STUN connection failed");
    if (!wait_for(c, POLLIN, deadline)) return std::nullopt;
  }
}

std::unique_ptr<Conn> dial_server(const TcpRelayTarget& t) {
  int err = 0;
  auto c = Conn::dial(Address{t.host, t.port}, t.transport == "tls", &err);
  check(c != nullptr, "cannot connect to the server at " + t.host + ":" + std::to_string(t.port) +
                          ": " + std::strerror(err));
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// STUN over a stream.

Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes xor_address(const Address& a) {
  const sockaddr_in sa = to_sockaddr(a);
  const uint32_t x_addr = ntohl(sa.sin_addr.s_addr) ^ kCookie;
  const auto x_port = static_cast<uint16_t>(a.port ^ (kCookie >> 16));
  Bytes v{0, 0x01, static_cast<uint8_t>(x_port >> 8), static_cast<uint8_t>(x_port)};
  const Bytes addr = be32(x_addr);
  v.insert(v.end(), addr.begin(), addr.end());
  return v;
}

const Bytes* Message::attr(uint16_t t) const {
  for (const auto& [at, v] : attrs) {
    if (at == t) return &v;
  }
  return nullptr;
}

int Message::code() const {
  if ((type & kClassError) == kClassSuccess) return 200;
  if ((type & kClassError) != kClassError) return -1;
  const Bytes* e = attr(kErrorCode);
  return e != nullptr && e->size() >= 4 ? ((*e)[2] & 0x7) * 100 + (*e)[3] : 0;
}

std::optional<uint32_t> Message::u32(uint16_t t) const {
  const Bytes* v = attr(t);
  if (v == nullptr || v->size() != 4) return std::nullopt;
  return get32(v->data());
}

std::optional<Address> Message::address(uint16_t t) const {
  const Bytes* v = attr(t);
  if (v == nullptr || v->size() != 8 || (*v)[1] != 0x01) return std::nullopt;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(get16(v->data() + 2) ^ (kCookie >> 16)));
  sa.sin_addr.s_addr = htonl(get32(v->data() + 4) ^ kCookie);
  return to_address(sa);
}

std::string Message::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "message type 0x%04x", type);
  const int c = code();
  return std::string(buf) + (c >= 0 ? " (" + std::to_string(c) + ")" : "");
}

Message StunConn::request(uint16_t method, const std::vector<std::pair<uint16_t, Bytes>>& attrs,
                          Credentials& cred) {
  for (int round = 0; round < 3; ++round) {
    Bytes req = start(method);
    for (const auto& [type, value] : attrs) add_attr(req, type, value);
    const bool signed_request = !cred.realm.empty();
    if (signed_request) sign(req, cred);
    const Message resp = exchange(req);
    const int code = resp.code();
    const bool challenge = (code == 401 && !signed_request) || code == 438;
    const Bytes* realm = resp.attr(kRealm);
    const Bytes* nonce = resp.attr(kNonce);
    if (!challenge || realm == nullptr || nonce == nullptr) return resp;
    cred.realm.assign(realm->begin(), realm->end());
    cred.nonce.assign(nonce->begin(), nonce->end());
    cred.key = long_term_key(cred);
  }
  throw Failure("no final answer after repeated 401/438 challenges");
}

std::optional<Message> StunConn::indication(int timeout_ms) {
  if (indications_.empty()) {
    auto m = read_message(*conn_, timeout_ms);
    if (!m) return std::nullopt;
    check((m->type & kClassError) == kClassIndication, "unexpected " + m->describe());
    indications_.push_back(*m);
  }
  Message m = indications_.front();
  indications_.pop_front();
  return m;
}

Bytes StunConn::start(uint16_t method) {
  Bytes r(kHeader, 0);
  put16(r, 0, method);
  put16(r, 4, static_cast<uint16_t>(kCookie >> 16));
  put16(r, 6, static_cast<uint16_t>(kCookie));
  for (size_t i = 8; i < kHeader; ++i) r[i] = static_cast<uint8_t>(rng_());
  return r;
}

/// USERNAME, REALM, NONCE, then MESSAGE-INTEGRITY: HMAC-SHA1 over the message up to it,
/// with the length field already counting it (RFC 8489 section 14.5).
void StunConn::sign(Bytes& r, const Credentials& cred) {
  add_attr(r, kUsername, Bytes(cred.username.begin(), cred.username.end()));
  add_attr(r, kRealm, Bytes(cred.realm.begin(), cred.realm.end()));
  add_attr(r, kNonce, Bytes(cred.nonce.begin(), cred.nonce.end()));
  const size_t covered = r.size();
  put16(r, 2, static_cast<uint16_t>(covered - kHeader + 24));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), cred.key.data(), static_cast<int>(cred.key.size()), r.data(), covered,
       mac.data(), &len);
  add_attr(r, kIntegrity, Bytes(mac.begin(), mac.begin() + len));
}

/// RFC 8489 section 9.2.2: key = MD5(username ":" realm ":" password).
Bytes StunConn::long_term_key(const Credentials& c) {
  const std::string input = c.username + ":" + c.realm + ":" + c.password;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md.data(), &len, EVP_md5(), nullptr);
  return Bytes(md.begin(), md.begin() + len);
}

Message StunConn::exchange(const Bytes& req) {
  write_all(*conn_, req);
  const auto deadline = after_ms(kAnswerMs);
  for (;;) {
    auto m = read_message(*conn_, ms_left(deadline));
    check(m.has_value(), "no answer to a request of type 0x" + hex(get16(req.data())) + " within " +
                             std::to_string(kAnswerMs) + " ms");
    if ((m->type & kClassError) == kClassIndication) {
      indications_.push_back(*m);
      continue;
    }
    check(std::equal(m->tid.begin(), m->tid.end(), req.begin() + 8),
          "a response to another transaction: " + m->describe());
    check(m->method() == get16(req.data()), "a response of another method: " + m->describe());
    return *m;
  }
}

std::string StunConn::hex(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// The TURN side.

void expect_code(const Message& m, int code, const std::string& what) {
  check(m.code() == code, what + ": expected " + std::to_string(code) + ", got " + m.describe());
}

TcpAllocation::TcpAllocation(const TcpRelayTarget& t)
    : target_(t), control_(dial_server(t)), cred_{t.username, t.password, {}, {}, {}} {
  const Message m =
      control_.request(kAllocate, {{kTransport, Bytes{kProtocolTcp, 0, 0, 0}}}, cred_);
  expect_code(m, 200, "Allocate with REQUESTED-TRANSPORT TCP");
  const auto relayed = m.address(kXorRelayed);
  check(relayed.has_value(), "Allocate success without an IPv4 XOR-RELAYED-ADDRESS");
  relayed_ = *relayed;
  check(relayed_.ip == "127.0.0.1" && relayed_.port != 0,
        "relayed address " + relayed_.text() + " is not on 127.0.0.1");
}

Message TcpAllocation::connect(const Address& peer) {
  return control_.request(kConnect, {{kXorPeer, xor_address(peer)}}, cred_);
}

uint32_t TcpAllocation::connect_ok(const Address& peer) {
  const Message m = connect(peer);
  expect_code(m, 200, "Connect to " + peer.text());
  const auto cid = m.u32(kConnectionId);
  check(cid.has_value(), "Connect success without a CONNECTION-ID");
  return *cid;
}

std::pair<Message, std::unique_ptr<Conn>> TcpAllocation::bind(uint32_t cid, Credentials& cred) {
  StunConn data(dial_server(target_));
  const Message m = data.request(kConnectionBind, {{kConnectionId, be32(cid)}}, cred);
  check(data.kept_indications() == 0, "an indication on a data connection");
  return {m, data.release()};
}

std::unique_ptr<Conn> TcpAllocation::bind_ok(uint32_t cid) {
  auto [m, conn] = bind(cid, cred_);
  expect_code(m, 200, "ConnectionBind for connection " + std::to_string(cid));
  return std::move(conn);
}

uint32_t TcpAllocation::connection_attempt(const Address& peer) {
  const auto m = control_.indication(kAnswerMs);
  check(m.has_value(), "no ConnectionAttempt within " + std::to_string(kAnswerMs) + " ms");
  check(m->is(kConnectionAttempt, kClassIndication),
        "expected a ConnectionAttempt indication, got " + m->describe());
  const auto cid = m->u32(kConnectionId);
  check(cid.has_value(), "ConnectionAttempt without a CONNECTION-ID");
  const auto from = m->address(kXorPeer);
  check(from.has_value(), "ConnectionAttempt without an IPv4 XOR-PEER-ADDRESS");
  check(*from == peer,
        "ConnectionAttempt names peer " + from->text() + ", the peer is " + peer.text());
  return *cid;
}

std::pair<uint32_t, std::unique_ptr<Conn>> connect_peer(TcpAllocation& a, Listener& l) {
  const uint32_t cid = a.connect_ok(l.address());
  auto peer = l.accept(kAnswerMs);
  check(peer != nullptr, "the peer listener saw no connection after a successful Connect");
  check(peer->remote() == a.relayed(), "the relay connected from " + peer->remote().text() +
                                           ", not from the relayed address " + a.relayed().text());
  return {cid, std::move(peer)};
}

}  // namespace callrelay::integ
