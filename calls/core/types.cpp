// Names of the call values as the protocol, records and metrics spell them (the README,
// section Calls: call states and outcomes).
#include "calls/core/types.hpp"

namespace callrelay::calls {

const char* to_string(CallState s) {
  switch (s) {
    case CallState::kRinging:
      return "ringing";
    case CallState::kConnecting:
      return "connecting";
    case CallState::kActive:
      return "active";
    case CallState::kEnded:
      return "ended";
  }
  return "unknown";
}

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::kCompleted:
      return "completed";
    case Outcome::kDeclined:
      return "declined";
    case Outcome::kCancelled:
      return "cancelled";
    case Outcome::kMissed:
      return "missed";
    case Outcome::kBusy:
      return "busy";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kPeerDisconnected:
      return "peer-disconnected";
  }
  return "unknown";
}

const char* to_string(Party p) {
  switch (p) {
    case Party::kCaller:
      return "caller";
    case Party::kCallee:
      return "callee";
    case Party::kServer:
      return "server";
  }
  return "unknown";
}

std::optional<Outcome> parse_outcome(std::string_view text) {
  for (const Outcome o : kAllOutcomes) {
    if (text == to_string(o)) return o;
  }
  return std::nullopt;
}

}  // namespace callrelay::calls
