// The shard's spare media monitors and the allocation's lazily held one.
#include "relay/core/monitor_pool.hpp"

namespace callrelay::core {

MonitorPool::MonitorPool() { spares_.reserve(2 * kReserve); }

std::unique_ptr<media::MediaMonitor> MonitorPool::take() {
  if (spares_.empty()) {
    ++allocated_on_data_path_;
    return std::make_unique<media::MediaMonitor>();
  }
  std::unique_ptr<media::MediaMonitor> m = std::move(spares_.back());
  spares_.pop_back();
  return m;
}

void MonitorPool::give_back(std::unique_ptr<media::MediaMonitor> m) {
  if (!m || spares_.size() >= 2 * kReserve) return;  // freed here, on the control path
  *m = media::MediaMonitor{};  // the next allocation starts with no SSRC, no pending check
  spares_.push_back(std::move(m));  // within the reserved capacity: no allocation
}

void MonitorPool::refill() {
  while (spares_.size() < kReserve) spares_.push_back(std::make_unique<media::MediaMonitor>());
}

void LazyMonitor::attach(MonitorPool* pool) {
  pool_ = pool;
  if (pool_ != nullptr) pool_->refill();
}

void LazyMonitor::acquire() {
  monitor_ = pool_ != nullptr ? pool_->take() : std::make_unique<media::MediaMonitor>();
  monitor_->set_payload_map(map_);
}

void LazyMonitor::release() {
  if (!monitor_) return;
  if (pool_ != nullptr) {
    pool_->give_back(std::move(monitor_));
  } else {
    monitor_.reset();
  }
}

}  // namespace callrelay::core
