#include "calls/cluster/redis_cluster.hpp"

#include <openssl/rand.h>

#include <chrono>

#include "base/log.hpp"

namespace callrelay::calls {
namespace {

/// Messages waiting for the worker beyond this are dropped (and counted): a Redis that does
/// not answer must not grow the queue without bound.
constexpr size_t kMaxQueued = 20000;
/// Commands per pipeline round trip.
constexpr size_t kMaxBatch = 256;
/// How long stop() waits for queued messages (the `ended` of calls ended at shutdown).
constexpr auto kStopFlush = std::chrono::seconds(2);
/// Deletes KEYS[1] if it still holds ARGV[1]: a call's end must not delete the busy mark a
/// newer call of the same user wrote (on this instance or another).
constexpr const char* kDeleteIfValue =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

std::string random_nonce() {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char raw[8];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string out;
  for (const unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

cluster::RedisClient::Options lookup_options() {
  cluster::RedisClient::Options o;
  // An invite waits for this at most: presence is one round trip on a healthy Redis.
  o.timeout = std::chrono::milliseconds(300);
  o.retry_interval = std::chrono::milliseconds(1000);
  return o;
}

}  // namespace

RedisCluster::RedisCluster(std::string instance, cluster::RedisUrl url, std::string prefix)
    : instance_(std::move(instance)),
      nonce_(random_nonce()),
      prefix_(std::move(prefix)),
      url_(url),
      lookups_(url, lookup_options(), &link_),
      worker_(url, cluster::RedisClient::Options{}, &link_) {}

RedisCluster::~RedisCluster() { stop(); }

std::string RedisCluster::busy_key(const std::string& tenant, const std::string& user) const {
  return prefix_ + "busy:" + std::to_string(tenant.size()) + ":" + tenant + ":" + user;
}

std::string RedisCluster::presence_key(const std::string& tenant, const std::string& user) const {
  return prefix_ + "presence:" + std::to_string(tenant.size()) + ":" + tenant + ":" + user;
}

void RedisCluster::start(ClusterSink& sink) {
  if (thread_.joinable()) return;
  sink_ = &sink;
  subscriber_ = std::make_unique<cluster::RedisSubscriber>(
      url_, std::vector<std::string>{channel(instance_)},
      [this](const std::string&, const std::string& payload) { sink_->on_envelope(payload); },
      [this](bool up) {
        if (!up) return;
        log::info("cluster.subscribed", {{"instance", instance_}}, "cluster: instance ", instance_,
                  " subscribed to its signaling channel");
        // Subscribed again (first start, or Redis restarted empty): write liveness and
        // presence now rather than at the next heartbeat.
        const std::lock_guard lock(mu_);
        beat_now_ = true;
        wake_.notify_one();
      });
  subscriber_->start();
  thread_ = std::thread([this] { run(); });
}

void RedisCluster::stop() {
  if (!thread_.joinable()) return;
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
    wake_.notify_one();
  }
  thread_.join();
  if (subscriber_) subscriber_->stop();
}

void RedisCluster::publish(const std::string& instance, std::string payload) {
  const std::lock_guard lock(mu_);
  if (queue_.size() >= kMaxQueued) {
    ++counters_.failed;
    return;
  }
  queue_.push_back({"PUBLISH", channel(instance), std::move(payload)});
  wake_.notify_one();
}

void RedisCluster::presence(const std::string& tenant, const std::string& user,
                            const DeviceId& device, bool up) {
  const std::string key = presence_key(tenant, user);
  const std::lock_guard lock(mu_);
  if (up) {
    present_.emplace(key, device);
    queue_.push_back({"HSET", key, device, instance_});
    queue_.push_back({"PEXPIRE", key, std::to_string(kPresenceTtlMs)});
  } else {
    present_.erase({key, device});
    queue_.push_back({"HDEL", key, device});
  }
  wake_.notify_one();
}

void RedisCluster::watch(std::vector<std::string> instances) {
  const std::lock_guard lock(mu_);
  watched_ = std::move(instances);
}

void RedisCluster::busy(const std::string& tenant, const std::string& user,
                        const std::string& call, bool up) {
  const std::string key = busy_key(tenant, user);
  std::string value = instance_ + "\n" + nonce_ + "\n" + call;
  const std::lock_guard lock(mu_);
  if (up) {
    busy_[key] = value;
    queue_.push_back({"SET", key, std::move(value), "PX", std::to_string(kBusyTtlMs)});
  } else {
    if (const auto it = busy_.find(key); it != busy_.end() && it->second == value) busy_.erase(it);
    queue_.push_back({"EVAL", kDeleteIfValue, "1", key, std::move(value)});
  }
  wake_.notify_one();
}

std::optional<CalleeSeen> RedisCluster::callee(const std::string& tenant,
                                               const std::string& user) {
  auto one = callees({{tenant, user}});
  if (!one || one->size() != 1) return std::nullopt;
  return std::move(one->front());
}

std::optional<std::vector<CalleeSeen>> RedisCluster::callees(
    const std::vector<std::pair<std::string, std::string>>& users) {
  // Presence and the busy mark of every user in one round trip. Redis unreachable: nullopt,
  // and an invite rings this instance's devices only, with nobody busy elsewhere (fail open: a
  // call that rings a busy user is better than calls refused while Redis is away).
  std::vector<Command> lookups;
  for (const auto& [tenant, user] : users) {
    lookups.push_back({"HGETALL", presence_key(tenant, user)});
    lookups.push_back({"GET", busy_key(tenant, user)});
  }
  std::vector<CalleeSeen> seen(users.size());
  if (users.empty()) return seen;
  const auto replies = lookups_.pipeline(lookups);
  if (!replies || replies->size() != lookups.size()) return std::nullopt;
  struct Found {
    std::vector<RemoteDevice> devices;
    std::string busy_on, busy_nonce;
  };
  std::vector<Found> found(users.size());
  std::set<std::string> instances;
  for (size_t u = 0; u < users.size(); ++u) {
    const auto& all = (*replies)[2 * u];
    if (all.type != cluster::RedisReply::Type::kArray) return std::nullopt;
    for (size_t i = 0; i + 1 < all.elements.size(); i += 2) {
      const auto& dev = all.elements[i];
      const auto& inst = all.elements[i + 1];
      if (dev.type != cluster::RedisReply::Type::kString ||
          inst.type != cluster::RedisReply::Type::kString || dev.str.empty() || inst.str.empty())
        continue;
      found[u].devices.push_back(RemoteDevice{dev.str, inst.str, ""});
      instances.insert(inst.str);
    }
    // The busy mark of another instance: "<instance>\n<nonce>\n<call>". This instance's own
    // calls are its engine's to see (a mark of its own is at most a previous incarnation's).
    if (const auto& b = (*replies)[2 * u + 1]; b.type == cluster::RedisReply::Type::kString) {
      const size_t first = b.str.find('\n');
      const size_t second = first == std::string::npos ? first : b.str.find('\n', first + 1);
      if (second != std::string::npos && first > 0 && b.str.compare(0, first, instance_) != 0) {
        found[u].busy_on = b.str.substr(0, first);
        found[u].busy_nonce = b.str.substr(first + 1, second - first - 1);
        instances.insert(found[u].busy_on);
      }
    }
  }
  if (instances.empty()) return seen;
  // Only devices and calls of live instances: a dead instance's fields outlive it until the
  // hash expires, and are deleted here when seen; its busy marks expire by themselves.
  Command mget{"MGET"};
  for (const std::string& i : instances) mget.push_back(alive_key(i));
  const auto alive = lookups_.command(mget);
  if (!alive || alive->type != cluster::RedisReply::Type::kArray ||
      alive->elements.size() != instances.size())
    return std::nullopt;
  std::map<std::string, std::string> nonces;
  size_t n = 0;
  for (const std::string& i : instances) {
    const auto& r = alive->elements[n++];
    if (r.type == cluster::RedisReply::Type::kString && !r.str.empty()) nonces[i] = r.str;
  }
  std::vector<Command> stale;
  for (size_t u = 0; u < users.size(); ++u) {
    Found& f = found[u];
    // A mark of a restarted instance (another incarnation) is stale: its calls died with it.
    if (const auto it = nonces.find(f.busy_on); it != nonces.end() && it->second == f.busy_nonce)
      seen[u].busy_on = f.busy_on;
    Command del{"HDEL", presence_key(users[u].first, users[u].second)};
    for (RemoteDevice& d : f.devices) {
      const auto it = nonces.find(d.instance);
      if (it == nonces.end()) {
        del.push_back(d.device);
        continue;
      }
      d.nonce = it->second;
      seen[u].devices.push_back(std::move(d));
    }
    if (del.size() > 2) stale.push_back(std::move(del));
  }
  if (!stale.empty()) {
    const std::lock_guard lock(mu_);
    for (Command& c : stale) queue_.push_back(std::move(c));
    wake_.notify_one();
  }
  return seen;
}

void RedisCluster::run() {
  auto next_beat = std::chrono::steady_clock::now();
  bool up = true;
  for (;;) {
    std::deque<Command> batch;
    bool beat = false, stopping = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, next_beat, [&] { return stop_ || beat_now_ || !queue_.empty(); });
      stopping = stop_;
      beat = beat_now_ || std::chrono::steady_clock::now() >= next_beat;
      beat_now_ = false;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) flush(batch);
    if (stopping) break;
    if (beat) {
      heartbeat();
      next_beat = std::chrono::steady_clock::now() + std::chrono::milliseconds(kHeartbeatMs);
      if (worker_.up() != up) {
        up = worker_.up();
        if (up)
          log::info("cluster.redis_up", {}, "cluster: Redis reachable again");
        else
          log::warn("cluster.redis_down", {},
                    "cluster: Redis unreachable: calls between "
                    "instances wait for it; calls within this instance go on");
      }
    }
  }
  // Stopping: what is queued (the `ended` of calls ended at shutdown) goes out within a
  // bounded time, then this instance's presence and liveness are withdrawn.
  const auto deadline = std::chrono::steady_clock::now() + kStopFlush;
  for (;;) {
    std::deque<Command> batch;
    {
      const std::lock_guard lock(mu_);
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      for (const auto& [key, dev] : present_) batch.push_back({"HDEL", key, dev});
      present_.clear();
      for (const auto& [key, value] : busy_)
        batch.push_back({"EVAL", kDeleteIfValue, "1", key, value});
      busy_.clear();
    }
    if (batch.empty() || std::chrono::steady_clock::now() > deadline) break;
    flush(batch);
  }
  worker_.command({"DEL", alive_key(instance_)});
}

void RedisCluster::flush(std::deque<Command>& batch) {
  std::vector<Command> cmds(std::make_move_iterator(batch.begin()),
                            std::make_move_iterator(batch.end()));
  const auto replies = worker_.pipeline(cmds);
  for (size_t i = 0; i < cmds.size(); ++i) {
    if (cmds[i][0] != "PUBLISH") continue;
    // PUBLISH answers how many subscribers got it: 0 is an instance that is not listening.
    const bool ok = replies && i < replies->size() &&
                    (*replies)[i].type == cluster::RedisReply::Type::kInteger &&
                    (*replies)[i].integer > 0;
    ++(ok ? counters_.published : counters_.failed);
  }
}

void RedisCluster::heartbeat() {
  std::vector<Command> cmds;
  std::vector<std::string> watched;
  {
    const std::lock_guard lock(mu_);
    watched = watched_;
    cmds.push_back({"SET", alive_key(instance_), nonce_, "PX", std::to_string(kAliveTtlMs)});
    std::string last;
    for (const auto& [key, dev] : present_) {
      cmds.push_back({"HSET", key, dev, instance_});
      if (key != last) cmds.push_back({"PEXPIRE", key, std::to_string(kPresenceTtlMs)});
      last = key;
    }
    for (const auto& [key, value] : busy_)
      cmds.push_back({"SET", key, value, "PX", std::to_string(kBusyTtlMs)});
  }
  if (!watched.empty()) {
    Command mget{"MGET"};
    for (const std::string& i : watched) mget.push_back(alive_key(i));
    cmds.push_back(std::move(mget));
  }
  const auto replies = worker_.pipeline(cmds);
  // No answer: nothing is concluded about other instances while Redis is away.
  if (!replies || watched.empty() || replies->size() != cmds.size()) return;
  const auto& mget = replies->back();
  if (mget.type != cluster::RedisReply::Type::kArray || mget.elements.size() != watched.size())
    return;
  std::vector<InstanceSeen> seen;
  for (size_t i = 0; i < watched.size(); ++i) {
    const auto& r = mget.elements[i];
    seen.push_back(
        InstanceSeen{watched[i], r.type == cluster::RedisReply::Type::kString ? r.str : ""});
  }
  sink_->on_instances(std::move(seen));
}

}  // namespace callrelay::calls
