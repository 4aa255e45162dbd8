// WebSocket framing (RFC 6455), pure: the handshake's accept key, server frames, and a reader
// of client frames that enforces the message size limit on each frame's header, before any
// payload is stored. No sockets; ws_session.hpp moves the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace callrelay::http {

/// Opcodes (RFC 6455 section 5.2).
enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

/// Close codes (RFC 6455 section 7.4.1).
namespace ws_close {
inline constexpr uint16_t kNormal = 1000;
inline constexpr uint16_t kGoingAway = 1001;
inline constexpr uint16_t kProtocolError = 1002;
inline constexpr uint16_t kUnsupportedData = 1003;
inline constexpr uint16_t kNoStatus = 1005;  ///< received without a code; never sent
inline constexpr uint16_t kAbnormal = 1006;  ///< dropped without a close frame; never sent
inline constexpr uint16_t kInvalidPayload = 1007;
inline constexpr uint16_t kPolicy = 1008;
inline constexpr uint16_t kTooBig = 1009;
inline constexpr uint16_t kInternalError = 1011;
}  // namespace ws_close

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 section 4.2.2 step 5.4):
/// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string ws_accept_key(std::string_view client_key);

/// Whether `key` is a valid Sec-WebSocket-Key: base64 of 16 bytes (section 4.1, item 7).
bool valid_ws_key(std::string_view key);

/// One unmasked, final server frame (section 5.2; servers never mask, section 5.1).
std::string ws_frame(WsOpcode opcode, std::string_view payload);

/// A close frame: the code in network order, then `reason` cut to fit 125 bytes (section
/// 5.5.1) at a UTF-8 character boundary.
std::string ws_close_frame(uint16_t code, std::string_view reason);

/// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
/// U+10FFFF), as text messages must be (RFC 6455 section 8.1).
bool valid_utf8(std::string_view text);

/// What the reader found.
struct WsEvent {
  enum class Kind : uint8_t {
    kText,  ///< a complete text message (fragments joined) in `payload`
    kPing,  ///< answer with a pong carrying `payload`
    kPong,
    kClose,  ///< the peer's close: `code` (kNoStatus when it sent none), reason in `payload`
    kFail,   ///< a protocol violation: close with `code`, reason in `payload`
  };
  Kind kind;
  std::string payload;
  uint16_t code = 0;
};

/// Reads the frames a client sends, incrementally (any split of the byte stream). Refuses
/// unmasked frames, reserved bits, unknown opcodes, oversized or fragmented control frames
/// and misplaced continuations (1002), binary messages (1003, this server speaks text), text
/// that is not UTF-8 (1007) and messages longer than the limit (1009). Sizes are checked on
/// the frame header: a frame that declares a huge length is refused before its payload is
/// read or any memory is reserved for it. After a close or a failure it reads nothing more.
class WsReader {
 public:
  explicit WsReader(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  /// Consumes `bytes`, appending what it found to `out`.
  void feed(std::string_view bytes, std::vector<WsEvent>& out);
  /// Whether the reader stopped (after a kClose or kFail event).
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State : uint8_t { kHeader, kPayload, kDone };

  /// Parses the buffered header once complete; false while more bytes are needed.
  bool parse_header(std::vector<WsEvent>& out);
  /// Checks a complete header; a kFail event when the frame is refused.
  bool check_header(std::vector<WsEvent>& out);
  void finish_frame(std::vector<WsEvent>& out);
  void finish_close(std::vector<WsEvent>& out);
  void fail(uint16_t code, std::string reason, std::vector<WsEvent>& out);

  size_t max_message_bytes_;
  State state_ = State::kHeader;
  std::string header_;  ///< bytes of the header being read (at most 14)
  bool fin_ = false;
  WsOpcode opcode_ = WsOpcode::kContinuation;
  uint8_t mask_[4] = {};
  uint64_t length_ = 0;      ///< this frame's payload length
  uint64_t received_ = 0;    ///< payload bytes of this frame read so far
  bool in_message_ = false;  ///< a fragmented text message is open
  std::string message_;      ///< text of the open message
  std::string control_;      ///< payload of the current control frame (at most 125 bytes)
};

}  // namespace callrelay::http
