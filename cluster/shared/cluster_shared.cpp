#include "cluster/shared/cluster_shared.hpp"

#include <unistd.h>

#include <climits>

#include "base/log.hpp"

namespace callrelay::cluster {

std::string resolve_instance_id(const std::string& configured) {
  if (!configured.empty()) return configured;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "callrelay";
  return host;
}

ClusterShared::ClusterShared(ClusterSharedOptions opts, LocalProbes probes,
                             RevocationSync::Apply apply)
    : opts_(std::move(opts)),
      probes_(std::move(probes)),
      redis_(opts_.url, RedisClient::Options{opts_.command_timeout, opts_.interval},
             &counters_.link),
      admit_redis_(opts_.url, RedisClient::Options{opts_.admit_timeout, opts_.interval},
                   &counters_.link),
      revocations_(redis_, opts_.keys, opts_.instance_id, std::move(apply), counters_),
      quota_(admit_redis_, redis_, opts_.keys, opts_.instance_id, probes_.user_counts, counters_),
      board_(redis_, opts_.keys, opts_.uris, counters_, opts_.load) {
  revocations_.set_wake([this] { wake(); });
  quota_.set_wake([this] { wake(); });
}

ClusterShared::~ClusterShared() { stop(); }

InstanceLoad ClusterShared::self() const {
  InstanceLoad l;
  l.id = opts_.instance_id;
  l.region = opts_.region;
  l.uris = opts_.uris;
  l.allocations = probes_.allocations ? probes_.allocations() : 0;
  l.calls = probes_.calls ? probes_.calls() : 0;
  l.draining = probes_.draining && probes_.draining();
  return l;
}

void ClusterShared::start() {
  if (!board_.publish(self()))
    log::warn("cluster.redis_unreachable", {{"instance", opts_.instance_id}},
              "cluster: Redis does not answer at start: revocations and quotas hold per instance "
              "and credentials carry this instance's URIs until it does");
  board_.refresh(std::chrono::steady_clock::now());
  subscriber_ = std::make_unique<RedisSubscriber>(
      opts_.url, std::vector<std::string>{revocations_.channel()},
      [this](const std::string&, const std::string& payload) { revocations_.on_message(payload); },
      [this](bool up) {
        if (!up) return;
        // Subscribed again: what was published meanwhile is read from the keys.
        revocations_.request_catch_up();
        wake();
      },
      &counters_.subscriber);
  subscriber_->start();
  thread_ = std::thread([this] { run(); });
  log::info("cluster.shared_started",
            {{"instance", opts_.instance_id}, {"region", opts_.region}},
            "cluster: revocations, per-user quotas and load shared through Redis as instance '",
            opts_.instance_id, "'");
}

void ClusterShared::stop() {
  {
    const std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
    board_.withdraw(opts_.instance_id);
  }
  if (subscriber_) subscriber_->stop();
}

void ClusterShared::wake() {
  {
    const std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void ClusterShared::run() {
  using Clock = std::chrono::steady_clock;
  auto next_load = Clock::now();
  auto next_rewrite = Clock::now() + opts_.quota_rewrite;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_load, [this] { return stop_ || woken_; });
      if (stop_) return;
      woken_ = false;
    }
    const int64_t wall = probes_.wall_ms ? probes_.wall_ms() : 0;
    revocations_.poll(wall);
    const auto now = Clock::now();
    const bool rewrite = now >= next_rewrite;
    if (rewrite) next_rewrite = now + opts_.quota_rewrite;
    quota_.poll(rewrite);
    if (now >= next_load) {
      next_load = now + opts_.interval;
      if (board_.publish(self())) board_.refresh(now);
    }
  }
}

}  // namespace callrelay::cluster
