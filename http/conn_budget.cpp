#include "http/conn_budget.hpp"

#include <iterator>
#include <utility>

namespace callrelay::http {

ConnectionBudget::ConnectionBudget(Limits limits, base::LimitCounters* counters)
    : limits_(limits), counters_(counters) {}

ConnectionBudget::Id ConnectionBudget::open(const std::string& address,
                                            std::weak_ptr<Evictable> conn) {
  std::shared_ptr<Evictable> victim;
  Id id = 0;
  {
    const std::lock_guard lock(mutex_);
    const auto per = per_address_.find(address);
    if (per != per_address_.end() && per->second >= limits_.max_per_address) {
      hit(base::Limit::kHttpPerAddress);
      return 0;
    }
    if (conns_.size() >= limits_.max_total) {
      // Make room: the connection that has waited longest for a request head gives way. A
      // waiter whose session is already gone only frees its slot.
      while (conns_.size() >= limits_.max_total && !waiters_.empty()) {
        const auto it = conns_.find(waiters_.front());
        victim = it->second.session.lock();
        forget(it);
        if (victim) break;
      }
      if (conns_.size() >= limits_.max_total) {
        hit(base::Limit::kHttpTotal);
        return 0;
      }
      if (victim) hit(base::Limit::kHttpTotal);
    }
    id = ++last_id_;
    waiters_.push_back(id);
    conns_.emplace(id, Conn{address, std::move(conn), true, std::prev(waiters_.end())});
    ++per_address_[address];
  }
  if (victim) victim->evict();
  return id;
}

void ConnectionBudget::serving(Id id) {
  const std::lock_guard lock(mutex_);
  const auto it = conns_.find(id);
  if (it == conns_.end() || !it->second.waiting) return;
  waiters_.erase(it->second.in_waiters);
  it->second.waiting = false;
}

void ConnectionBudget::waiting(Id id) {
  const std::lock_guard lock(mutex_);
  const auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second.waiting) waiters_.erase(it->second.in_waiters);
  waiters_.push_back(id);
  it->second.in_waiters = std::prev(waiters_.end());
  it->second.waiting = true;
}

void ConnectionBudget::close(Id id) {
  const std::lock_guard lock(mutex_);
  const auto it = conns_.find(id);
  if (it != conns_.end()) forget(it);
}

void ConnectionBudget::forget(std::unordered_map<Id, Conn>::iterator it) {
  if (it->second.waiting) waiters_.erase(it->second.in_waiters);
  const auto per = per_address_.find(it->second.address);
  if (per != per_address_.end() && --per->second == 0) per_address_.erase(per);
  conns_.erase(it);
}

ConnectionBudget::WsAdmit ConnectionBudget::open_websocket(const std::string& address,
                                                           WsLimits limits) {
  const std::lock_guard lock(mutex_);
  if (limits.max_total != 0 && ws_total_ >= limits.max_total) {
    hit(base::Limit::kWsTotal);
    return WsAdmit::kTotal;
  }
  size_t& mine = ws_per_address_[address];
  if (limits.max_per_address != 0 && mine >= limits.max_per_address) {
    hit(base::Limit::kWsPerAddress);
    return WsAdmit::kPerAddress;
  }
  ++mine;
  ++ws_total_;
  return WsAdmit::kAccepted;
}

void ConnectionBudget::close_websocket(const std::string& address) {
  const std::lock_guard lock(mutex_);
  const auto it = ws_per_address_.find(address);
  if (it == ws_per_address_.end()) return;
  if (--it->second == 0) ws_per_address_.erase(it);
  --ws_total_;
}

size_t ConnectionBudget::connections() const {
  const std::lock_guard lock(mutex_);
  return conns_.size();
}

size_t ConnectionBudget::websockets() const {
  const std::lock_guard lock(mutex_);
  return ws_total_;
}

size_t ConnectionBudget::connections_from(const std::string& address) const {
  const std::lock_guard lock(mutex_);
  const auto it = per_address_.find(address);
  return it == per_address_.end() ? 0 : it->second;
}

}  // namespace callrelay::http
