// One worker's share of the relay port range, kept as a free-list ring so that taking and
// returning a port is O(1) and needs no lock (each worker owns a disjoint slice).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace callrelay::net {

/// The ports of [min, max] that belong to worker `index` of `count`, free or in use.
///
/// Ports are dealt out in pairs: port p belongs to worker (p / 2) % count. Pairs rather than
/// single ports (p % count) so that every worker owns even ports and the odd port right after
/// each of them, which EVEN-PORT with R=1 (RFC 8656 section 7.2, step 5) reserves together.
///
/// Thread: owned and used by one worker thread.
class PortSlice {
 public:
  PortSlice(uint16_t min, uint16_t max, unsigned index, unsigned count);

  /// Takes a free port, the least recently returned first. `even`: the port must be even.
  /// `pair`: port+1 must be free too, and is taken along with it. Looks at a bounded number
  /// of candidates (never the whole range); nullopt when none fits, so callers answer 508 at once.
  std::optional<uint16_t> take(bool even, bool pair);

  /// Returns a taken port to the back of the ring (after close, or after a bind that found the
  /// port used by another process: it is retried only after every other free port).
  void release(uint16_t port);

  bool owns(uint16_t port) const;
  bool is_free(uint16_t port) const;
  size_t free_count() const { return free_count_; }
  size_t size() const { return owned_; }

  /// Candidates take() examines at most per call.
  static constexpr size_t kMaxScan = 64;

 private:
  size_t slot(uint16_t port) const { return static_cast<size_t>(port - min_); }
  bool pop(uint16_t& port);
  void push(uint16_t port);

  uint16_t min_, max_;
  unsigned index_, count_;
  size_t owned_ = 0;
  size_t free_count_ = 0;
  std::vector<uint8_t> state_;  ///< per port of the range: kFree / kInRing bits
  std::vector<uint16_t> ring_;  ///< circular queue of candidate ports
  size_t head_ = 0, len_ = 0;
};

}  // namespace callrelay::net
