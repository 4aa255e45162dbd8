// Helpers for the telemetry tests: fake allocations (no TurnServer, no sockets) and exposition
// text lookups.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/observer.hpp"
#include "relay/core/types.hpp"

namespace callrelay::telemetry::testing {

/// A heap AllocationInfo (it holds atomics, so it cannot move) with the fields telemetry reads.
std::unique_ptr<core::AllocationInfo> fake_allocation(uint64_t id, const std::string& user_id,
                                                      core::TimeMs started,
                                                      core::Transport t = core::Transport::kUdp,
                                                      stun::Family f = stun::Family::kIPv4);

/// Adds relayed traffic as the data path would: `bytes` in `packets` packets each way.
void relay(core::AllocationInfo& a, uint64_t to_peer_bytes, uint64_t to_client_bytes,
           uint64_t packets = 1);

/// The exposition's lines.
std::vector<std::string> lines(const std::string& text);
/// True when `text` has exactly this line.
bool has_line(const std::string& text, const std::string& line);
/// The value of the sample whose name and labels are exactly `series` (e.g. `a_total{x="y"}`).
std::optional<double> value(const std::string& text, const std::string& series);
/// How many sample lines start with `name` followed by '{' or ' '.
size_t sample_count(const std::string& text, const std::string& name);

/// Records what reaches it (to check forwarding).
struct RecordingObserver final : core::Observer {
  int created = 0, ended = 0, requests = 0, auth = 0, denied = 0, drops = 0;
  void on_allocation_created(const core::AllocationInfo&) override { ++created; }
  void on_allocation_ended(const core::AllocationInfo&, core::EndReason, core::TimeMs) override {
    ++ended;
  }
  void on_request(stun::Method, core::Transport, uint16_t) override { ++requests; }
  void on_auth_failure(core::AuthFailure) override { ++auth; }
  void on_peer_denied(core::PeerDenyReason) override { ++denied; }
  void on_drop(core::DropReason) override { ++drops; }
};

}  // namespace callrelay::telemetry::testing
