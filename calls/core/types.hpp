// Values shared by the call state machine, the signaling service and record storage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callrelay::calls {

/// Milliseconds on the Unix time scale, read from the injected clock (the service derives it
/// from a monotonic clock so that deadlines never jump). The state machine never reads a clock.
using TimeMs = int64_t;

/// A device is one signaling connection of a user (a browser tab, a phone), named by the
/// service ("d_" + random) and kept across reconnects within the grace period.
using DeviceId = std::string;

enum class CallState : uint8_t { kRinging, kConnecting, kActive, kEnded };

/// How a call ended; what records and the `ended` message carry.
enum class Outcome : uint8_t {
  kCompleted,         ///< was active, then hung up (or reached the maximum duration)
  kDeclined,          ///< a callee device declined
  kCancelled,         ///< the caller cancelled while ringing (or either hung up while connecting)
  kMissed,            ///< nobody accepted before the ring timeout
  kBusy,              ///< the callee was already in a call
  kFailed,            ///< never connected (connect timeout, ICE failure, media error)
  kPeerDisconnected,  ///< a device of the call vanished beyond the grace period
};

/// Who ended a call.
enum class Party : uint8_t { kCaller, kCallee, kServer };

const char* to_string(CallState s);
const char* to_string(Outcome o);
const char* to_string(Party p);
std::optional<Outcome> parse_outcome(std::string_view text);
inline constexpr Outcome kAllOutcomes[] = {
    Outcome::kCompleted, Outcome::kDeclined, Outcome::kCancelled,       Outcome::kMissed,
    Outcome::kBusy,      Outcome::kFailed,   Outcome::kPeerDisconnected};

/// What a side offers to send.
struct Media {
  bool audio = true;
  bool video = false;
  friend bool operator==(const Media&, const Media&) = default;
};

}  // namespace callrelay::calls
