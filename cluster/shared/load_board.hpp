// Every instance's load and health, through Redis: each instance writes its record
// (<prefix>instance:<id>, expiring a few seconds after its last write, so an instance that died
// or lost Redis drops out by itself) and reads everyone's, and credentials carry the URIs of
// the least-loaded instances that take clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis/redis_client.hpp"
#include "cluster/shared/counters.hpp"
#include "cluster/shared/instance_load.hpp"
#include "cluster/shared/keys.hpp"

namespace callrelay::cluster {

class LoadBoard {
 public:
  struct Options {
    std::chrono::milliseconds ttl{5000};  ///< a record not rewritten for this long is gone
    /// Older than this, what was read last is not trusted: credentials carry this instance's
    /// own URIs (Redis unreachable).
    std::chrono::milliseconds stale_after{3000};
    /// Instances per credential. One: a WebRTC client gathers candidates on every TURN server
    /// it is given, so handing out several would multiply its allocations, not spread them.
    size_t instances_per_credential = 1;
  };
  /// `redis` and `counters` outlive this object. `own_uris`: this instance's, the fallback.
  LoadBoard(RedisClient& redis, SharedKeys keys, std::vector<std::string> own_uris,
            SharedCounters& counters, Options opts);

  /// Writes this instance's record. False when Redis did not answer.
  bool publish(const InstanceLoad& self);
  /// Deletes this instance's record (a clean stop: others stop handing it out at once).
  void withdraw(std::string_view id);
  /// Reads every instance's record. `now` is a monotonic time for staleness.
  bool refresh(std::chrono::steady_clock::time_point now);

  /// The URIs a credential for a client in `region` ("" unknown) carries now: those of the
  /// least-loaded healthy instances, this instance's own when nothing fresh is known. Each
  /// choice counts one more expected allocation on the chosen instance until the next read,
  /// so that a burst of requests within one interval spreads too. Any thread.
  std::vector<std::string> uris_for(std::string_view region,
                                    std::chrono::steady_clock::time_point now);
  /// The records read last (any thread).
  std::vector<InstanceLoad> instances() const;

 private:
  RedisClient& redis_;
  SharedKeys keys_;
  std::vector<std::string> own_uris_;
  SharedCounters& counters_;
  Options opts_;
  mutable std::mutex mu_;  ///< guards instances_ and read_at_
  std::vector<InstanceLoad> instances_;
  std::chrono::steady_clock::time_point read_at_{};
  bool read_once_ = false;
};

}  // namespace callrelay::cluster
