#include "cluster/shared/load_board.hpp"

#include <algorithm>

namespace callrelay::cluster {
namespace {
constexpr size_t kBatch = 200;
/// Instances read at most: a Redis flooded with records cannot grow this one without bound.
constexpr size_t kMaxInstances = 1000;
}  // namespace

LoadBoard::LoadBoard(RedisClient& redis, SharedKeys keys, std::vector<std::string> own_uris,
                     SharedCounters& counters, Options opts)
    : redis_(redis),
      keys_(std::move(keys)),
      own_uris_(std::move(own_uris)),
      counters_(counters),
      opts_(opts) {}

bool LoadBoard::publish(const InstanceLoad& self) {
  const auto reply = redis_.command(
      {"SET", keys_.instance(self.id), to_json(self), "PX", std::to_string(opts_.ttl.count())});
  if (!reply || reply->is_error()) {
    counters_.fail(SharedOp::kLoadPublish);
    return false;
  }
  return true;
}

void LoadBoard::withdraw(std::string_view id) { (void)redis_.command({"DEL", keys_.instance(id)}); }

bool LoadBoard::refresh(std::chrono::steady_clock::time_point now) {
  std::vector<InstanceLoad> found;
  std::string cursor = "0";
  do {
    const auto scan = redis_.command({"SCAN", cursor, "MATCH", keys_.instance_pattern(), "COUNT",
                                      std::to_string(kBatch)});
    if (!scan || scan->type != RedisReply::Type::kArray || scan->elements.size() != 2) {
      counters_.fail(SharedOp::kLoadRead);
      return false;
    }
    cursor = scan->elements[0].str;
    const auto& keys = scan->elements[1].elements;
    if (keys.empty()) continue;
    std::vector<std::string> mget{"MGET"};
    for (const auto& k : keys) mget.push_back(k.str);
    const auto values = redis_.command(mget);
    if (!values || values->type != RedisReply::Type::kArray) {
      counters_.fail(SharedOp::kLoadRead);
      return false;
    }
    for (size_t i = 0; i < values->elements.size() && i < keys.size(); ++i) {
      auto load = parse_instance_load(values->elements[i].str);
      // A record must be the one its key names: another cannot speak for it.
      if (load && keys[i].str == keys_.instance(load->id) && found.size() < kMaxInstances)
        found.push_back(std::move(*load));
    }
  } while (cursor != "0" && !cursor.empty());
  // SCAN may return a key twice.
  std::sort(found.begin(), found.end(),
            [](const InstanceLoad& a, const InstanceLoad& b) { return a.id < b.id; });
  found.erase(std::unique(found.begin(), found.end(),
                          [](const InstanceLoad& a, const InstanceLoad& b) { return a.id == b.id; }),
              found.end());
  counters_.instances_healthy.store(
      static_cast<uint64_t>(std::count_if(found.begin(), found.end(),
                                          [](const InstanceLoad& l) { return !l.draining; })),
      std::memory_order_relaxed);
  const std::lock_guard lock(mu_);
  instances_ = std::move(found);
  read_at_ = now;
  read_once_ = true;
  return true;
}

std::vector<std::string> LoadBoard::uris_for(std::string_view region,
                                             std::chrono::steady_clock::time_point now) {
  {
    const std::lock_guard lock(mu_);
    if (read_once_ && now - read_at_ <= opts_.stale_after) {
      auto uris = pick_uris(instances_, region, opts_.instances_per_credential);
      if (!uris.empty()) {
        // The expected allocation goes to the instance whose URIs lead the answer.
        for (auto& l : instances_)
          if (!l.uris.empty() && std::find(l.uris.begin(), l.uris.end(), uris.front()) != l.uris.end()) {
            ++l.allocations;
            break;
          }
        return uris;
      }
    }
  }
  counters_.credential_fallbacks.fetch_add(1, std::memory_order_relaxed);
  return own_uris_;
}

std::vector<InstanceLoad> LoadBoard::instances() const {
  const std::lock_guard lock(mu_);
  return instances_;
}

}  // namespace callrelay::cluster
