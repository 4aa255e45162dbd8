// The `drain:` section (graceful drain: SIGTERM or POST /api/v1/admin/drain) and its reader,
// kept apart from config.cpp; the reader is called from its Loader.
#pragma once

#include <cstdint>
#include <vector>

#include "config/yaml_reader.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::config {

/// Longest drain.deadline_s: a day (a drain is a restart held open, not a mode to live in).
inline constexpr uint32_t kMaxDrainDeadlineS = 86400;

/// How the server drains before it stops.
struct DrainConfig {
  /// drain.deadline_s: how long live allocations may keep relaying after a drain starts; the
  /// process exits 0 as soon as the last one ends, or at this deadline, ending what is left.
  /// An hour lets a call that started just before the drain run an ordinary meeting's length,
  /// while allocations whose clients left without Refresh(0) expire within the allocation
  /// lifetime (600 s by default) anyway: most drains end in minutes.
  uint32_t deadline_s = 3600;
  /// drain.alternate_servers: while draining, a new Allocate gets 300 (Try Alternate) with
  /// one of these of the client's address family (round robin; RFC 8656 section 7.2,
  /// RFC 8489 section 10); none of that family: 403.
  std::vector<stun::Endpoint> alternate_servers;
};

namespace detail {

/// Reads `drain:` into `out` (keys left out keep their defaults).
void read_drain_section(Reader& reader, const Field& f, DrainConfig& out);

}  // namespace detail
}  // namespace callrelay::config
