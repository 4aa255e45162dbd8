// Minimal TURN client for the credential tests, independent of the project's codec.
#include "tests/integration/tools/allocate.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdio>
#include <optional>
#include <random>
#include <vector>

#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kAllocate = 0x0003;
constexpr uint16_t kRefresh = 0x0004;
constexpr uint16_t kAttrUsername = 0x0006;
constexpr uint16_t kAttrMessageIntegrity = 0x0008;
constexpr uint16_t kAttrErrorCode = 0x0009;
constexpr uint16_t kAttrLifetime = 0x000D;
constexpr uint16_t kAttrRealm = 0x0014;
constexpr uint16_t kAttrNonce = 0x0015;
constexpr uint16_t kAttrRequestedTransport = 0x0019;
constexpr size_t kHeader = 20;

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Bytes& b, size_t at) { return static_cast<uint16_t>((b[at] << 8) | b[at + 1]); }

struct Request {
  Bytes bytes;
  void attr(uint16_t type, const Bytes& value) {
    const size_t at = bytes.size();
    bytes.resize(at + 4);
    put16(bytes, at, type);
    put16(bytes, at + 2, static_cast<uint16_t>(value.size()));
    bytes.insert(bytes.end(), value.begin(), value.end());
    while (bytes.size() % 4 != 0) bytes.push_back(0);
    put16(bytes, 2, static_cast<uint16_t>(bytes.size() - kHeader));
  }
  void attr(uint16_t type, const std::string& value) { attr(type, Bytes(value.begin(), value.end())); }
};

Request new_request(uint16_t type, std::mt19937& rng) {
  Request r;
  r.bytes.assign(kHeader, 0);
  put16(r.bytes, 0, type);
  put16(r.bytes, 4, 0x2112);
  put16(r.bytes, 6, 0xA442);
  for (size_t i = 8; i < kHeader; ++i) r.bytes[i] = static_cast<uint8_t>(rng());
  return r;
}

/// RFC 8489 section 14.5: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the length
/// field already counting the MESSAGE-INTEGRITY attribute; key = MD5(username:realm:password).
void add_integrity(Request& r, const Bytes& key) {
  const size_t covered = r.bytes.size();
  put16(r.bytes, 2, static_cast<uint16_t>(covered - kHeader + 24));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), r.bytes.data(), covered, mac.data(),
       &len);
  r.attr(kAttrMessageIntegrity, Bytes(mac.begin(), mac.begin() + len));
}

Bytes long_term_key(const std::string& user, const std::string& realm, const std::string& pass) {
  const std::string input = user + ":" + realm + ":" + pass;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md.data(), &len, EVP_md5(), nullptr);
  return Bytes(md.begin(), md.begin() + len);
}

struct Response {
  uint16_t type = 0;
  int code = 200;
  std::string realm, nonce;
};

std::optional<Response> exchange(UdpSocket& sock, const std::string& host, uint16_t port,
                                 const Request& req) {
  Bytes buf(2048);
  for (int attempt = 0; attempt < 5; ++attempt) {
    sock.send_to(host, port, req.bytes.data(), req.bytes.size());
    while (const auto got = sock.receive(buf, 500)) {
      if (*got < kHeader || !std::equal(buf.begin() + 8, buf.begin() + kHeader,
                                        req.bytes.begin() + 8)) {
        continue;
      }
      Response resp;
      resp.type = get16(buf, 0);
      for (size_t at = kHeader; at + 4 <= *got;) {
        const uint16_t type = get16(buf, at);
        const uint16_t len = get16(buf, at + 2);
        if (at + 4 + len > *got) break;
        const auto value = buf.begin() + static_cast<long>(at + 4);
        if (type == kAttrErrorCode && len >= 4) resp.code = (value[2] & 0x7) * 100 + value[3];
        if (type == kAttrRealm) resp.realm.assign(value, value + len);
        if (type == kAttrNonce) resp.nonce.assign(value, value + len);
        at += 4 + ((len + 3u) & ~3u);
      }
      if ((resp.type & 0x0110) == 0x0110 && resp.code == 200) resp.code = 0;  // error without code
      return resp;
    }
  }
  return std::nullopt;
}

}  // namespace

int run_allocate(const std::string& host, uint16_t port, const std::string& username,
                 const std::string& password) {
  UdpSocket sock(host.find(':') == std::string::npos ? "127.0.0.1" : "::1", 0);
  if (!sock.ok()) return 1;
  std::mt19937 rng(std::random_device{}());
  Request first = new_request(kAllocate, rng);
  first.attr(kAttrRequestedTransport, Bytes{17, 0, 0, 0});
  auto resp = exchange(sock, host, port, first);
  if (!resp) return 1;
  // RFC 8656 section 7.2 / RFC 8489 section 9.2.4: retry with the realm and nonce of the 401,
  // and once more on 438 (stale nonce) with the fresh nonce.
  for (int round = 0; round < 2 && (resp->code == 401 || resp->code == 438); ++round) {
    if (resp->realm.empty() || resp->nonce.empty()) {
      std::fprintf(stderr, "integ_tool: %d without REALM/NONCE\n", resp->code);
      break;
    }
    const Bytes key = long_term_key(username, resp->realm, password);
    Request req = new_request(kAllocate, rng);
    req.attr(kAttrRequestedTransport, Bytes{17, 0, 0, 0});
    req.attr(kAttrUsername, username);
    req.attr(kAttrRealm, resp->realm);
    req.attr(kAttrNonce, resp->nonce);
    add_integrity(req, key);
    const std::string realm = resp->realm, nonce = resp->nonce;
    resp = exchange(sock, host, port, req);
    if (!resp) return 1;
    if (resp->code == 200) {  // release the allocation at once (Refresh with LIFETIME 0)
      Request refresh = new_request(kRefresh, rng);
      refresh.attr(kAttrLifetime, Bytes{0, 0, 0, 0});
      refresh.attr(kAttrUsername, username);
      refresh.attr(kAttrRealm, realm);
      refresh.attr(kAttrNonce, nonce);
      add_integrity(refresh, key);
      exchange(sock, host, port, refresh);
    }
    if (resp->code != 438) break;
  }
  std::printf("%d\n", resp->code);
  return 0;
}

}  // namespace callrelay::integ
