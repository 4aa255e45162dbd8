#include "cluster/shared/revocation_sync.hpp"

#include <charconv>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/log.hpp"

namespace callrelay::cluster {
namespace {

constexpr size_t kBatch = 500;  ///< revocations per pipeline, keys per SCAN step

std::optional<int64_t> parse_ms(std::string_view text) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v <= 0)
    return std::nullopt;
  return v;
}

}  // namespace

RevocationSync::RevocationSync(RedisClient& redis, SharedKeys keys, std::string instance_id,
                               Apply apply, SharedCounters& counters, size_t max_pending)
    : redis_(redis),
      keys_(std::move(keys)),
      instance_id_(std::move(instance_id)),
      channel_(keys_.revocation_channel()),
      apply_(std::move(apply)),
      counters_(counters),
      max_pending_(max_pending) {}

void RevocationSync::revoked(const std::string& username, int64_t until_ms) {
  if (username.size() > kMaxSharedUsernameBytes) return;
  {
    const std::lock_guard lock(mu_);
    if (pending_.size() >= max_pending_) {
      pending_.pop_front();  // the oldest expires first; it still holds on this instance
      counters_.fail(SharedOp::kRevocationPublish);
    }
    pending_.emplace_back(username, until_ms);
  }
  if (wake_) wake_();
}

size_t RevocationSync::pending() const {
  const std::lock_guard lock(mu_);
  return pending_.size();
}

void RevocationSync::on_message(const std::string& payload) {
  // {"username": "...", "until": <Unix ms>, "from": "<instance id>"}; anyone with access to
  // Redis can publish, so nothing is trusted beyond its type and size.
  if (payload.size() > kMaxSharedUsernameBytes * 2 + 256) return;
  const auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  const auto user = j.find("username");
  const auto until = j.find("until");
  const auto from = j.find("from");
  if (user == j.end() || !user->is_string() || until == j.end() ||
      !until->is_number_integer() || from == j.end() || !from->is_string())
    return;
  const auto& name = user->get_ref<const std::string&>();
  if (name.empty() || name.size() > kMaxSharedUsernameBytes) return;
  if (from->get_ref<const std::string&>() == instance_id_) return;  // ours, applied already
  const int64_t until_ms = until->get<int64_t>();
  if (until_ms <= 0) return;
  apply_(name, until_ms);
  counters_.revocations_applied.fetch_add(1, std::memory_order_relaxed);
}

bool RevocationSync::poll(int64_t wall_now) {
  bool ok = send_pending(wall_now);
  if (catch_up_.exchange(false) && !catch_up(wall_now)) {
    catch_up_.store(true);  // again at the next poll
    ok = false;
  }
  if (ok != link_ok_) {
    if (ok)
      log::info("cluster.revocations_shared", {}, "cluster: revocations are shared again");
    else
      log::warn("cluster.revocations_unshared", {},
                "cluster: Redis does not answer: revocations hold on this instance and are "
                "shared once it answers");
    link_ok_ = ok;
  }
  return ok;
}

bool RevocationSync::send_pending(int64_t wall_now) {
  for (;;) {
    std::vector<std::pair<std::string, int64_t>> batch;
    {
      const std::lock_guard lock(mu_);
      while (!pending_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    if (batch.empty()) return true;
    std::vector<std::vector<std::string>> cmds;
    for (const auto& [name, until] : batch) {
      if (until <= wall_now) continue;  // expired while queued: nothing to refuse any more
      // The key outlives nothing it guards: it expires with the revocation (PX, relative, so
      // the instances' clocks need not agree on more than the revocation's end).
      cmds.push_back({"SET", keys_.revoked(name), std::to_string(until), "PX",
                      std::to_string(until - wall_now)});
      cmds.push_back({"PUBLISH", channel_,
                      nlohmann::json{{"username", name}, {"until", until}, {"from", instance_id_}}
                          .dump()});
    }
    if (cmds.empty()) continue;
    const auto replies = redis_.pipeline(cmds);
    if (!replies) {
      counters_.fail(SharedOp::kRevocationPublish);
      const std::lock_guard lock(mu_);
      // Back in front, in order, unless newer ones filled the queue meanwhile.
      for (auto it = batch.rbegin(); it != batch.rend() && pending_.size() < max_pending_; ++it)
        pending_.push_front(std::move(*it));
      return false;
    }
    counters_.revocations_published.fetch_add(cmds.size() / 2, std::memory_order_relaxed);
  }
}

bool RevocationSync::catch_up(int64_t wall_now) {
  const size_t skip = keys_.revoked("").size();
  std::string cursor = "0";
  do {
    const auto scan = redis_.command({"SCAN", cursor, "MATCH", keys_.revoked_pattern(), "COUNT",
                                      std::to_string(kBatch)});
    if (!scan || scan->type != RedisReply::Type::kArray || scan->elements.size() != 2 ||
        scan->elements[1].type != RedisReply::Type::kArray) {
      counters_.fail(SharedOp::kRevocationCatchUp);
      return false;
    }
    cursor = scan->elements[0].str;
    const auto& found = scan->elements[1].elements;
    if (found.empty()) continue;
    std::vector<std::string> mget{"MGET"};
    for (const auto& k : found) mget.push_back(k.str);
    const auto values = redis_.command(mget);
    if (!values || values->type != RedisReply::Type::kArray ||
        values->elements.size() != found.size()) {
      counters_.fail(SharedOp::kRevocationCatchUp);
      return false;
    }
    for (size_t i = 0; i < found.size(); ++i) {
      const auto until = parse_ms(values->elements[i].str);
      const std::string& key = found[i].str;
      if (!until || *until <= wall_now || key.size() <= skip) continue;
      const std::string name = key.substr(skip);
      if (name.size() > kMaxSharedUsernameBytes) continue;
      apply_(name, *until);
    }
  } while (cursor != "0" && !cursor.empty());
  return true;
}

}  // namespace callrelay::cluster
