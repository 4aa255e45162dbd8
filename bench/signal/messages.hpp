// The client messages the signaling bench sends (the README, section Calls, "Message
// types"), as JSON text. SDPs and candidates are fake but well-formed: an SDP passes RFC 8866's shape (v=, o=,
// s=, an m= line, CRLF endings) and a candidate is an RFC 8839 candidate line with sdpMid,
// sdpMLineIndex and usernameFragment, on documentation addresses (RFC 5737).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace callrelay::bench::signal {

std::string invite_message(uint64_t seq, std::string_view to);
std::string ringing_message(uint64_t seq, std::string_view call);
std::string accept_message(uint64_t seq, std::string_view call);
std::string offer_message(uint64_t seq, std::string_view call);
std::string answer_message(uint64_t seq, std::string_view call);
std::string connected_message(uint64_t seq, std::string_view call);
std::string hangup_message(uint64_t seq, std::string_view call);

/// Candidate messages of one device in one call, built from a prefix made once: the burst
/// sends tens of thousands of them per second and must not cost more than the server does.
class CandidateMaker {
 public:
  /// `caller` picks the side's address block so that the two sides' candidates differ.
  CandidateMaker(std::string_view call, bool caller);
  std::string make(uint64_t seq) const;

 private:
  std::string call_json_;  ///< the call id as a JSON string
  bool caller_;
};

}  // namespace callrelay::bench::signal
