// A raw dual-stack TURN client (RFC 8656 ADDITIONAL-ADDRESS-FAMILY), independent of the
// project's codec: one Allocate asking for an IPv4 and an IPv6 relayed address, permissions for
// an IPv4 and an IPv6 echo peer, Send indications to both and the Data indications back, then a
// Refresh deleting only the IPv6 half (after which an IPv6 permission must get 443).
#include "tests/integration/tools/dual_stack.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kAllocate = 0x0003, kRefresh = 0x0004, kCreatePermission = 0x0008;
constexpr uint16_t kSendIndication = 0x0016, kDataIndication = 0x0017;
constexpr uint16_t kUsername = 0x0006, kIntegrity = 0x0008, kErrorCode = 0x0009;
constexpr uint16_t kLifetime = 0x000D, kPeer = 0x0012, kData = 0x0013, kRealm = 0x0014;
constexpr uint16_t kNonce = 0x0015, kRelayed = 0x0016, kRequestedFamily = 0x0017;
constexpr uint16_t kTransport = 0x0019, kAdditionalFamily = 0x8000, kAddressError = 0x8001;
constexpr uint32_t kCookie = 0x2112A442;
constexpr size_t kHeader = 20;

struct Address {
  std::string ip;  // text, without brackets
  uint16_t port = 0;
  std::string text() const {
    return ip.find(':') == std::string::npos ? ip + ":" + std::to_string(port)
                                             : "[" + ip + "]:" + std::to_string(port);
  }
};

struct Message {
  uint16_t type = 0;
  int code = 200;
  std::vector<std::pair<uint16_t, Bytes>> attrs;
  std::vector<Bytes> all(uint16_t t) const {
    std::vector<Bytes> out;
    for (const auto& [type_, v] : attrs)
      if (type_ == t) out.push_back(v);
    return out;
  }
};

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}

/// RFC 8489 section 14.2: the address XORed with the cookie (IPv4) or cookie + transaction id.
Bytes xor_address(const Address& a, const Bytes& tid_msg) {
  std::array<uint8_t, 16> mask{};
  for (size_t i = 0; i < 4; ++i) mask[i] = static_cast<uint8_t>(kCookie >> (24 - 8 * i));
  std::copy(tid_msg.begin() + 8, tid_msg.begin() + kHeader, mask.begin() + 4);
  std::array<uint8_t, 16> raw{};
  const bool v4 = inet_pton(AF_INET, a.ip.c_str(), raw.data()) == 1;
  if (!v4 && inet_pton(AF_INET6, a.ip.c_str(), raw.data()) != 1) return {};
  const auto xport = static_cast<uint16_t>(a.port ^ (kCookie >> 16));
  Bytes v{0, static_cast<uint8_t>(v4 ? 1 : 2), static_cast<uint8_t>(xport >> 8),
          static_cast<uint8_t>(xport)};
  for (size_t i = 0; i < (v4 ? 4u : 16u); ++i) v.push_back(static_cast<uint8_t>(raw[i] ^ mask[i]));
  return v;
}

std::optional<Address> decode_address(const Bytes& v, const uint8_t* tid) {
  if (v.size() != 8 && v.size() != 20) return std::nullopt;
  std::array<uint8_t, 16> mask{};
  for (size_t i = 0; i < 4; ++i) mask[i] = static_cast<uint8_t>(kCookie >> (24 - 8 * i));
  std::copy(tid, tid + 12, mask.begin() + 4);
  std::array<uint8_t, 16> raw{};
  for (size_t i = 0; i + 4 < v.size(); ++i) raw[i] = static_cast<uint8_t>(v[4 + i] ^ mask[i]);
  std::array<char, INET6_ADDRSTRLEN> buf{};
  inet_ntop(v[1] == 1 ? AF_INET : AF_INET6, raw.data(), buf.data(), buf.size());
  return Address{buf.data(), static_cast<uint16_t>(get16(&v[2]) ^ (kCookie >> 16))};
}

class Client {
 public:
  Client(std::string host, uint16_t port, std::string user, std::string pass)
      : host_(std::move(host)),
        port_(port),
        user_(std::move(user)),
        pass_(std::move(pass)),
        sock_(host_.find(':') == std::string::npos ? "127.0.0.1" : "::1", 0),
        rng_(std::random_device{}()),
        buf_(65536) {}
  bool ok() const { return sock_.ok(); }

  Bytes start(uint16_t type) {
    Bytes r(kHeader, 0);
    put16(r, 0, type);
    put16(r, 4, static_cast<uint16_t>(kCookie >> 16));
    put16(r, 6, static_cast<uint16_t>(kCookie));
    for (size_t i = 8; i < kHeader; ++i) r[i] = static_cast<uint8_t>(rng_());
    return r;
  }
  /// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY (RFC 8489 sections 9.2 and 14.5).
  void sign(Bytes& r) {
    add_attr(r, kUsername, Bytes(user_.begin(), user_.end()));
    add_attr(r, kRealm, Bytes(realm_.begin(), realm_.end()));
    add_attr(r, kNonce, Bytes(nonce_.begin(), nonce_.end()));
    const std::string in = user_ + ":" + realm_ + ":" + pass_;
    std::array<unsigned char, EVP_MAX_MD_SIZE> key{}, mac{};
    unsigned int klen = 0, mlen = 0;
    EVP_Digest(in.data(), in.size(), key.data(), &klen, EVP_md5(), nullptr);
    const size_t covered = r.size();
    put16(r, 2, static_cast<uint16_t>(covered - kHeader + 24));
    HMAC(EVP_sha1(), key.data(), static_cast<int>(klen), r.data(), covered, mac.data(), &mlen);
    add_attr(r, kIntegrity, Bytes(mac.begin(), mac.begin() + mlen));
  }
  /// A request with `attrs`: signed (after a first unsigned round for the nonce), retried on
  /// 401/438 with the fresh nonce once. nullopt when nothing answered (5 x 500 ms).
  std::optional<Message> request(uint16_t method, const std::function<void(Bytes&)>& attrs) {
    std::optional<Message> m;
    for (int round = 0; round < 2; ++round) {
      Bytes r = start(method);
      attrs(r);
      if (!nonce_.empty()) sign(r);
      m = exchange(r);
      if (!m || (m->code != 401 && m->code != 438)) break;
      for (const auto& [t, v] : m->attrs) {
        if (t == kRealm) realm_.assign(v.begin(), v.end());
        if (t == kNonce) nonce_.assign(v.begin(), v.end());
      }
    }
    return m;
  }
  void send(const Bytes& b) { sock_.send_to(host_, port_, b.data(), b.size()); }
  /// The next STUN message of `type` within timeout_ms (transaction id `tid` if given).
  std::optional<Message> receive(uint16_t type, int timeout_ms, const Bytes* tid,
                                 Bytes* tid_out = nullptr) {
    while (const auto got = sock_.receive(buf_, timeout_ms)) {
      if (*got < kHeader || get16(&buf_[0]) != type) continue;
      if (tid && !std::equal(buf_.begin() + 8, buf_.begin() + kHeader, tid->begin() + 8)) continue;
      Message m;
      m.type = type;
      for (size_t at = kHeader; at + 4 <= *got;) {
        const uint16_t t = get16(&buf_[at]), len = get16(&buf_[at + 2]);
        if (at + 4 + len > *got) break;
        m.attrs.emplace_back(t, Bytes(buf_.begin() + static_cast<long>(at + 4),
                                      buf_.begin() + static_cast<long>(at + 4 + len)));
        if (t == kErrorCode && len >= 4) m.code = (buf_[at + 6] & 7) * 100 + buf_[at + 7];
        at += 4 + ((len + 3u) & ~3u);
      }
      if (tid_out) tid_out->assign(buf_.begin(), buf_.begin() + kHeader);
      return m;
    }
    return std::nullopt;
  }

 private:
  std::optional<Message> exchange(const Bytes& r) {
    const uint16_t success = static_cast<uint16_t>(get16(r.data()) | 0x0100);
    const uint16_t error = static_cast<uint16_t>(get16(r.data()) | 0x0110);
    for (int attempt = 0; attempt < 5; ++attempt) {
      send(r);
      while (const auto got = sock_.receive(buf_, 500)) {
        if (*got < kHeader || !std::equal(buf_.begin() + 8, buf_.begin() + kHeader, r.begin() + 8))
          continue;
        const uint16_t t = get16(&buf_[0]);
        if (t != success && t != error) continue;
        Bytes copy(buf_.begin(), buf_.begin() + static_cast<long>(*got));
        Message m;
        m.type = t;
        for (size_t at = kHeader; at + 4 <= copy.size();) {
          const uint16_t at_t = get16(&copy[at]), len = get16(&copy[at + 2]);
          if (at + 4 + len > copy.size()) break;
          m.attrs.emplace_back(at_t, Bytes(copy.begin() + static_cast<long>(at + 4),
                                           copy.begin() + static_cast<long>(at + 4 + len)));
          if (at_t == kErrorCode && len >= 4) m.code = (copy[at + 6] & 7) * 100 + copy[at + 7];
          at += 4 + ((len + 3u) & ~3u);
        }
        tid_ = Bytes(copy.begin(), copy.begin() + kHeader);
        return m;
      }
    }
    return std::nullopt;
  }

 public:
  Bytes tid_;  ///< header of the last response (its transaction id decodes XOR addresses)

 private:
  std::string host_;
  uint16_t port_;
  std::string user_, pass_, realm_, nonce_;
  UdpSocket sock_;
  std::mt19937 rng_;
  Bytes buf_;
};

}  // namespace

int run_dual(const std::string& host, uint16_t port, uint16_t peer4_port, uint16_t peer6_port,
             const std::string& user, const std::string& pass) {
  Client c(host, port, user, pass);
  if (!c.ok()) return 1;
  auto fail = [](const char* what, int code) {
    std::printf("FAIL %s (%d)\n", what, code);
    return 1;
  };
  // RFC 8656 section 7.2: REQUESTED-TRANSPORT UDP and ADDITIONAL-ADDRESS-FAMILY IPv6.
  const auto alloc = c.request(kAllocate, [](Bytes& r) {
    add_attr(r, kTransport, Bytes{17, 0, 0, 0});
    add_attr(r, kAdditionalFamily, Bytes{2, 0, 0, 0});
  });
  if (!alloc) return fail("allocate: no answer", 0);
  if (alloc->code != 200) return fail("allocate", alloc->code);
  if (!alloc->all(kAddressError).empty())
    return fail("allocate: ADDRESS-ERROR-CODE in the response", 0);
  std::vector<Address> relays;
  for (const auto& v : alloc->all(kRelayed)) {
    if (const auto a = decode_address(v, &c.tid_[8])) relays.push_back(*a);
  }
  for (const auto& r : relays) std::printf("relayed %s\n", r.text().c_str());
  if (relays.size() != 2 || relays[0].ip != "127.0.0.1" || relays[1].ip != "::1") {
    return fail("allocate: expected XOR-RELAYED-ADDRESS 127.0.0.1 then ::1",
                static_cast<int>(relays.size()));
  }
  const Address peer4{"127.0.0.1", peer4_port}, peer6{"::1", peer6_port};
  const auto perm = c.request(kCreatePermission, [&](Bytes& r) {
    add_attr(r, kPeer, xor_address(peer4, r));
    add_attr(r, kPeer, xor_address(peer6, r));
  });
  if (!perm || perm->code != 200)
    return fail("CreatePermission for both peers", perm ? perm->code : 0);

  // Send indications to each peer (echo servers); Data indications must come back from each,
  // naming the peer (RFC 8656 sections 11.2 and 11.3).
  constexpr int kRounds = 10;
  int echoed4 = 0, echoed6 = 0;
  for (int i = 0; i < kRounds; ++i) {
    for (const Address* peer : {&peer4, &peer6}) {
      Bytes ind = c.start(kSendIndication);
      const std::string payload = "dual-" + std::to_string(i) + "-" + peer->ip;
      add_attr(ind, kPeer, xor_address(*peer, ind));
      add_attr(ind, kData, Bytes(payload.begin(), payload.end()));
      c.send(ind);
      Bytes header;
      const auto data = c.receive(kDataIndication, 2000, nullptr, &header);
      if (!data) continue;
      const auto from = data->all(kPeer);
      const auto body = data->all(kData);
      if (from.size() != 1 || body.size() != 1) continue;
      const auto who = decode_address(from[0], &header[8]);
      if (!who || who->ip != peer->ip || who->port != peer->port) continue;
      if (std::string(body[0].begin(), body[0].end()) != payload) continue;
      ++(peer == &peer4 ? echoed4 : echoed6);
    }
  }
  std::printf("echo ipv4 %d/%d\necho ipv6 %d/%d\n", echoed4, kRounds, echoed6, kRounds);
  if (echoed4 != kRounds || echoed6 != kRounds)
    return fail("relaying both families", echoed4 + echoed6);

  // RFC 8656 section 8: a Refresh with REQUESTED-ADDRESS-FAMILY IPv6 and LIFETIME 0 deletes
  // only the IPv6 relayed address; an IPv6 permission then gets 443, IPv4 still relays.
  const auto del6 = c.request(kRefresh, [](Bytes& r) {
    add_attr(r, kRequestedFamily, Bytes{2, 0, 0, 0});
    add_attr(r, kLifetime, Bytes{0, 0, 0, 0});
  });
  if (!del6 || del6->code != 200)
    return fail("Refresh deleting the IPv6 relay", del6 ? del6->code : 0);
  const auto perm6 =
      c.request(kCreatePermission, [&](Bytes& r) { add_attr(r, kPeer, xor_address(peer6, r)); });
  std::printf("permission ipv6 after delete %d\n", perm6 ? perm6->code : 0);
  if (!perm6 || perm6->code != 443)
    return fail("IPv6 permission after deleting the IPv6 relay", perm6 ? perm6->code : 0);
  const auto perm4 =
      c.request(kCreatePermission, [&](Bytes& r) { add_attr(r, kPeer, xor_address(peer4, r)); });
  if (!perm4 || perm4->code != 200)
    return fail("IPv4 permission after deleting the IPv6 relay", perm4 ? perm4->code : 0);
  const auto end = c.request(kRefresh, [](Bytes& r) { add_attr(r, kLifetime, Bytes{0, 0, 0, 0}); });
  if (!end || end->code != 200) return fail("Refresh 0", end ? end->code : 0);
  std::printf("PASS dual allocation\n");
  return 0;
}

}  // namespace callrelay::integ
