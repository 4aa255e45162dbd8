// TURN client and ICE-style Binding messages for the media quality tests (see the header).
#include "tests/integration/tools/media_turn_client.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kBindingRequest = 0x0001, kBindingSuccess = 0x0101;
constexpr uint16_t kAllocate = 0x0003, kRefresh = 0x0004, kChannelBind = 0x0009;
constexpr uint16_t kAttrUsername = 0x0006, kAttrIntegrity = 0x0008, kAttrErrorCode = 0x0009;
constexpr uint16_t kAttrChannelNumber = 0x000C, kAttrLifetime = 0x000D;
constexpr uint16_t kAttrXorPeer = 0x0012, kAttrRealm = 0x0014, kAttrNonce = 0x0015;
constexpr uint16_t kAttrXorRelayed = 0x0016, kAttrRequestedTransport = 0x0019;
constexpr uint16_t kAttrXorMapped = 0x0020, kAttrPriority = 0x0024;
constexpr uint16_t kAttrFingerprint = 0x8028, kAttrIceControlled = 0x8029;
constexpr uint16_t kAttrIceControlling = 0x802A;
constexpr uint32_t kCookie = 0x2112A442;
constexpr uint32_t kFingerprintXor = 0x5354554E;  // RFC 8489 section 14.7
constexpr size_t kHeader = 20;
constexpr size_t kIntegritySize = 24;     // attribute header + HMAC-SHA1
constexpr size_t kFingerprintSize = 8;    // attribute header + CRC-32
constexpr size_t kChannelDataHeader = 4;  // RFC 8656 section 12.4

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}

Bytes new_message(uint16_t type, const TransactionId& id) {
  Bytes m(kHeader, 0);
  put16(m, 0, type);
  put16(m, 4, static_cast<uint16_t>(kCookie >> 16));
  put16(m, 6, static_cast<uint16_t>(kCookie));
  std::copy(id.begin(), id.end(), m.begin() + 8);
  return m;
}

/// RFC 8489 section 14.5: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, whose length
/// field already counts the attribute.
void add_integrity(Bytes& msg, const Bytes& key) {
  const size_t covered = msg.size();
  put16(msg, 2, static_cast<uint16_t>(covered - kHeader + kIntegritySize));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), msg.data(), covered, mac.data(), &len);
  add_attr(msg, kAttrIntegrity, Bytes(mac.begin(), mac.begin() + len));
}

/// CRC-32 of ISO 3309 / ITU-T V.42 (the polynomial RFC 8489 section 14.7 names), bitwise.
uint32_t crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/// RFC 8489 section 14.7: CRC-32 of the message up to FINGERPRINT, XORed with 0x5354554E.
void add_fingerprint(Bytes& msg) {
  const size_t covered = msg.size();
  put16(msg, 2, static_cast<uint16_t>(covered - kHeader + kFingerprintSize));
  add_attr(msg, kAttrFingerprint, be32(crc32(msg.data(), covered) ^ kFingerprintXor));
}

/// RFC 8489 section 14.2 XOR-MAPPED-ADDRESS layout (also XOR-PEER- and XOR-RELAYED-ADDRESS).
std::optional<Bytes> xor_address(const Ipv4Endpoint& ep) {
  in_addr addr{};
  if (inet_pton(AF_INET, ep.ip.c_str(), &addr) != 1) return std::nullopt;
  const auto x_port = static_cast<uint16_t>(ep.port ^ (kCookie >> 16));
  Bytes v{0, 0x01, static_cast<uint8_t>(x_port >> 8), static_cast<uint8_t>(x_port)};
  const Bytes a = be32(ntohl(addr.s_addr) ^ kCookie);
  v.insert(v.end(), a.begin(), a.end());
  return v;
}

/// The inverse, IPv4 only; nothing for another family or a short value.
std::optional<Ipv4Endpoint> read_xor_address(const uint8_t* value, size_t len) {
  if (len != 8 || value[1] != 0x01) return std::nullopt;
  const auto port = static_cast<uint16_t>(get16(value + 2) ^ (kCookie >> 16));
  const uint32_t host = ((uint32_t{value[4]} << 24) | (uint32_t{value[5]} << 16) |
                         (uint32_t{value[6]} << 8) | value[7]) ^
                        kCookie;
  in_addr addr{};
  addr.s_addr = htonl(host);
  char buf[INET_ADDRSTRLEN] = {};
  if (inet_ntop(AF_INET, &addr, buf, sizeof(buf)) == nullptr) return std::nullopt;
  return Ipv4Endpoint{buf, port};
}

/// RFC 8489 section 9.2.2: key = MD5(username ":" realm ":" password).
Bytes long_term_key(const std::string& user, const std::string& realm, const std::string& pass) {
  const std::string input = user + ":" + realm + ":" + pass;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md.data(), &len, EVP_md5(), nullptr);
  return Bytes(md.begin(), md.begin() + len);
}

}  // namespace

std::optional<StunInfo> parse_stun(std::span<const uint8_t> d) {
  if (d.size() < kHeader || (d[0] & 0xC0) != 0) return std::nullopt;
  if (get16(d.data() + 4) != (kCookie >> 16) || get16(d.data() + 6) != (kCookie & 0xFFFF)) {
    return std::nullopt;
  }
  const size_t length = get16(d.data() + 2);
  if (length % 4 != 0 || kHeader + length != d.size()) return std::nullopt;
  StunInfo info;
  const uint16_t type = get16(d.data());
  info.kind = type == kBindingRequest   ? StunInfo::Kind::kBindingRequest
              : type == kBindingSuccess ? StunInfo::Kind::kBindingSuccess
                                        : StunInfo::Kind::kOther;
  std::copy(d.begin() + 8, d.begin() + kHeader, info.id.begin());
  return info;
}

std::vector<uint8_t> ice_binding_request(const TransactionId& id, const std::string& username,
                                         const std::string& password, bool controlling) {
  Bytes m = new_message(kBindingRequest, id);
  add_attr(m, kAttrUsername, text(username));
  add_attr(m, kAttrPriority, be32(0x00FFFFFF));  // a relayed candidate's (RFC 8445 5.1.2.1)
  Bytes tie_breaker = be32(0x01020304);
  const Bytes low = be32(controlling ? 0x05060708 : 0x0A0B0C0D);
  tie_breaker.insert(tie_breaker.end(), low.begin(), low.end());
  add_attr(m, controlling ? kAttrIceControlling : kAttrIceControlled, tie_breaker);
  add_integrity(m, text(password));
  add_fingerprint(m);
  return m;
}

std::vector<uint8_t> ice_binding_success(const TransactionId& id, const Ipv4Endpoint& mapped,
                                         const std::string& password) {
  Bytes m = new_message(kBindingSuccess, id);
  if (const auto addr = xor_address(mapped)) add_attr(m, kAttrXorMapped, *addr);
  add_integrity(m, text(password));
  add_fingerprint(m);
  return m;
}

MediaTurnClient::MediaTurnClient(std::string host, uint16_t port, std::string username,
                                 std::string password)
    : host_(std::move(host)),
      port_(port),
      username_(std::move(username)),
      password_(std::move(password)),
      sock_("127.0.0.1", 0),
      rng_(std::random_device{}()),
      buf_(65536) {}

MediaTurnClient::Bytes MediaTurnClient::new_request(uint16_t method) {
  TransactionId id{};
  for (auto& b : id) b = static_cast<uint8_t>(rng_());
  return new_message(method, id);
}

void MediaTurnClient::sign(Bytes& request) {
  add_attr(request, kAttrUsername, text(username_));
  add_attr(request, kAttrRealm, text(realm_));
  add_attr(request, kAttrNonce, text(nonce_));
  add_integrity(request, key_);
}

/// Sends the request until a response with its transaction id comes (other datagrams are
/// skipped); nothing after 5 tries of 500 ms. Attributes are read only within the datagram.
std::optional<MediaTurnClient::Response> MediaTurnClient::exchange(const Bytes& request) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    sock_.send_to(host_, port_, request.data(), request.size());
    while (const auto got = sock_.receive(buf_, 500)) {
      if (*got < kHeader || (buf_[0] & 0xC0) != 0 ||
          !std::equal(buf_.begin() + 8, buf_.begin() + kHeader, request.begin() + 8)) {
        continue;
      }
      Response resp;
      resp.type = get16(buf_.data());
      for (size_t at = kHeader; at + 4 <= *got;) {
        const uint16_t type = get16(buf_.data() + at);
        const size_t len = get16(buf_.data() + at + 2);
        if (at + 4 + len > *got) break;
        const uint8_t* value = buf_.data() + at + 4;
        if (type == kAttrErrorCode && len >= 4) resp.code = (value[2] & 0x7) * 100 + value[3];
        if (type == kAttrRealm) resp.realm.assign(value, value + len);
        if (type == kAttrNonce) resp.nonce.assign(value, value + len);
        if (type == kAttrXorRelayed) resp.relayed = read_xor_address(value, len);
        if (type == kAttrXorMapped) resp.mapped = read_xor_address(value, len);
        at += 4 + ((len + 3) & ~size_t{3});
      }
      if ((resp.type & 0x0110) == 0x0110 && resp.code == 200) resp.code = 0;  // error, no code
      return resp;
    }
  }
  return std::nullopt;
}

/// A signed request; on 438 (stale nonce) once more with the fresh nonce (RFC 8489 9.2.4).
std::optional<MediaTurnClient::Response> MediaTurnClient::authenticated(
    uint16_t method, const std::vector<std::pair<uint16_t, Bytes>>& attrs) {
  std::optional<Response> resp;
  for (int round = 0; round < 2; ++round) {
    Bytes req = new_request(method);
    for (const auto& [type, value] : attrs) add_attr(req, type, value);
    sign(req);
    resp = exchange(req);
    if (!resp || resp->code != 438 || resp->nonce.empty()) break;
    nonce_ = resp->nonce;
  }
  return resp;
}

std::optional<int> MediaTurnClient::allocate() {
  const Bytes udp{17, 0, 0, 0};  // RFC 8656 section 14.7 REQUESTED-TRANSPORT: UDP
  Bytes first = new_request(kAllocate);
  add_attr(first, kAttrRequestedTransport, udp);
  const auto challenge = exchange(first);
  if (!challenge) return std::nullopt;
  if (challenge->code != 401) return challenge->code;
  if (challenge->realm.empty() || challenge->nonce.empty()) {
    std::fprintf(stderr, "integ_tool: 401 without REALM/NONCE\n");
    return challenge->code;
  }
  realm_ = challenge->realm;
  nonce_ = challenge->nonce;
  key_ = long_term_key(username_, realm_, password_);
  const auto resp = authenticated(kAllocate, {{kAttrRequestedTransport, udp}});
  if (!resp) return std::nullopt;
  if (resp->code == 200) {
    if (!resp->relayed || !resp->mapped) {
      std::fprintf(stderr,
                   "integ_tool: Allocate success without IPv4 XOR-RELAYED-ADDRESS "
                   "and XOR-MAPPED-ADDRESS\n");
      return 0;
    }
    relayed_ = *resp->relayed;
    mapped_ = *resp->mapped;
  }
  return resp->code;
}

std::optional<int> MediaTurnClient::channel_bind(uint16_t channel, const Ipv4Endpoint& peer) {
  const auto addr = xor_address(peer);
  if (!addr) {
    std::fprintf(stderr, "integ_tool: peer %s is not an IPv4 address\n", peer.ip.c_str());
    return std::nullopt;
  }
  const Bytes number{static_cast<uint8_t>(channel >> 8), static_cast<uint8_t>(channel), 0, 0};
  const auto resp =
      authenticated(kChannelBind, {{kAttrChannelNumber, number}, {kAttrXorPeer, *addr}});
  return resp ? std::optional<int>(resp->code) : std::nullopt;
}

std::optional<int> MediaTurnClient::refresh(uint32_t lifetime) {
  const auto resp = authenticated(kRefresh, {{kAttrLifetime, be32(lifetime)}});
  return resp ? std::optional<int>(resp->code) : std::nullopt;
}

bool MediaTurnClient::send_channel_data(uint16_t channel, std::span<const uint8_t> payload) {
  Bytes msg(kChannelDataHeader);
  put16(msg, 0, channel);
  put16(msg, 2, static_cast<uint16_t>(payload.size()));
  msg.insert(msg.end(), payload.begin(), payload.end());
  return sock_.send_to(host_, port_, msg.data(), msg.size());
}

std::optional<std::span<const uint8_t>> MediaTurnClient::receive_channel_data(int timeout_ms) {
  const auto got = sock_.receive(buf_, timeout_ms);
  // RFC 8656 section 12.4: the first two bits 0b01 mark ChannelData; its length never trusted.
  if (!got || *got < kChannelDataHeader || (buf_[0] & 0xC0) != 0x40) return std::nullopt;
  const size_t len = std::min<size_t>(get16(buf_.data() + 2), *got - kChannelDataHeader);
  return std::span<const uint8_t>(buf_.data() + kChannelDataHeader, len);
}

}  // namespace callrelay::integ
