// Minimal TURN client for the integration test helpers, independent of the project's codec.
#include "tests/integration/tools/turn_client.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kAllocate = 0x0003;
constexpr uint16_t kRefresh = 0x0004;
constexpr uint16_t kCreatePermission = 0x0008;
constexpr uint16_t kChannelBind = 0x0009;
constexpr uint16_t kAttrUsername = 0x0006;
constexpr uint16_t kAttrMessageIntegrity = 0x0008;
constexpr uint16_t kAttrErrorCode = 0x0009;
constexpr uint16_t kAttrChannelNumber = 0x000C;
constexpr uint16_t kAttrLifetime = 0x000D;
constexpr uint16_t kAttrXorPeerAddress = 0x0012;
constexpr uint16_t kAttrRealm = 0x0014;
constexpr uint16_t kAttrNonce = 0x0015;
constexpr uint16_t kAttrXorRelayedAddress = 0x0016;
constexpr uint16_t kAttrRequestedTransport = 0x0019;
constexpr uint16_t kAttrXorMappedAddress = 0x0020;
constexpr uint16_t kAttrMessageIntegritySha256 = 0x001C;
constexpr uint16_t kAttrPasswordAlgorithm = 0x001D;
constexpr uint16_t kAttrPasswordAlgorithms = 0x8002;
constexpr uint16_t kAlgorithmSha256 = 0x0002;  // RFC 8489 section 18.5
constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr size_t kHeader = 20;
constexpr size_t kChannelDataHeader = 4;  // RFC 8656 section 12.4: channel number, length

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

void add_attr(Bytes& msg, uint16_t type, const Bytes& value) {
  const size_t at = msg.size();
  msg.resize(at + 4);
  put16(msg, at, type);
  put16(msg, at + 2, static_cast<uint16_t>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(0);
  put16(msg, 2, static_cast<uint16_t>(msg.size() - kHeader));
}
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

/// RFC 8489 section 14.2: XOR-MAPPED-ADDRESS layout, IPv4 only (the tests' peers are loopback).
std::optional<Bytes> xor_address(const std::string& ip, uint16_t port) {
  in_addr addr{};
  if (inet_pton(AF_INET, ip.c_str(), &addr) != 1) return std::nullopt;
  const uint32_t x_addr = ntohl(addr.s_addr) ^ kMagicCookie;
  const auto x_port = static_cast<uint16_t>(port ^ (kMagicCookie >> 16));
  Bytes v{0, 0x01, static_cast<uint8_t>(x_port >> 8), static_cast<uint8_t>(x_port)};
  const Bytes a = be32(x_addr);
  v.insert(v.end(), a.begin(), a.end());
  return v;
}

/// The inverse, IPv4 only; nothing for another family or a short value.
std::optional<Ipv4Endpoint> read_xor_address(const uint8_t* value, size_t len) {
  if (len != 8 || value[1] != 0x01) return std::nullopt;
  const auto port = static_cast<uint16_t>(((value[2] << 8) | value[3]) ^ (kMagicCookie >> 16));
  const uint32_t host = ((uint32_t{value[4]} << 24) | (uint32_t{value[5]} << 16) |
                         (uint32_t{value[6]} << 8) | value[7]) ^
                        kMagicCookie;
  in_addr addr{};
  addr.s_addr = htonl(host);
  char buf[INET_ADDRSTRLEN] = {};
  if (inet_ntop(AF_INET, &addr, buf, sizeof(buf)) == nullptr) return std::nullopt;
  return Ipv4Endpoint{buf, port};
}

/// RFC 8489 section 9.2.2: key = MD5 (or SHA-256) of username ":" realm ":" password.
Bytes long_term_key(const std::string& user, const std::string& realm, const std::string& pass,
                    bool sha256 = false) {
  const std::string input = user + ":" + realm + ":" + pass;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md.data(), &len, sha256 ? EVP_sha256() : EVP_md5(),
             nullptr);
  return Bytes(md.begin(), md.begin() + len);
}

/// Whether a PASSWORD-ALGORITHMS value (RFC 8489 section 14.11) lists SHA-256.
bool offers_sha256(const Bytes& list) {
  for (size_t at = 0; at + 4 <= list.size();) {
    if (get16(list, at) == kAlgorithmSha256) return true;
    at += 4 + ((get16(list, at + 2) + 3u) & ~3u);
  }
  return false;
}

/// RFC 8489 section 14.6: HMAC-SHA256 over `msg` up to the attribute at `at`, the header
/// length counting that attribute (`len` value bytes).
Bytes hmac_sha256_upto(const Bytes& key, const uint8_t* msg, size_t at, size_t len) {
  Bytes covered(msg, msg + at);
  put16(covered, 2, static_cast<uint16_t>(at - kHeader + 4 + len));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), covered.data(), covered.size(),
       mac.data(), &n);
  return Bytes(mac.begin(), mac.begin() + n);
}

}  // namespace

TurnClient::TurnClient(std::string host, uint16_t port, std::string username, std::string password)
    : host_(std::move(host)),
      port_(port),
      username_(std::move(username)),
      password_(std::move(password)),
      sock_(host_.find(':') == std::string::npos ? "127.0.0.1" : "::1", 0),
      rng_(std::random_device{}()),
      buf_(65536) {}

TurnClient::Bytes TurnClient::new_request(uint16_t method) {
  Bytes r(kHeader, 0);
  put16(r, 0, method);
  put16(r, 4, static_cast<uint16_t>(kMagicCookie >> 16));
  put16(r, 6, static_cast<uint16_t>(kMagicCookie));
  for (size_t i = 8; i < kHeader; ++i) r[i] = static_cast<uint8_t>(rng_());
  return r;
}

/// USERNAME, REALM, NONCE, then RFC 8489 section 14.5 MESSAGE-INTEGRITY: HMAC-SHA1 over the
/// message up to it, with the length field already counting it.
void TurnClient::sign(Bytes& request) {
  add_attr(request, kAttrUsername, text(username_));
  add_attr(request, kAttrRealm, text(realm_));
  add_attr(request, kAttrNonce, text(nonce_));
  if (sha256_) {
    // RFC 8489 section 9.2.3: echo the offered list, name the chosen algorithm, and sign with
    // MESSAGE-INTEGRITY-SHA256 (section 14.6) under the SHA-256 key.
    add_attr(request, kAttrPasswordAlgorithms, offered_algorithms_);
    add_attr(request, kAttrPasswordAlgorithm, Bytes{0, kAlgorithmSha256, 0, 0});
    const size_t at = request.size();
    const Bytes mac = hmac_sha256_upto(key_, request.data(), at, 32);
    add_attr(request, kAttrMessageIntegritySha256, mac);
    return;
  }
  const size_t covered = request.size();
  put16(request, 2, static_cast<uint16_t>(covered - kHeader + 24));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), key_.data(), static_cast<int>(key_.size()), request.data(), covered, mac.data(),
       &len);
  add_attr(request, kAttrMessageIntegrity, Bytes(mac.begin(), mac.begin() + len));
}

/// Sends the request until a response with its transaction id comes (other datagrams, such as
/// ChannelData, are skipped); nothing after 5 tries of 500 ms.
std::optional<TurnClient::Response> TurnClient::exchange(const Bytes& request) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    sock_.send_to(host_, port_, request.data(), request.size());
    while (const auto got = sock_.receive(buf_, 500)) {
      if (*got < kHeader || (buf_[0] & 0xC0) != 0 ||
          !std::equal(buf_.begin() + 8, buf_.begin() + kHeader, request.begin() + 8)) {
        continue;
      }
      Response resp;
      resp.type = get16(buf_, 0);
      for (size_t at = kHeader; at + 4 <= *got;) {
        const uint16_t type = get16(buf_, at);
        const uint16_t len = get16(buf_, at + 2);
        if (at + 4 + len > *got) break;
        const auto value = buf_.begin() + static_cast<long>(at + 4);
        if (type == kAttrErrorCode && len >= 4) resp.code = (value[2] & 0x7) * 100 + value[3];
        if (type == kAttrRealm) resp.realm.assign(value, value + len);
        if (type == kAttrNonce) resp.nonce.assign(value, value + len);
        if (type == kAttrXorRelayedAddress) resp.relayed = read_xor_address(&*value, len);
        if (type == kAttrXorMappedAddress) resp.mapped = read_xor_address(&*value, len);
        if (type == kAttrPasswordAlgorithms) resp.password_algorithms.assign(value, value + len);
        if (type == kAttrMessageIntegritySha256 && len == 32 && !key_.empty()) {
          const Bytes want = hmac_sha256_upto(key_, buf_.data(), at, len);
          resp.integrity_sha256_ok = std::equal(want.begin(), want.end(), value);
        }
        at += 4 + ((len + 3u) & ~3u);
      }
      if ((resp.type & 0x0110) == 0x0110 && resp.code == 200) resp.code = 0;  // error, no code
      if (sha256_ && resp.code == 200) {
        // A success the client cannot authenticate is no success (RFC 8489 section 9.2.5).
        if (resp.integrity_sha256_ok) {
          ++signed_sha256_;
        } else {
          ++unsigned_or_bad_;
          resp.code = 0;
        }
      }
      return resp;
    }
  }
  return std::nullopt;
}

/// A signed request; on 438 (stale nonce) once more with the fresh nonce (RFC 8489 9.2.4).
std::optional<TurnClient::Response> TurnClient::authenticated(
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

std::optional<int> TurnClient::authenticated_code(
    uint16_t method, const std::vector<std::pair<uint16_t, Bytes>>& attrs) {
  const auto resp = authenticated(method, attrs);
  return resp ? std::optional<int>(resp->code) : std::nullopt;
}

std::optional<int> TurnClient::allocate(uint8_t transport) {
  const std::vector<std::pair<uint16_t, Bytes>> attrs{
      {kAttrRequestedTransport, Bytes{transport, 0, 0, 0}}};
  Bytes first = new_request(kAllocate);
  add_attr(first, kAttrRequestedTransport, attrs[0].second);
  const auto resp = exchange(first);
  if (!resp) return std::nullopt;
  if (resp->code != 401) return resp->code;
  if (resp->realm.empty() || resp->nonce.empty()) {
    std::fprintf(stderr, "integ_tool: 401 without REALM/NONCE\n");
    return resp->code;
  }
  realm_ = resp->realm;
  nonce_ = resp->nonce;
  if (sha256_) {
    if (!offers_sha256(resp->password_algorithms)) {
      std::fprintf(stderr, "integ_tool: the 401 offers no SHA-256 in PASSWORD-ALGORITHMS\n");
      return resp->code;
    }
    offered_algorithms_ = resp->password_algorithms;
  }
  key_ = long_term_key(username_, realm_, password_, sha256_);
  const auto done = authenticated(kAllocate, attrs);
  if (!done) return std::nullopt;
  if (done->code == 200) {
    relayed_ = done->relayed.value_or(Ipv4Endpoint{});
    mapped_ = done->mapped.value_or(Ipv4Endpoint{});
  }
  return done->code;
}

std::optional<int> TurnClient::channel_bind(uint16_t channel, const std::string& peer_ip,
                                            uint16_t peer_port) {
  const auto peer = xor_address(peer_ip, peer_port);
  if (!peer) {
    std::fprintf(stderr, "integ_tool: peer %s is not an IPv4 address\n", peer_ip.c_str());
    return std::nullopt;
  }
  Bytes number{static_cast<uint8_t>(channel >> 8), static_cast<uint8_t>(channel), 0, 0};
  return authenticated_code(kChannelBind,
                            {{kAttrChannelNumber, number}, {kAttrXorPeerAddress, *peer}});
}

std::optional<int> TurnClient::create_permission(const std::string& peer_ip, uint16_t peer_port) {
  const auto peer = xor_address(peer_ip, peer_port);
  if (!peer) {
    std::fprintf(stderr, "integ_tool: peer %s is not an IPv4 address\n", peer_ip.c_str());
    return std::nullopt;
  }
  return authenticated_code(kCreatePermission, {{kAttrXorPeerAddress, *peer}});
}

std::optional<int> TurnClient::refresh(uint32_t lifetime) {
  return authenticated_code(kRefresh, {{kAttrLifetime, be32(lifetime)}});
}

bool TurnClient::send_channel_data(uint16_t channel, std::span<const uint8_t> payload) {
  Bytes msg(kChannelDataHeader);
  put16(msg, 0, channel);
  put16(msg, 2, static_cast<uint16_t>(payload.size()));
  msg.insert(msg.end(), payload.begin(), payload.end());
  return sock_.send_to(host_, port_, msg.data(), msg.size());
}

std::optional<std::span<const uint8_t>> TurnClient::receive_channel_data(int timeout_ms) {
  const auto got = sock_.receive(buf_, timeout_ms);
  // RFC 8656 section 12.4: the first two bits 0b01 mark ChannelData; its length never trusted.
  if (!got || *got < kChannelDataHeader || (buf_[0] & 0xC0) != 0x40) return std::nullopt;
  const size_t len = std::min<size_t>(get16(buf_, 2), *got - kChannelDataHeader);
  return std::span<const uint8_t>(buf_.data() + kChannelDataHeader, len);
}

}  // namespace callrelay::integ
