// Client messages of the signaling protocol (README, section Calls): strict parsing and
// validation of one WebSocket text message into a typed value. Nothing from the wire is trusted:
// sizes, types and shapes of every field are checked, and a failure names the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "calls/core/config.hpp"
#include "calls/core/types.hpp"

namespace callrelay::calls {

enum class ClientType : uint8_t {
  kInvite, kRinging, kAccept, kDecline, kCancel, kHangup, kOffer, kAnswer, kCandidate,
  kIceRestart, kConnected,
};
inline constexpr size_t kClientTypeCount = 11;
const char* to_string(ClientType t);

/// An RTCIceCandidateInit.
struct IceCandidate {
  std::string candidate;                  ///< "candidate:..." (or "" for end-of-candidates)
  std::optional<std::string> sdp_mid;     ///< sdpMid
  std::optional<uint32_t> sdp_mline_index;  ///< sdpMLineIndex (0..63)
  std::optional<std::string> username_fragment;  ///< usernameFragment
};

struct ClientMessage {
  ClientType type = ClientType::kInvite;
  uint64_t seq = 0;          ///< 1 .. 2^53
  std::string call;          ///< required on every type but invite; "c_" + 22 base64url chars
  std::string to;            ///< invite: the callee's user id
  Media media;               ///< invite, accept
  std::string sdp;           ///< offer, answer
  bool restart = false;      ///< offer: an ICE restart
  IceCandidate candidate;    ///< candidate
  std::string reason;        ///< hangup: user-hangup | ice-failed | media-error; decline: free text
};

/// Why a message was refused, for the `error` reply. `seq` and `call` are echoed when they
/// could be read.
struct MessageError {
  std::string code = "invalid";  ///< invalid | too-large
  std::string field;             ///< e.g. "payload.sdp" ("" for the whole message)
  std::string reason;            ///< human-readable, says what is expected
  std::optional<uint64_t> seq;
  std::string call;
};

/// Parses one text message. Never throws; every failure is a MessageError.
std::variant<ClientMessage, MessageError> parse_client_message(std::string_view text,
                                                               const MessageLimits& limits);

/// Whether `id` is a valid user id (1..max bytes of UTF-8, no control characters, no ':').
bool valid_user_id(std::string_view id, size_t max_bytes);
/// Whether `id` has the shape of a call id ("c_" + 22 base64url characters).
bool valid_call_id(std::string_view id);

}  // namespace callrelay::calls
