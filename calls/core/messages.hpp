// Client messages of the signaling protocol (README, section Calls): strict parsing and
// validation of one WebSocket text message into a typed value. Nothing from the wire is trusted:
// sizes, types and shapes of every field are checked, and a failure names the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "calls/core/config.hpp"
#include "calls/core/quality.hpp"
#include "calls/core/types.hpp"

namespace callrelay::calls {

enum class ClientType : uint8_t {
  kInvite, kRinging, kAccept, kDecline, kCancel, kHangup, kOffer, kAnswer, kCandidate,
  kIceRestart, kConnected, kStats, kMedia,
};
inline constexpr size_t kClientTypeCount = 13;
const char* to_string(ClientType t);

/// `stats` payload.inbound[]: what this device received of one kind over the interval
/// (RTCInboundRtpStreamStats deltas, W3C webrtc-stats 7.5). Absent fields were not reported.
struct InboundStats {
  MediaKind kind = MediaKind::kAudio;
  std::optional<uint64_t> packets_received;  ///< 0..10^7
  std::optional<uint64_t> packets_lost;      ///< 0..10^7
  std::optional<double> jitter_ms;           ///< 0..60000
  std::optional<double> bitrate_bps;         ///< 0..10^10
  std::optional<uint64_t> frames_decoded;    ///< 0..10^7
  std::optional<uint64_t> frames_dropped;    ///< 0..10^7
};

/// `stats` payload.outbound[]: what this device sent of one kind, with what the receiver
/// reported back (RTCRemoteInboundRtpStreamStats, W3C webrtc-stats 7.6).
struct OutboundStats {
  MediaKind kind = MediaKind::kAudio;
  std::optional<uint64_t> packets_sent;         ///< 0..10^7
  std::optional<double> bitrate_bps;            ///< 0..10^10
  std::optional<double> rtt_ms;                 ///< 0..60000
  std::optional<uint64_t> remote_packets_lost;  ///< 0..10^7
  std::optional<double> remote_jitter_ms;       ///< 0..60000
};

/// ICE candidate types (RFC 8445 section 5.1.1) and transports of the selected pair.
enum class CandidateType : uint8_t { kHost, kSrflx, kPrflx, kRelay };
enum class PairProtocol : uint8_t { kUdp, kTcp, kTls };
const char* to_string(CandidateType t);  ///< host | srflx | prflx | relay
const char* to_string(PairProtocol p);   ///< udp | tcp | tls

/// `stats` payload.pair: the selected candidate pair (RTCIceCandidatePairStats).
struct PairStats {
  std::optional<CandidateType> local_type, remote_type;
  std::optional<PairProtocol> protocol;        ///< the pair's transport
  std::optional<PairProtocol> relay_protocol;  ///< how the local relay candidate reaches TURN
  std::optional<double> rtt_ms;                ///< 0..60000
};

/// The `stats` payload: figures for the interval since the device's previous `stats`.
struct StatsReport {
  uint32_t interval_ms = 0;           ///< 1000..60000, required
  std::vector<InboundStats> inbound;  ///< at most 2, kinds unique
  std::vector<OutboundStats> outbound;
  std::optional<PairStats> pair;
};

/// Why a device changed what it sends (`media`).
enum class MediaReason : uint8_t { kUser, kPoorQuality, kQualityRestored };
const char* to_string(MediaReason r);  ///< user | poor-quality | quality-restored

/// The `media` payload: what this side now sends; at least one of audio and video present.
struct MediaState {
  std::optional<bool> audio, video;
  MediaReason reason = MediaReason::kUser;
};

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
  StatsReport stats;         ///< stats
  MediaState media_state;    ///< media
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
