// What the call service needs from the relay, and nothing more: call-scoped TURN credentials,
// the traffic of the allocations made with them, and ending those allocations. Implemented by
// app/ over relay/core and relay/net; faked in tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "calls/core/sdp_payloads.hpp"
#include "calls/core/types.hpp"

namespace callrelay::calls {

/// Payload bytes relayed by the allocations of one call, by the user who made them.
struct CallTraffic {
  uint64_t caller_to_peer = 0, caller_to_client = 0;  ///< allocations of the caller
  uint64_t callee_to_peer = 0, callee_to_client = 0;  ///< allocations of the callee
  uint32_t allocations = 0;                           ///< made with the call's credentials
};

/// Relay-observed media of one kind on one user's client-to-relay leg, cumulative over the
/// call's allocations of that user (ended allocations folded in, so the counts never go back).
struct RelayStream {
  uint64_t expected = 0;   ///< RTP packets expected (extended sequence numbers)
  uint64_t received = 0;   ///< media packets received
  double jitter_ms = -1;   ///< current interarrival jitter (worst live SSRC); -1: no media yet
};

/// What the relay measured for one user of a call.
struct RelayLeg {
  RelayStream audio, video;
  double rtt_client_ms = -1;  ///< last relay <-> this user's client round trip; -1: none yet
  double rtt_peer_ms = -1;    ///< last relay <-> peer round trip seen by this user's allocation
};

struct RelayMedia {
  RelayLeg caller, callee;
};

class CallRelay {
 public:
  virtual ~CallRelay() = default;
  /// Traffic so far of the allocations made with `call_id`'s credentials (live and ended),
  /// split by whether their user is `caller` or `callee`. Any thread.
  virtual CallTraffic traffic(std::string_view call_id, std::string_view caller,
                              std::string_view callee) = 0;
  /// Ends the call's live allocations and refuses its credentials from now on; forgets its
  /// traffic. Any thread; returns at once (the workers end them shortly after).
  virtual void end_call(std::string_view call_id) = 0;
  /// Relay-observed media so far of the call's allocations, by user. Any thread.
  virtual RelayMedia media(std::string_view call_id, std::string_view caller,
                           std::string_view callee) = 0;
  /// The payload types the call negotiated (from its offer and answer), so the relay knows each
  /// packet's kind and clock rate. Replaces what was set before. Any thread; returns at once.
  virtual void set_payload_types(std::string_view call_id, std::vector<RtpPayloadType> types) = 0;
};

}  // namespace callrelay::calls
