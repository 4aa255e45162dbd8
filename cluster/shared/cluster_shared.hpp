// The shared state of one instance in a cluster (cluster.redis_url set): revocations every
// instance applies, per-user quotas counted across instances, and this instance's load
// published for credentials that spread clients. Owns its Redis connections, the subscription
// and one thread that publishes, retries and reads every interval; what the workers and the
// HTTP threads call never waits on that thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/redis/redis_client.hpp"
#include "cluster/shared/counters.hpp"
#include "cluster/shared/keys.hpp"
#include "cluster/shared/load_board.hpp"
#include "cluster/shared/revocation_sync.hpp"
#include "cluster/shared/shared_quota.hpp"

namespace callrelay::cluster {

/// cluster.instance_id, or the host name when it is "".
std::string resolve_instance_id(const std::string& configured);

struct ClusterSharedOptions {
  RedisUrl url;
  std::string instance_id;        ///< unique in the cluster (resolve_instance_id)
  std::string region;             ///< cluster.region
  std::vector<std::string> uris;  ///< this instance's public TURN URIs
  SharedKeys keys;
  std::chrono::milliseconds interval{1000};  ///< load written and read, retries
  LoadBoard::Options load;
  /// An allocation's start waits at most this long for the shared count (then fail-safe).
  std::chrono::milliseconds admit_timeout{250};
  std::chrono::milliseconds command_timeout{500};  ///< the background thread's commands
  /// This instance's shared quota counts are rewritten this often (drift, hash expiry).
  std::chrono::milliseconds quota_rewrite{std::chrono::minutes(5)};
};

/// What the instance reports about itself, called on the shared state's thread.
struct LocalProbes {
  std::function<uint64_t()> allocations;
  std::function<uint64_t()> calls;  ///< may be empty: 0
  std::function<bool()> draining;
  SharedQuotaStore::LocalCounts user_counts;
  std::function<int64_t()> wall_ms;  ///< Unix ms (revocation expiry)
};

class ClusterShared {
 public:
  /// `apply` applies another instance's revocation here (any of this object's threads).
  ClusterShared(ClusterSharedOptions opts, LocalProbes probes, RevocationSync::Apply apply);
  ~ClusterShared();
  ClusterShared(const ClusterShared&) = delete;
  ClusterShared& operator=(const ClusterShared&) = delete;

  /// Publishes this instance's record once (waiting at most the command timeout, so that the
  /// quota script counts it from the first allocation), then starts the subscription and the
  /// thread.
  void start();
  /// Stops both and withdraws this instance's record.
  void stop();

  /// A revocation made here (Authenticator::set_on_revoke): queued, never blocking.
  void revoked(const std::string& username, int64_t until_ms) { revocations_.revoked(username, until_ms); }
  /// For core::UserLimits::set_shared_quota.
  core::SharedQuota& quota() { return quota_; }
  /// TURN URIs for a credential (CredentialApi::set_uri_source, calls' credentials).
  std::vector<std::string> uris_for(const std::string& region) {
    return board_.uris_for(region, std::chrono::steady_clock::now());
  }
  const std::string& region() const { return opts_.region; }
  const std::string& instance_id() const { return opts_.instance_id; }
  /// callrelay_cluster_* in Prometheus text format.
  std::string scrape_text() const { return exposition_text(counters_); }
  const SharedCounters& counters() const { return counters_; }

 private:
  void run();
  void wake();
  InstanceLoad self() const;

  ClusterSharedOptions opts_;
  LocalProbes probes_;
  SharedCounters counters_;
  RedisClient redis_;        ///< the thread's commands
  RedisClient admit_redis_;  ///< allocations' starts (workers)
  RevocationSync revocations_;
  SharedQuotaStore quota_;
  LoadBoard board_;
  std::unique_ptr<RedisSubscriber> subscriber_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   ///< under mu_
  bool woken_ = false;  ///< under mu_
  std::thread thread_;
};

}  // namespace callrelay::cluster
