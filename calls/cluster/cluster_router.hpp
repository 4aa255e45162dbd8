// Calls whose two sides sit on different instances, for the signaling service (signaling
// thread only). A call lives in exactly one engine, the caller's instance's (its "owner"), so
// that exactly one accept, the deadlines and the record keep the single-process rules. A
// callee device on another instance appears in the owner's engine as a virtual device: the
// owner registers it from presence when an invite names its user (and again every kRecheckMs
// while the user's calls ring, so that a device coming online meanwhile rings as it would on
// one instance), publishes what the engine sends it to the instance holding its WebSocket,
// and feeds the engine what that instance forwards from it. The device's own instance numbers and keeps those messages (sseq, replay)
// as for any other, and remembers which calls of its devices are owned elsewhere.
//
// Busy across instances: the owner marks the users of its connecting and active calls in the
// shared store (ClusterSeam::busy), and an invite's lookup of the callee reads the mark with
// presence; a callee marked by another live instance is busy for this instance's engine too
// (CallEngine::set_busy_elsewhere), so the invite ends `busy` as for a callee in a local call.
//
// When an instance dies (its liveness key gone for kDeadAfterMs, or back with a new
// incarnation): its virtual devices lose their socket in the owner's engine (the other side gets
// peer-reconnecting, then peer-disconnected when the grace period ends), and the calls it owned
// end at once for the local devices in them (`ended`, peer-disconnected, instance-lost).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "calls/cluster/cluster_seam.hpp"
#include "calls/core/config.hpp"
#include "calls/core/engine.hpp"
#include "calls/core/messages.hpp"

namespace callrelay::calls {

/// How long an instance's liveness key may be missing before it counts as dead: longer than a
/// Redis restart takes to be noticed and every instance's next heartbeat to write the key again.
inline constexpr TimeMs kDeadAfterMs = 4000;
/// How often the callees of ringing calls are looked up again, and at most how many per pass.
inline constexpr TimeMs kRecheckMs = 1000;
inline constexpr size_t kRecheckUsers = 256;
/// The largest message between instances accepted (a forwarded client message is at most
/// calls.max_message_bytes; engine messages carry SDPs of at most max_sdp_bytes).
inline constexpr size_t kMaxEnvelopeBytes = 512 * 1024;

class ClusterRouter {
 public:
  struct Counters {
    uint64_t forwarded = 0;  ///< messages published to another instance
    uint64_t received = 0;   ///< messages from other instances acted on
    uint64_t refused = 0;    ///< malformed or unexpected messages from other instances
    uint64_t instances_lost = 0;
  };
  /// `is_local`: whether a device id is a WebSocket of this instance (its own or in grace).
  ClusterRouter(ClusterSeam& seam, CallEngine& engine, MessageLimits limits,
                std::function<bool(const DeviceId&)> is_local);

  /// Before a local device's invite reaches the engine: the callee's devices on other
  /// instances become (or come back as) virtual devices, so that the invite rings them, and
  /// the engine learns whether another instance has the callee in a call (until route()).
  void before_invite(const std::string& tenant, const std::string& callee, TimeMs now,
                     Actions& out);
  /// Every kRecheckMs while this engine has ringing calls: the callees' devices on other
  /// instances are looked up again, and one that the invite's lookup did not see (it connected
  /// after the lookup, or the store did not answer then) rings as a device connecting while a
  /// call rings on one instance does.
  void recheck_ringing(TimeMs now, Actions& out);
  /// A local device's message about a call owned by another instance goes there (true);
  /// false: the local engine handles it.
  bool forward(const DeviceId& device, const ClientMessage& m, const std::string& text);
  /// At the start of the service's apply(): sends to virtual devices are published (and taken
  /// out of `out.send`); virtual devices left without calls go offline in the engine; the
  /// users of this engine's connecting and active calls are marked busy for other instances.
  void route(TimeMs now, Actions& out);
  /// A message from another instance (untrusted text).
  void on_envelope(const std::string& payload, TimeMs now, Actions& out);
  /// A heartbeat's view of the watched instances.
  void on_instances(const std::vector<InstanceSeen>& seen, TimeMs now, Actions& out);
  /// A local device's socket dropped / came back: the owners of its remote calls are told.
  void local_lost(const DeviceId& device);
  void local_resumed(const DeviceId& device);
  /// The instances to watch; `changed` is set when the set differs from the last call's.
  std::vector<std::string> watched(bool& changed);

  bool is_virtual(const DeviceId& device) const { return virtual_.count(device) != 0; }
  const Counters& counters() const { return counters_; }

 private:
  struct Virtual {
    std::string host, user, tenant;
    bool online = true;
  };
  struct RemoteCall {
    std::string owner;
    std::set<DeviceId> devices;  ///< local devices the owner sent this call's messages to
  };
  void publish(const std::string& instance, nlohmann::json envelope);
  /// A device of `user` on another instance becomes (or comes back as) a virtual device; a
  /// new one rings for the user's ringing calls (CallEngine::device_connected).
  void add_remote(const std::string& tenant, const std::string& user, const RemoteDevice& rd,
                  TimeMs now, Actions& out);
  void learn(const std::string& instance, const std::string& nonce, TimeMs now, Actions& out);
  void instance_dead(const std::string& instance, TimeMs now, Actions& out);
  void deliver(const std::string& from, const DeviceId& device, nlohmann::json msg, Actions& out);
  void from_device(const std::string& from, const DeviceId& device, const std::string& text,
                   TimeMs now, Actions& out);
  void tell_owners(const DeviceId& device, const char* kind);
  void mark_busy(const Actions& out);

  ClusterSeam& seam_;
  CallEngine& engine_;
  MessageLimits limits_;
  std::function<bool(const DeviceId&)> is_local_;
  std::unordered_map<DeviceId, Virtual> virtual_;
  std::unordered_map<std::string, RemoteCall> remote_calls_;
  std::map<std::string, std::string> nonces_;    ///< instance -> incarnation known
  std::map<std::string, TimeMs> missing_since_;  ///< instance -> first heartbeat without it
  std::set<DeviceId> touched_;  ///< virtual devices that may have lost their last call
  std::vector<std::string> last_watched_;
  /// tenant '\n' user of the invite being handled when another instance has them in a call.
  std::string busy_now_;
  /// The last (tenant, callee) recheck_ringing looked at when it could not look at all.
  std::pair<std::string, std::string> recheck_after_;
  /// (tenant, user) -> the call of this engine marking them busy in the shared store.
  std::map<std::pair<std::string, std::string>, std::string> marked_;
  size_t engaged_ = 0;  ///< connecting + active calls of this engine when marked_ was computed
  Counters counters_;
};

}  // namespace callrelay::calls
