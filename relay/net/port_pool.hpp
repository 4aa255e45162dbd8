// The relay port range of one relay address, shared by every worker: a bitmap of atomic words
// taken and given back with compare-and-swap, so no worker waits on another's lock and clients
// behind one NAT address can use every port, whichever worker they reach.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace callrelay::net {

/// The ports [min, max] of one relay address. Bit set: taken (by an open relay socket or a
/// reservation), clear: free. A worker searches from its own Cursor, which moves past each port
/// it takes, so workers rarely touch the same word and a port given back (or one another
/// process holds: the bind fails, it is given back) is tried again only after the cursor went
/// round the whole range.
///
/// Thread: any thread may take and release; each Cursor belongs to one thread.
class PortPool {
 public:
  PortPool(uint16_t min, uint16_t max);
  PortPool(const PortPool&) = delete;
  PortPool& operator=(const PortPool&) = delete;

  /// Where one worker's next search starts (its own, never shared between threads).
  struct Cursor {
    size_t bit = 0;
  };
  /// A cursor for worker `index` of `count`: the workers start evenly spread over the range,
  /// from `start` (a bit offset; a server draws it at random, so that the relays of several
  /// processes on one host do not all try the same ports first).
  Cursor cursor(unsigned index, unsigned count, size_t start = 0) const;

  /// Takes a free port at or after `cursor` (wrapping round). `even`: the port must be even.
  /// `pair`: the port is even and port+1 is free too; both are taken in one atomic step (RFC
  /// 8656 section 7.2 EVEN-PORT with R=1). Looks at every word of the range at most once (a
  /// bounded scan: 1025 words for the whole 16-bit range); nullopt when nothing fits, so the
  /// caller answers 508 at once.
  std::optional<uint16_t> take(Cursor& cursor, bool even, bool pair);
  /// Gives a taken port back. Releasing a free port or one outside the range does nothing.
  void release(uint16_t port);

  bool contains(uint16_t port) const { return port >= min_ && port <= max_; }
  bool is_free(uint16_t port) const;
  /// Free ports now (a snapshot: other threads may take or release meanwhile).
  size_t free_count() const;
  size_t size() const { return static_cast<size_t>(max_ - min_) + 1; }
  uint16_t min() const { return min_; }
  uint16_t max() const { return max_; }

 private:
  /// Bit i of the map is port base_ + i; base_ is min rounded down to a multiple of 64, so a
  /// bit's parity is its port's and an even port's pair never straddles two words.
  size_t bit_of(uint16_t port) const { return static_cast<size_t>(port - base_); }

  uint16_t min_, max_;
  uint32_t base_;
  size_t words_;
  std::unique_ptr<std::atomic<uint64_t>[]> map_;
};

}  // namespace callrelay::net
