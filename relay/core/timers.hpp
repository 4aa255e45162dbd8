// Deadline queues for the core's housekeeping: what falls due next is found at the top of a
// heap, so expiring a handful of items costs O(log n) each and nothing is ever scanned in full
// on the packet thread, however many allocations a shard holds. Pure: no clock, no I/O.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "relay/core/types.hpp"

namespace callrelay::core {

/// "Nothing scheduled": later than any deadline.
inline constexpr TimeMs kNever = std::numeric_limits<TimeMs>::max();

/// An item's place in a DeadlineHeap, kept inside the item so that moving or removing it needs
/// no search. Not copied with the item (a copy is not in any heap).
struct TimerSlot {
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  TimeMs due = kNever;
  uint32_t index = kNone;

  TimerSlot() = default;
  TimerSlot(const TimerSlot&) {}
  TimerSlot& operator=(const TimerSlot&) { return *this; }
  bool scheduled() const { return index != kNone; }
};

/// A min-heap of items by deadline, each item at most once (its TimerSlot, the member `Slot`,
/// says where). schedule moves an item either way, remove takes it out; both O(log n). The
/// heap holds pointers: an item must be removed before it is destroyed or moved in memory.
template <typename T, TimerSlot T::*Slot>
class DeadlineHeap {
 public:
  DeadlineHeap() = default;
  DeadlineHeap(const DeadlineHeap&) = delete;
  DeadlineHeap& operator=(const DeadlineHeap&) = delete;
  ~DeadlineHeap() = default;  // touches no item: they may be gone already

  /// Puts `item` in the heap at `due`, or moves it there if it is in already.
  void schedule(T& item, TimeMs due) {
    TimerSlot& slot = item.*Slot;
    if (!slot.scheduled()) {
      slot.index = static_cast<uint32_t>(heap_.size());
      heap_.push_back({due, &item});
      slot.due = due;
      sift_up(slot.index);
      return;
    }
    const TimeMs old = slot.due;
    slot.due = due;
    heap_[slot.index].due = due;
    if (due < old) {
      sift_up(slot.index);
    } else {
      sift_down(slot.index);
    }
  }
  /// schedule, but only when `due` is sooner than where `item` is now (or it is not in): the
  /// item's entry stays at the earliest of its deadlines, and whoever handles it when it falls
  /// due finds the next one.
  void schedule_by(T& item, TimeMs due) {
    const TimerSlot& slot = item.*Slot;
    if (!slot.scheduled() || due < slot.due) schedule(item, due);
  }
  /// Takes `item` out (a no-op when it is not in).
  void remove(T& item) {
    TimerSlot& slot = item.*Slot;
    if (!slot.scheduled()) return;
    const uint32_t i = slot.index;
    slot.index = TimerSlot::kNone;  // (assigning a TimerSlot copies nothing, by design)
    slot.due = kNever;
    const Entry last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    place(i, last);
    if (i > 0 && last.due < heap_[parent(i)].due) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }
  /// The item due first, or null when empty.
  T* top() const { return heap_.empty() ? nullptr : heap_.front().item; }
  /// The earliest deadline, or kNever when empty.
  TimeMs next_due() const { return heap_.empty() ? kNever : heap_.front().due; }
  size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }
  /// Empties the heap; the items' slots say "not scheduled" again.
  void clear() {
    for (Entry& e : heap_) (e.item->*Slot).index = TimerSlot::kNone;
    heap_.clear();
  }

 private:
  /// The deadline is copied next to the pointer so that sifting compares without a load from
  /// each item (100k allocations are far apart in memory).
  struct Entry {
    TimeMs due;
    T* item;
  };
  static size_t parent(size_t i) { return (i - 1) / 2; }
  void place(size_t i, Entry e) {
    heap_[i] = e;
    (e.item->*Slot).index = static_cast<uint32_t>(i);
  }
  void sift_up(size_t i) {
    const Entry e = heap_[i];
    while (i > 0 && e.due < heap_[parent(i)].due) {
      place(i, heap_[parent(i)]);
      i = parent(i);
    }
    place(i, e);
  }
  void sift_down(size_t i) {
    const Entry e = heap_[i];
    const size_t n = heap_.size();
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1].due < heap_[child].due) ++child;
      if (!(heap_[child].due < e.due)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }

  std::vector<Entry> heap_;
};

/// A min-heap of (deadline, key) for items found by key in a table of their own (RFC 6062 peer
/// connections, reservations, idle payload maps): entries are only ever added, and one that
/// falls due after its item went or moved its deadline is stale, which the caller tells by
/// looking the key up. For items that rarely change their deadline.
template <typename Key>
class DeadlineQueue {
 public:
  struct Entry {
    TimeMs due;
    Key key;
    bool operator>(const Entry& o) const { return due > o.due; }
  };

  void push(TimeMs due, Key key) {
    heap_.push_back({due, std::move(key)});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
  }
  /// Whether the earliest entry is due at `now`.
  bool due(TimeMs now) const { return !heap_.empty() && heap_.front().due <= now; }
  /// Removes and returns the earliest entry; the queue must not be empty.
  Entry pop() {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
    Entry e = std::move(heap_.back());
    heap_.pop_back();
    return e;
  }
  TimeMs next_due() const { return heap_.empty() ? kNever : heap_.front().due; }
  size_t size() const { return heap_.size(); }
  /// Drops the entries `stale` names and rebuilds the heap: O(n), for when stale entries
  /// outnumber the live items (a bound on memory, not a per-packet cost).
  template <typename Stale>
  void compact(Stale&& stale) {
    std::erase_if(heap_, [&](const Entry& e) { return stale(e); });
    std::make_heap(heap_.begin(), heap_.end(), std::greater<>{});
  }
  void clear() { heap_.clear(); }

 private:
  std::vector<Entry> heap_;
};

}  // namespace callrelay::core
