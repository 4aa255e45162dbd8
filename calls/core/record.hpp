// One call's record, as storage keeps it and GET /api/v1/calls returns it.
#pragma once

#include <cstdint>
#include <string>

#include "calls/core/quality.hpp"
#include "calls/core/types.hpp"

namespace callrelay::calls {

struct CallRecord {
  std::string id;               ///< "c_" + 22 base64url characters
  std::string caller;           ///< user ids
  std::string callee;
  std::string tenant;           ///< "" when the tokens had none
  std::string caller_device;    ///< the device that invited
  std::string answered_device;  ///< the callee device that accepted ("" if none did)
  Media media;                  ///< what the caller offered
  TimeMs created = 0;           ///< invite (Unix ms)
  TimeMs answered = 0;          ///< accept; 0: never
  TimeMs connected = 0;         ///< first active; 0: never
  TimeMs ended = 0;
  Outcome outcome = Outcome::kFailed;
  std::string end_reason;       ///< e.g. user-hangup, ring-timeout, connect-timeout, ice-failed
  Party ended_by = Party::kServer;
  int64_t setup_ms = -1;        ///< connected - created; -1 when it never connected
  uint32_t ice_restarts = 0;
  uint32_t reconnects = 0;      ///< device resumes within the grace period
  // Filled from the relay when the call ends (the allocations made with its credentials).
  uint64_t bytes_caller_to_callee = 0;
  uint64_t bytes_callee_to_caller = 0;
  uint32_t relay_allocations = 0;  ///< allocations made with the call's credentials
  /// Relay-observed and client-reported quality per direction and kind, disagreements and
  /// video fallbacks (README, section Call quality); empty when the call never had media.
  CallQuality quality;
  bool relayed() const { return bytes_caller_to_callee + bytes_callee_to_caller > 0; }
  friend bool operator==(const CallRecord&, const CallRecord&) = default;
};

}  // namespace callrelay::calls
