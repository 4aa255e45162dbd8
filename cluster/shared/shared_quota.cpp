#include "cluster/shared/shared_quota.hpp"

#include <unordered_map>

#include "base/log.hpp"

namespace callrelay::cluster {
namespace {

// KEYS[1] the user's quota hash; ARGV: this instance's id, the limit (0: none), the instance
// key prefix, the hash's TTL in ms. Returns the user's allocations with this one, or -1 when
// the limit is reached. One script, so that the sum and the slot taken are atomic across
// instances.
constexpr const char* kAdmitScript = R"lua(
local fields = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #fields, 2 do
  local n = tonumber(fields[i + 1]) or 0
  if fields[i] == ARGV[1] or redis.call('EXISTS', ARGV[3] .. fields[i]) == 1 then
    sum = sum + n
  end
end
local max = tonumber(ARGV[2]) or 0
if max > 0 and sum >= max then return -1 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return sum + 1
)lua";

// KEYS[1] the user's quota hash; ARGV[1] this instance's id. The field goes when it reaches 0.
constexpr const char* kReleaseScript = R"lua(
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
)lua";

constexpr size_t kBatch = 500;

}  // namespace

SharedQuotaStore::SharedQuotaStore(RedisClient& admit_redis, RedisClient& redis, SharedKeys keys,
                                   std::string instance_id, LocalCounts local_counts,
                                   SharedCounters& counters, std::chrono::milliseconds key_ttl)
    : admit_redis_(admit_redis),
      redis_(redis),
      keys_(std::move(keys)),
      instance_id_(std::move(instance_id)),
      local_counts_(std::move(local_counts)),
      counters_(counters),
      ttl_ms_(std::to_string(key_ttl.count())) {}

bool SharedQuotaStore::admit(std::string_view key, uint32_t max_per_user) {
  const auto reply =
      admit_redis_.command({"EVAL", kAdmitScript, "1", keys_.quota(key), instance_id_,
                            std::to_string(max_per_user), keys_.instance_prefix(), ttl_ms_});
  if (!reply || reply->type != RedisReply::Type::kInteger) {
    // Fail-safe: this process's own limit admitted it already; the shared count misses it
    // until the next rewrite.
    counters_.fail(SharedOp::kQuotaAdmit);
    dirty_.store(true);
    if (!admit_failing_.exchange(true))
      log::warn("cluster.quota_local", {{"error", reply ? reply->str : std::string("no answer")}},
                "cluster: Redis does not count allocations: per-user quotas hold per instance "
                "until it does");
    if (wake_) wake_();
    return true;
  }
  if (admit_failing_.exchange(false))
    log::info("cluster.quota_shared", {}, "cluster: per-user quotas are counted across instances again");
  if (reply->integer < 0) {
    counters_.quota_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void SharedQuotaStore::released(std::string_view key) {
  // While the counts wait to be rewritten, a decrement would only be overwritten.
  if (dirty_.load()) return;
  {
    const std::lock_guard lock(mu_);
    released_.emplace_back(key);
  }
  if (wake_) wake_();
}

bool SharedQuotaStore::poll(bool resync) {
  if (resync) dirty_.store(true);
  if (dirty_.load()) return rewrite_counts();
  for (;;) {
    std::vector<std::string> batch;
    {
      const std::lock_guard lock(mu_);
      const size_t n = std::min(released_.size(), kBatch);
      batch.assign(std::make_move_iterator(released_.end() - static_cast<ptrdiff_t>(n)),
                   std::make_move_iterator(released_.end()));
      released_.resize(released_.size() - n);
    }
    if (batch.empty()) return true;
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(batch.size());
    for (const auto& user : batch)
      cmds.push_back({"EVAL", kReleaseScript, "1", keys_.quota(user), instance_id_});
    if (!redis_.pipeline(cmds)) {
      counters_.fail(SharedOp::kQuotaRelease);
      dirty_.store(true);  // which of them were applied is unknown: rewrite them all
      return false;
    }
  }
}

bool SharedQuotaStore::rewrite_counts() {
  // Cleared first, then read: an allocation that ends in between is in neither, and one that
  // starts in between may be overwritten: off by one for that user until it ends. Counting
  // too many instead could lock a user out for good.
  dirty_.store(false);
  {
    const std::lock_guard lock(mu_);
    released_.clear();
  }
  std::unordered_map<std::string, uint32_t> mine;
  for (auto& [user, n] : local_counts_()) mine.emplace(keys_.quota(user), n);
  const auto failed = [this] {
    counters_.fail(SharedOp::kQuotaResync);
    dirty_.store(true);
    return false;
  };
  // Fields this instance holds for users it no longer counts (ended while Redis was away, or
  // left by an earlier run under the same id).
  std::string cursor = "0";
  do {
    const auto scan = redis_.command({"SCAN", cursor, "MATCH", keys_.quota_pattern(), "COUNT",
                                      std::to_string(kBatch)});
    if (!scan || scan->type != RedisReply::Type::kArray || scan->elements.size() != 2)
      return failed();
    cursor = scan->elements[0].str;
    std::vector<std::vector<std::string>> cmds;
    for (const auto& k : scan->elements[1].elements)
      if (!mine.contains(k.str)) cmds.push_back({"HDEL", k.str, instance_id_});
    if (!cmds.empty() && !redis_.pipeline(cmds)) return failed();
  } while (cursor != "0" && !cursor.empty());
  std::vector<std::vector<std::string>> cmds;
  for (const auto& [key, n] : mine) {
    cmds.push_back({"HSET", key, instance_id_, std::to_string(n)});
    cmds.push_back({"PEXPIRE", key, ttl_ms_});
    if (cmds.size() >= kBatch * 2) {
      if (!redis_.pipeline(cmds)) return failed();
      cmds.clear();
    }
  }
  if (!cmds.empty() && !redis_.pipeline(cmds)) return failed();
  return true;
}

}  // namespace callrelay::cluster
