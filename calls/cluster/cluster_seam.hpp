// What the signaling service needs from the instances around it when several callrelay
// instances serve one set of users (cluster.redis_url): where a user's devices are, a way to
// hand a message to another instance, and which instances are alive. The Redis implementation
// is redis_cluster.hpp; the service only sees this seam, so calls_signaling does not link Redis.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "calls/core/types.hpp"

namespace callrelay::calls {

/// A device of a user connected to another instance.
struct RemoteDevice {
  DeviceId device;
  std::string instance;  ///< cluster.instance_id of the instance holding its WebSocket
  std::string nonce;     ///< that instance's incarnation (changes when it restarts)
};

/// What an invite needs to know of its callee from the shared store.
struct CalleeSeen {
  std::vector<RemoteDevice> devices;  ///< the user's devices on other live instances
  /// A live instance other than this one whose engine holds a connecting or active call of the
  /// user ("": none): the invite ends busy unless calls.call_waiting is on.
  std::string busy_on;
};

/// An instance as the last heartbeat saw it.
struct InstanceSeen {
  std::string instance;
  std::string nonce;  ///< "": its liveness key is gone (expired or deleted)
};

/// Called from the seam's own threads; implementations post to their own thread and return.
class ClusterSink {
 public:
  virtual ~ClusterSink() = default;
  /// A message another instance published for this one (untrusted text).
  virtual void on_envelope(std::string payload) = 0;
  /// The watched instances, after a heartbeat that reached the shared store.
  virtual void on_instances(std::vector<InstanceSeen> seen) = 0;
};

class ClusterSeam {
 public:
  virtual ~ClusterSeam() = default;
  /// This instance's id and incarnation.
  virtual const std::string& instance() const = 0;
  virtual const std::string& nonce() const = 0;
  /// Starts the heartbeat and the subscription; `sink` outlives stop().
  virtual void start(ClusterSink& sink) = 0;
  /// Sends what is queued (bounded wait), withdraws this instance's presence and stops.
  virtual void stop() = 0;
  /// Queues `payload` for `instance` (never blocks).
  virtual void publish(const std::string& instance, std::string payload) = 0;
  /// The user's devices on other live instances and whether another instance has the user
  /// in a call; nullopt when the store is unreachable. One round trip (two when devices or a
  /// call are found, to check their instances are alive); blocks for at most the store's
  /// command timeout each.
  virtual std::optional<CalleeSeen> callee(const std::string& tenant, const std::string& user) = 0;
  /// callee() for several (tenant, user) pairs, one answer each in order, in as few round
  /// trips as the store allows; nullopt when it is unreachable.
  virtual std::optional<std::vector<CalleeSeen>> callees(
      const std::vector<std::pair<std::string, std::string>>& users) {
    std::vector<CalleeSeen> all;
    for (const auto& [tenant, user] : users) {
      auto one = callee(tenant, user);
      if (!one) return std::nullopt;
      all.push_back(std::move(*one));
    }
    return all;
  }
  /// A local device came online (`up`) or went offline (never blocks).
  virtual void presence(const std::string& tenant, const std::string& user, const DeviceId& device,
                        bool up) = 0;
  /// A user of a call this instance owns is in it (`up`: connecting or active) or no longer
  /// is, so that other instances ring them busy (never blocks).
  virtual void busy(const std::string& tenant, const std::string& user, const std::string& call,
                    bool up) = 0;
  /// The instances whose liveness on_instances reports from now on (never blocks).
  virtual void watch(std::vector<std::string> instances) = 0;
};

}  // namespace callrelay::calls
