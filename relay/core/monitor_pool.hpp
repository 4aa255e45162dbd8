// The media measuring state of an allocation, held only while media flows through it. A
// MediaMonitor is about 400 bytes (SSRC slots, pending Binding checks): most allocations are
// gathered by ICE and never relay a datagram, so an idle allocation holds a pointer instead
// and takes a monitor from its shard's pool at its first datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "relay/media/monitor.hpp"

namespace callrelay::core {

/// Spare monitors of one shard (single thread, no lock). The control path (a new allocation,
/// an ended one) keeps between kReserve and 2 * kReserve spares, so that the first datagram
/// of an allocation normally finds one without calling the allocator. When more allocations
/// than that start media between two Allocates, the data path allocates one (counted).
class MonitorPool {
 public:
  static constexpr size_t kReserve = 16;

  MonitorPool();
  MonitorPool(const MonitorPool&) = delete;
  MonitorPool& operator=(const MonitorPool&) = delete;

  /// Data path: a fresh monitor (from the spares when there is one).
  std::unique_ptr<media::MediaMonitor> take();
  /// Control path: `m` goes back to the spares (reset), or is freed beyond 2 * kReserve.
  void give_back(std::unique_ptr<media::MediaMonitor> m);
  /// Control path: tops the spares up to kReserve.
  void refill();

  size_t spares() const { return spares_.size(); }
  /// Monitors the data path had to allocate because no spare was left.
  uint64_t allocated_on_data_path() const { return allocated_on_data_path_; }

 private:
  std::vector<std::unique_ptr<media::MediaMonitor>> spares_;  ///< capacity 2 * kReserve
  uint64_t allocated_on_data_path_ = 0;
};

/// What an Allocation holds for media measurement: the call's payload map (kept while idle, so
/// a monitor taken later measures with it) and the monitor once the first datagram came.
/// Same calls as media::MediaMonitor, so the data path does not know the difference.
class LazyMonitor {
 public:
  LazyMonitor() = default;
  LazyMonitor(const LazyMonitor&) = delete;
  LazyMonitor& operator=(const LazyMonitor&) = delete;
  ~LazyMonitor() { release(); }

  /// Where monitors come from and go back to; set once, before the first datagram, on the
  /// control path (which also tops the pool up). Without a pool a monitor is allocated.
  void attach(MonitorPool* pool);

  void set_payload_map(const media::PayloadMap* map) {
    map_ = map;
    if (monitor_) monitor_->set_payload_map(map);
  }
  void on_client_datagram(std::span<const uint8_t> payload, int64_t now_us,
                          media::MediaCounters& out) {
    get().on_client_datagram(payload, now_us, out);
  }
  void on_peer_datagram(std::span<const uint8_t> payload, int64_t now_us,
                        media::MediaCounters& out) {
    get().on_peer_datagram(payload, now_us, out);
  }
  /// Whether a datagram came (a monitor is held).
  bool active() const { return monitor_ != nullptr; }

 private:
  media::MediaMonitor& get() {
    if (!monitor_) acquire();
    return *monitor_;
  }
  void acquire();
  void release();

  MonitorPool* pool_ = nullptr;
  const media::PayloadMap* map_ = nullptr;
  std::unique_ptr<media::MediaMonitor> monitor_;
};

}  // namespace callrelay::core
