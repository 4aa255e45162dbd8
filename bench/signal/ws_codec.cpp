#include "bench/signal/ws_codec.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace callrelay::bench::ws {
namespace {

/// RFC 6455 section 1.3: the GUID appended to the client's key.
constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// RFC 6455 section 5.5: control frames carry at most 125 bytes.
constexpr uint64_t kMaxControlPayload = 125;

std::string lower(std::string_view text) {
  std::string s(text);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

/// True when the comma-separated header value lists `token` (case-insensitive).
bool lists_token(std::string_view value, std::string_view token) {
  const std::string v = lower(value);
  size_t pos = 0;
  while (pos <= v.size()) {
    const size_t comma = std::min(v.find(',', pos), v.size());
    if (trim(std::string_view(v).substr(pos, comma - pos)) == token) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

std::string base64(std::span<const uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string base64url(std::span<const uint8_t> bytes) {
  std::string s = base64(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

std::string accept_for_key(std::string_view key) {
  const std::string text = std::string(key) + std::string(kAcceptGuid);
  std::array<uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 failed: cannot check Sec-WebSocket-Accept");
  }
  return base64(std::span<const uint8_t>(digest.data(), size));
}

void append_client_frame(std::string& out, Opcode op, std::string_view payload,
                         const std::array<uint8_t, 4>& mask) {
  out.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(op)));  // FIN, no RSV bits
  const uint64_t n = payload.size();
  if (n <= 125) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  out.append(reinterpret_cast<const char*>(mask.data()), mask.size());
  const size_t start = out.size();
  out.append(payload);
  for (size_t i = 0; i < payload.size(); ++i) {
    out[start + i] = static_cast<char>(static_cast<uint8_t>(out[start + i]) ^ mask[i % 4]);
  }
}

ParsedHeader parse_server_header(std::span<const uint8_t> buf, uint64_t max_payload) {
  ParsedHeader r;
  if (buf.size() < 2) return r;
  const auto fail = [&r](std::string why) {
    r.status = ParseStatus::kError;
    r.error = std::move(why);
    return r;
  };
  const uint8_t b0 = buf[0], b1 = buf[1];
  if ((b0 & 0x70) != 0) return fail("RSV bits set without a negotiated extension (5.2)");
  if ((b1 & 0x80) != 0) return fail("masked server frame (5.1: servers never mask)");
  const uint8_t op = b0 & 0x0F;
  if (op > 0x2 && (op < 0x8 || op > 0xA)) return fail("reserved opcode " + std::to_string(op));
  r.header.fin = (b0 & 0x80) != 0;
  r.header.opcode = static_cast<Opcode>(op);
  const uint8_t len7 = b1 & 0x7F;
  size_t header = 2;
  uint64_t len = len7;
  if (len7 == 126) {
    if (buf.size() < 4) return r;
    len = (uint64_t{buf[2]} << 8) | buf[3];
    if (len < 126) return fail("16-bit length below 126 (5.2: minimal encoding)");
    header = 4;
  } else if (len7 == 127) {
    if (buf.size() < 10) return r;
    len = 0;
    for (size_t i = 2; i < 10; ++i) len = (len << 8) | buf[i];
    if ((len >> 63) != 0) return fail("64-bit length with its top bit set (5.2)");
    if (len <= 0xFFFF) return fail("64-bit length below 65536 (5.2: minimal encoding)");
    header = 10;
  }
  if (op >= 0x8 && (!r.header.fin || len > kMaxControlPayload)) {
    return fail("control frame fragmented or longer than 125 bytes (5.5)");
  }
  if (len > max_payload) return fail("frame of " + std::to_string(len) + " bytes: too large");
  r.header.payload_size = len;
  r.header.header_size = header;
  r.status = ParseStatus::kOk;
  return r;
}

std::string upgrade_request(std::string_view host, std::string_view target, std::string_view key) {
  std::string req;
  req.reserve(256 + target.size());
  req.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host);
  req.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
  req.append(key).append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
  return req;
}

UpgradeAnswer check_upgrade_answer(std::string_view head, std::string_view key) {
  UpgradeAnswer a;
  const size_t eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (!status_line.starts_with("HTTP/1.1 ") || status_line.size() < 12) {
    a.error = "not an HTTP/1.1 status line: '" + std::string(status_line.substr(0, 80)) + "'";
    return a;
  }
  for (size_t i = 9; i < 12; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(status_line[i]))) {
      a.error = "malformed status line: '" + std::string(status_line.substr(0, 80)) + "'";
      return a;
    }
    a.status = a.status * 10 + (status_line[i] - '0');
  }
  if (a.status != 101) {
    a.error = "HTTP " + std::to_string(a.status) + " instead of 101";
    return a;
  }
  bool upgrade = false, connection = false, accept = false;
  const std::string expected = accept_for_key(key);
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    const size_t end = std::min(head.find("\r\n", pos), head.size());
    const std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "upgrade") upgrade = lower(value) == "websocket";
    if (name == "connection") connection = lists_token(value, "upgrade");
    if (name == "sec-websocket-accept") accept = value == expected;
  }
  // RFC 6455 section 4.1, the client's checks of the server's handshake (items 2 to 4).
  if (!upgrade)
    a.error = "101 without Upgrade: websocket";
  else if (!connection)
    a.error = "101 without Connection: Upgrade";
  else if (!accept)
    a.error = "101 with a wrong or missing Sec-WebSocket-Accept";
  a.accepted = a.error.empty();
  return a;
}

}  // namespace callrelay::bench::ws
