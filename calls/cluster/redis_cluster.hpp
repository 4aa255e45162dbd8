// The cluster seam over Redis (cluster.redis_url). Keys and channels, under "callrelay:sig:":
//
//   alive:<instance>            the instance's incarnation (random at start), PX kAliveTtlMs,
//                               written every heartbeat: gone = the instance is dead
//   presence:<n>:<tenant>:<user>  hash: device -> instance holding its WebSocket (n: the
//                               tenant's length, so that ':' in ids stays unambiguous),
//                               rewritten every heartbeat, expiring when no instance does
//   busy:<n>:<tenant>:<user>    "<instance>\n<incarnation>\n<call>": the user is in a connecting
//                               or active call that instance owns, PX kBusyTtlMs, rewritten
//                               every heartbeat, deleted (if still that call's) when it ends
//   to:<instance>               the channel that instance reads its messages from
//
// Pub/sub rather than streams: a message is only useful to a live instance's live session, the
// receiver's own resume buffer replays to its device what the device missed, and what a Redis
// restart loses is covered by the engine's deadlines (a lost accept rings out, a lost hang-up
// is repeated by the device or ends with the connect or grace deadline). Streams would replay
// after a restart only what Redis kept, at the cost of trimming and consumer bookkeeping.
//
// Commands that must answer before the signaling thread goes on (presence lookups) use their
// own connection, bounded by the command timeout; everything else (publishing, presence
// writes, the heartbeat) is queued to one worker thread, in order.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "calls/cluster/cluster_seam.hpp"
#include "cluster/redis/redis_client.hpp"

namespace callrelay::calls {

/// How often an instance writes its liveness key and its devices' presence, and how long the
/// liveness key outlives the last write.
inline constexpr int64_t kHeartbeatMs = 1000;
inline constexpr int64_t kAliveTtlMs = 3000;
inline constexpr int64_t kPresenceTtlMs = 10000;
inline constexpr int64_t kBusyTtlMs = 10000;

class RedisCluster final : public ClusterSeam {
 public:
  struct Counters {
    std::atomic<uint64_t> published{0};  ///< messages handed to Redis with a live receiver
    std::atomic<uint64_t> failed{0};     ///< not sent (Redis unreachable, no receiver, queue full)
  };
  RedisCluster(std::string instance, cluster::RedisUrl url, std::string prefix = "callrelay:sig:");
  ~RedisCluster() override;

  const std::string& instance() const override { return instance_; }
  const std::string& nonce() const override { return nonce_; }
  void start(ClusterSink& sink) override;
  void stop() override;
  void publish(const std::string& instance, std::string payload) override;
  std::optional<CalleeSeen> callee(const std::string& tenant, const std::string& user) override;
  std::optional<std::vector<CalleeSeen>> callees(
      const std::vector<std::pair<std::string, std::string>>& users) override;
  void presence(const std::string& tenant, const std::string& user, const DeviceId& device,
                bool up) override;
  void busy(const std::string& tenant, const std::string& user, const std::string& call,
            bool up) override;
  void watch(std::vector<std::string> instances) override;

  const Counters& counters() const { return counters_; }
  const cluster::RedisLinkCounters& link() const { return link_; }

 private:
  using Command = std::vector<std::string>;
  std::string alive_key(const std::string& instance) const { return prefix_ + "alive:" + instance; }
  std::string presence_key(const std::string& tenant, const std::string& user) const;
  std::string busy_key(const std::string& tenant, const std::string& user) const;
  std::string channel(const std::string& instance) const { return prefix_ + "to:" + instance; }
  void run();
  void flush(std::deque<Command>& batch);
  void heartbeat();

  const std::string instance_, nonce_, prefix_;
  cluster::RedisUrl url_;
  cluster::RedisLinkCounters link_;
  cluster::RedisClient lookups_;  ///< the signaling thread's connection
  cluster::RedisClient worker_;   ///< the worker thread's connection
  std::unique_ptr<cluster::RedisSubscriber> subscriber_;
  ClusterSink* sink_ = nullptr;
  Counters counters_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Command> queue_;  ///< under mu_
  /// Local devices online, as (presence key, device): rewritten every heartbeat. Under mu_.
  std::set<std::pair<std::string, DeviceId>> present_;
  /// Users in connecting or active calls this instance owns: busy key -> value, rewritten
  /// every heartbeat. Under mu_.
  std::map<std::string, std::string> busy_;
  std::vector<std::string> watched_;  ///< under mu_
  bool beat_now_ = false;             ///< under mu_: heartbeat at once (Redis came back)
  bool stop_ = false;                 ///< under mu_
  std::thread thread_;
};

}  // namespace callrelay::calls
