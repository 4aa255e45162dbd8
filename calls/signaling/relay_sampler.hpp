// Relay-observed quality intervals from the relay's cumulative media counters (README, section
// Call quality): the service samples CallRelay::media() of every active call every few seconds;
// this turns two consecutive samples into one interval per direction and kind that had media.
// Pure: no clock, no relay, no threads (the signaling thread owns one).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "calls/core/engine.hpp"
#include "calls/core/quality.hpp"
#include "calls/signaling/relay_seam.hpp"

namespace callrelay::calls {

/// The intervals between two samples of one user's leg: that user's client-to-relay leg carries
/// the media it sends, so the caller's leg is the caller-to-callee direction. A kind whose
/// expected count did not advance had no media and yields nothing. Loss is expected minus
/// received (never below 0: duplicates); jitter is the leg's current one; the round trip is
/// client-relay plus relay-peer when both are known, else the known one, else -1.
std::vector<RelayInterval> leg_intervals(Direction direction, const RelayLeg& before,
                                         const RelayLeg& after, TimeMs start, TimeMs end);

/// Keeps the previous cumulative sample of each sampled call.
class RelaySampler {
 public:
  /// The intervals of `call` since its previous sample; the first one counts from zero at
  /// `connected` (the call's media so far). A call's last sample, taken as it ends, gives its
  /// final intervals, as long as the time since the previous one.
  std::vector<RelayInterval> sample(const std::string& call, TimeMs connected,
                                    const RelayMedia& media, TimeMs now);
  /// Drops a call's previous sample (the call ended).
  void forget(const std::string& call) { previous_.erase(call); }
  size_t size() const { return previous_.size(); }

 private:
  struct Sample {
    RelayMedia media;
    TimeMs at = 0;
  };
  std::unordered_map<std::string, Sample> previous_;
};

}  // namespace callrelay::calls
