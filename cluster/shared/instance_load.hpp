// An instance's load and health as every instance publishes it to Redis, and the choice of
// instances whose TURN URIs a credential carries. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callrelay::cluster {

/// Most URIs one instance may publish, and most bytes of one published record: what is read
/// back from Redis is never trusted further than this.
inline constexpr size_t kMaxPublishedUris = 16;
inline constexpr size_t kMaxLoadRecordBytes = 16 * 1024;

struct InstanceLoad {
  std::string id;
  std::string region;             ///< "" for none
  std::vector<std::string> uris;  ///< its public TURN URIs
  uint64_t allocations = 0;       ///< live allocations
  uint64_t calls = 0;             ///< calls with credentials handed out
  bool draining = false;          ///< a draining instance takes no new clients
};

/// The record stored in <prefix>instance:<id>.
std::string to_json(const InstanceLoad& load);
/// A record read back; nullopt when it is not one (malformed, oversized, wrong types).
std::optional<InstanceLoad> parse_instance_load(std::string_view text);

/// The URIs of the least-loaded instances that take clients (draining ones left out): fewest
/// allocations first, then fewest calls, then by id (so every instance answers alike). With
/// `region`, that region's instances come first, then the others. At most `max_instances`
/// instances; each URI once.
std::vector<std::string> pick_uris(std::vector<InstanceLoad> instances, std::string_view region,
                                   size_t max_instances);

}  // namespace callrelay::cluster
