// What the call service needs from the relay, and nothing more: call-scoped TURN credentials,
// the traffic of the allocations made with them, and ending those allocations. Implemented by
// app/ over relay/core and relay/net; faked in tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "calls/core/types.hpp"

namespace callrelay::calls {

/// Payload bytes relayed by the allocations of one call, by the user who made them.
struct CallTraffic {
  uint64_t caller_to_peer = 0, caller_to_client = 0;  ///< allocations of the caller
  uint64_t callee_to_peer = 0, callee_to_client = 0;  ///< allocations of the callee
  uint32_t allocations = 0;                           ///< made with the call's credentials
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
};

}  // namespace callrelay::calls
