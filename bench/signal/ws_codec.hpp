// The client side of the WebSocket wire format (RFC 6455), pure: the opening handshake's key
// and expected accept value, masked client frames, and the header of a server frame read from
// a buffer that may hold only part of it. No sockets; bench/signal/ws_client.* moves the bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace callrelay::bench::ws {

/// RFC 6455 section 5.2 opcodes.
enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

/// Standard base64 (RFC 4648 section 4) with padding.
std::string base64(std::span<const uint8_t> bytes);
/// base64url without padding (RFC 4648 section 5), as JWTs use it (RFC 7515 section 2).
std::string base64url(std::span<const uint8_t> bytes);

/// Sec-WebSocket-Accept the server must answer to `key`: base64(SHA-1(key + GUID)), RFC 6455
/// section 4.2.2 step 5.4.
std::string accept_for_key(std::string_view key);

/// Appends one complete client frame (FIN set) of `payload` to `out`, masked with `mask` as
/// every client frame must be (RFC 6455 section 5.3).
void append_client_frame(std::string& out, Opcode op, std::string_view payload,
                         const std::array<uint8_t, 4>& mask);

/// A server frame's header (RFC 6455 section 5.2).
struct FrameHeader {
  bool fin = false;
  Opcode opcode = Opcode::kText;
  uint64_t payload_size = 0;
  size_t header_size = 0;  ///< bytes before the payload
};

enum class ParseStatus : uint8_t { kNeedMore, kOk, kError };

struct ParsedHeader {
  ParseStatus status = ParseStatus::kNeedMore;
  FrameHeader header;
  std::string error;  ///< why the frame is refused (kError), naming the RFC rule
};

/// Reads a server frame header from the start of `buf`. Refuses a masked frame (section 5.1:
/// servers never mask), reserved bits without an extension (5.2), unknown opcodes, a control
/// frame that is fragmented or longer than 125 bytes (5.5), a length that is not minimal or
/// uses the 64th bit (5.2), and a payload above `max_payload`.
ParsedHeader parse_server_header(std::span<const uint8_t> buf, uint64_t max_payload);

/// The HTTP/1.1 upgrade request for `target` (path and query) on `host` (RFC 6455 4.1).
std::string upgrade_request(std::string_view host, std::string_view target, std::string_view key);

/// What the server answered to the upgrade request, from its header block (up to and
/// including the blank line).
struct UpgradeAnswer {
  int status = 0;         ///< 101 on success
  bool accepted = false;  ///< 101 with Upgrade: websocket, Connection: upgrade and the right accept
  std::string error;      ///< why it is not an accepted upgrade
};
UpgradeAnswer check_upgrade_answer(std::string_view head, std::string_view key);

}  // namespace callrelay::bench::ws
