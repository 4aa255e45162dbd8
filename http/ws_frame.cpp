#include "http/ws_frame.hpp"

#include <openssl/evp.h>

#include <array>

namespace callrelay::http {
namespace {

constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr size_t kKeyBytes = 16;            // section 4.1: a 16-byte value, base64-encoded
constexpr size_t kMaxControlPayload = 125;  // section 5.5
constexpr size_t kShortHeader = 2;
constexpr size_t kMaskBytes = 4;
constexpr uint8_t kLen16 = 126;
constexpr uint8_t kLen64 = 127;
constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kRsvBits = 0x70;
constexpr uint8_t kMaskBit = 0x80;

bool is_control(WsOpcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

bool known_opcode(uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

/// Close codes a peer may send (section 7.4.1 and 7.4.2): 1000-1003, 1007-1011, 3000-4999.
bool valid_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

std::string base64(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

/// Length of the UTF-8 sequence starting with `lead`, 0 if `lead` cannot start one.
size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace

std::string ws_accept_key(std::string_view client_key) {
  const std::string text = std::string(client_key) + std::string(kAcceptGuid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &len, EVP_sha1(), nullptr);
  return base64(digest.data(), len);
}

bool valid_ws_key(std::string_view key) {
  // 16 bytes are 24 base64 characters, the last two "==".
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (const char c : key.substr(0, 22)) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  static_assert(kKeyBytes == 16);
  return true;
}

std::string ws_frame(WsOpcode opcode, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 10);
  out.push_back(static_cast<char>(kFinBit | static_cast<uint8_t>(opcode)));
  const uint64_t n = payload.size();
  if (n < kLen16) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(kLen16));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(kLen64));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((n >> shift) & 0xFF));
  }
  out.append(payload);
  return out;
}

std::string ws_close_frame(uint16_t code, std::string_view reason) {
  size_t keep = std::min(reason.size(), kMaxControlPayload - 2);
  // Never cut a UTF-8 sequence: back up to the start of the character at the cut.
  while (keep > 0 && keep < reason.size() &&
         (static_cast<unsigned char>(reason[keep]) & 0xC0) == 0x80)
    --keep;
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason.substr(0, keep));
  return ws_frame(WsOpcode::kClose, payload);
}

bool valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t n = utf8_length(lead);
    if (n == 0 || i + n > text.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    if (n >= 3) {
      const auto second = static_cast<unsigned char>(text[i + 1]);
      if (lead == 0xE0 && second < 0xA0) return false;  // overlong
      if (lead == 0xED && second > 0x9F) return false;  // UTF-16 surrogates
      if (lead == 0xF0 && second < 0x90) return false;  // overlong
      if (lead == 0xF4 && second > 0x8F) return false;  // above U+10FFFF
    }
    i += n;
  }
  return true;
}

void WsReader::fail(uint16_t code, std::string reason, std::vector<WsEvent>& out) {
  out.push_back(WsEvent{WsEvent::Kind::kFail, std::move(reason), code});
  state_ = State::kDone;
  message_.clear();
  control_.clear();
}

void WsReader::feed(std::string_view bytes, std::vector<WsEvent>& out) {
  while (!bytes.empty() && state_ != State::kDone) {
    if (state_ == State::kHeader) {
      header_.push_back(bytes.front());
      bytes.remove_prefix(1);
      if (!parse_header(out)) continue;
      if (state_ == State::kDone) return;
      if (length_ == 0) {
        finish_frame(out);
        continue;
      }
      state_ = State::kPayload;
      continue;
    }
    // Payload: unmask what is here into the message or the control buffer.
    const uint64_t want = length_ - received_;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(want, bytes.size()));
    std::string& into = is_control(opcode_) ? control_ : message_;
    for (size_t i = 0; i < take; ++i)
      into.push_back(static_cast<char>(bytes[i] ^ static_cast<char>(mask_[(received_ + i) % 4])));
    received_ += take;
    bytes.remove_prefix(take);
    if (received_ == length_) finish_frame(out);
  }
}

bool WsReader::parse_header(std::vector<WsEvent>& out) {
  if (header_.size() < kShortHeader) return false;
  const auto b1 = static_cast<uint8_t>(header_[1]);
  const uint8_t len7 = b1 & 0x7F;
  const size_t ext = len7 == kLen16 ? 2 : len7 == kLen64 ? 8 : 0;
  const bool masked = (b1 & kMaskBit) != 0;
  const size_t need = kShortHeader + ext + (masked ? kMaskBytes : 0);
  if (header_.size() < need) return false;
  uint64_t length = len7;
  if (ext > 0) {
    length = 0;
    for (size_t i = 0; i < ext; ++i) length = (length << 8) | static_cast<uint8_t>(header_[2 + i]);
  }
  for (size_t i = 0; masked && i < kMaskBytes; ++i)
    mask_[i] = static_cast<uint8_t>(header_[kShortHeader + ext + i]);
  length_ = length;
  received_ = 0;
  if (check_header(out)) control_.clear();
  header_.clear();
  return true;
}

bool WsReader::check_header(std::vector<WsEvent>& out) {
  const auto b0 = static_cast<uint8_t>(header_[0]);
  const auto b1 = static_cast<uint8_t>(header_[1]);
  fin_ = (b0 & kFinBit) != 0;
  const uint8_t op = b0 & 0x0F;
  if ((b0 & kRsvBits) != 0) {  // section 5.2: no extension was negotiated
    fail(ws_close::kProtocolError, "reserved bits set", out);
    return false;
  }
  if (!known_opcode(op)) {
    fail(ws_close::kProtocolError, "unknown opcode", out);
    return false;
  }
  if ((b1 & kMaskBit) == 0) {  // section 5.1: every client frame is masked
    fail(ws_close::kProtocolError, "client frames must be masked", out);
    return false;
  }
  if ((length_ >> 63) != 0) {  // section 5.2: the most significant bit must be 0
    fail(ws_close::kProtocolError, "bad payload length", out);
    return false;
  }
  opcode_ = static_cast<WsOpcode>(op);
  if (is_control(opcode_)) {  // section 5.5
    if (!fin_ || length_ > kMaxControlPayload) {
      fail(ws_close::kProtocolError, "control frames must be final and at most 125 bytes", out);
      return false;
    }
    return true;
  }
  if (opcode_ == WsOpcode::kBinary) {
    fail(ws_close::kUnsupportedData, "binary messages are not supported", out);
    return false;
  }
  if ((opcode_ == WsOpcode::kContinuation) != in_message_) {  // section 5.4
    fail(ws_close::kProtocolError,
         in_message_ ? "expected a continuation frame" : "continuation without a message", out);
    return false;
  }
  // The limit applies to the whole message, checked before its payload is read.
  if (length_ > max_message_bytes_ || message_.size() + length_ > max_message_bytes_) {
    fail(ws_close::kTooBig, "message longer than " + std::to_string(max_message_bytes_) + " bytes",
         out);
    return false;
  }
  in_message_ = true;
  return true;
}

void WsReader::finish_frame(std::vector<WsEvent>& out) {
  state_ = State::kHeader;
  switch (opcode_) {
    case WsOpcode::kPing:
      out.push_back(WsEvent{WsEvent::Kind::kPing, std::move(control_), 0});
      control_.clear();
      return;
    case WsOpcode::kPong:
      out.push_back(WsEvent{WsEvent::Kind::kPong, std::move(control_), 0});
      control_.clear();
      return;
    case WsOpcode::kClose:
      finish_close(out);
      return;
    default:
      break;
  }
  if (!fin_) return;  // more fragments follow
  in_message_ = false;
  if (!valid_utf8(message_)) {
    fail(ws_close::kInvalidPayload, "text message is not UTF-8", out);
    return;
  }
  out.push_back(WsEvent{WsEvent::Kind::kText, std::move(message_), 0});
  message_.clear();
}

void WsReader::finish_close(std::vector<WsEvent>& out) {
  // Section 5.5.1: an optional 2-byte code, then an optional UTF-8 reason.
  if (control_.empty()) {
    out.push_back(WsEvent{WsEvent::Kind::kClose, "", ws_close::kNoStatus});
    state_ = State::kDone;
    return;
  }
  const auto code =
      static_cast<uint16_t>((static_cast<uint8_t>(control_[0]) << 8) |
                            static_cast<uint8_t>(control_.size() > 1 ? control_[1] : 0));
  if (control_.size() < 2 || !valid_close_code(code)) {
    fail(ws_close::kProtocolError, "bad close code", out);
    return;
  }
  std::string reason = control_.substr(2);
  if (!valid_utf8(reason)) {
    fail(ws_close::kInvalidPayload, "close reason is not UTF-8", out);
    return;
  }
  out.push_back(WsEvent{WsEvent::Kind::kClose, std::move(reason), code});
  state_ = State::kDone;
}

}  // namespace callrelay::http
