// Quotas across workers (locked on Allocate and on an allocation's end) and the gate every
// relayed byte of an allocation passes (atomics only).
#include "relay/core/user_limits.hpp"

#include <algorithm>
#include <utility>

namespace callrelay::core {

UserSlot::UserSlot(UserLimits* owner, UserEntry* entry) : owner_(owner), entry_(entry) {}

UserSlot::~UserSlot() { reset(); }

UserSlot::UserSlot(UserSlot&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), entry_(std::exchange(o.entry_, nullptr)) {}

UserSlot& UserSlot::operator=(UserSlot&& o) noexcept {
  if (this != &o) {
    reset();
    owner_ = std::exchange(o.owner_, nullptr);
    entry_ = std::exchange(o.entry_, nullptr);
  }
  return *this;
}

void UserSlot::reset() {
  if (owner_ != nullptr && entry_ != nullptr) owner_->release(entry_);
  owner_ = nullptr;
  entry_ = nullptr;
}

UserLimits::UserLimits(const BandwidthConfig& bw, base::LimitCounters* counters) : counters_(counters) {
  reconfigure(bw);
}

UserSlot UserLimits::acquire(std::string_view key, uint32_t max_per_user, uint32_t max_total,
                             QuotaRefusal* why) {
  *why = QuotaRefusal::kNone;
  UserEntry* entry = nullptr;
  {
    const std::lock_guard lock(mu_);
    if (max_total != 0 && total_allocations_ >= max_total) {
      *why = QuotaRefusal::kTotal;
      return {};
    }
    auto it = users_.find(std::string(key));
    if (it != users_.end() && max_per_user != 0 && it->second.allocations >= max_per_user) {
      *why = QuotaRefusal::kUser;
      if (counters_ != nullptr) counters_->hit(base::Limit::kUserQuota);
      return {};
    }
    if (it == users_.end()) it = users_.try_emplace(std::string(key)).first;
    ++it->second.allocations;
    ++total_allocations_;
    entry = &*it;  // stable while the count just taken holds the entry
  }
  // The other instances' count is asked outside the mutex: other workers' allocations start
  // and end meanwhile. Refused there, the local count is taken back without telling the store.
  if (shared_ != nullptr && !shared_->admit(key, max_per_user)) {
    release_local(key);
    *why = QuotaRefusal::kUser;
    if (counters_ != nullptr) counters_->hit(base::Limit::kUserQuota);
    return {};
  }
  return UserSlot(this, entry);
}

void UserLimits::release(UserEntry* entry) {
  if (shared_ == nullptr) {
    release_local(entry->first);
    return;
  }
  // The entry may be erased with its last allocation: the store is told with a copy.
  const std::string key = entry->first;
  release_local(key);
  shared_->released(key);
}

void UserLimits::release_local(std::string_view key) {
  const std::lock_guard lock(mu_);
  const auto it = users_.find(std::string(key));
  if (it == users_.end()) return;
  --total_allocations_;
  if (--it->second.allocations == 0) users_.erase(it);
}

uint32_t UserLimits::allocations(std::string_view key) const {
  const std::lock_guard lock(mu_);
  const auto it = users_.find(std::string(key));
  return it == users_.end() ? 0 : it->second.allocations;
}

uint32_t UserLimits::total_allocations() const {
  const std::lock_guard lock(mu_);
  return total_allocations_;
}

size_t UserLimits::user_count() const {
  const std::lock_guard lock(mu_);
  return users_.size();
}

std::vector<std::pair<std::string, uint32_t>> UserLimits::user_counts() const {
  const std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, uint32_t>> out;
  out.reserve(users_.size());
  for (const auto& [key, share] : users_) out.emplace_back(key, share.allocations);
  return out;
}

void UserLimits::reconfigure(const BandwidthConfig& bw) {
  user_rate_.store(make_rate(bw.user_max_bps, bw.burst_ms));
  total_rate_.store(make_rate(bw.total_max_bps, bw.burst_ms));
}

// --- the gate --------------------------------------------------------------------------------

void BandwidthGate::count(base::Limit which, uint64_t dropped) const {
  base::LimitCounters* c = limits_ != nullptr ? limits_->counters() : nullptr;
  if (c == nullptr) return;
  c->hit(which);
  if (dropped != 0) c->dropped_bytes(which, dropped);
}

bool BandwidthGate::admit(Direction d, uint64_t bytes, TimeMs now) {
  if (own_ == nullptr) return true;  // a default gate (no caps attached)
  const auto i = static_cast<size_t>(d);
  const Rate own = make_rate(own_->max_bps, own_->burst_ms);
  if (!own_bucket_[i].take(bytes, now, own)) {
    count(base::Limit::kBandwidthAllocation, bytes);
    return false;
  }
  if (limits_ == nullptr) return true;
  UserShare* user = slot_.share();
  const Rate user_rate = limits_->user_rate();
  if (user != nullptr && !user->buckets[i].take(bytes, now, user_rate)) {
    own_bucket_[i].give_back(bytes, own);
    count(base::Limit::kBandwidthUser, bytes);
    return false;
  }
  const Rate total = limits_->total_rate();
  if (!limits_->total_bucket(d).take(bytes, now, total)) {
    own_bucket_[i].give_back(bytes, own);
    if (user != nullptr) user->buckets[i].give_back(bytes, user_rate);
    count(base::Limit::kBandwidthTotal, bytes);
    return false;
  }
  return true;
}

TimeMs BandwidthGate::charge(Direction d, uint64_t bytes, TimeMs now) {
  if (own_ == nullptr) return 0;
  const auto i = static_cast<size_t>(d);
  TimeMs wait = own_bucket_[i].charge(bytes, now, make_rate(own_->max_bps, own_->burst_ms));
  base::Limit which = base::Limit::kBandwidthAllocation;
  if (limits_ != nullptr) {
    if (UserShare* user = slot_.share()) {
      const TimeMs w = user->buckets[i].charge(bytes, now, limits_->user_rate());
      if (w > wait) {
        wait = w;
        which = base::Limit::kBandwidthUser;
      }
    }
    const TimeMs w = limits_->total_bucket(d).charge(bytes, now, limits_->total_rate());
    if (w > wait) {
      wait = w;
      which = base::Limit::kBandwidthTotal;
    }
  }
  if (wait > 0) count(which, 0);  // paced, nothing dropped
  return wait;
}

}  // namespace callrelay::core
