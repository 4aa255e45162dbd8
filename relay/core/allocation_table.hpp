// A shard's allocations by client 5-tuple (RFC 8656 section 2.2: the 5-tuple names the
// allocation). The key is the allocation's own info.client, so an entry is one owning pointer
// and its hash: a map keyed by a copy of the 5-tuple paid 48 bytes more per allocation.
#pragma once

#include <cstddef>
#include <memory>
#include <unordered_set>

#include "relay/core/allocation.hpp"
#include "relay/core/types.hpp"

namespace callrelay::core {

class AllocationTable {
  /// Hashes an allocation by its client 5-tuple, or a 5-tuple being looked up. Not noexcept on
  /// purpose: the table then keeps each entry's hash, so a lookup compares hashes before it
  /// reads any allocation (a 5-tuple compare reads one far away in memory).
  struct Hash {
    using is_transparent = void;
    size_t operator()(const FiveTuple& t) const { return FiveTupleHash{}(t); }
    size_t operator()(const std::unique_ptr<Allocation>& a) const {
      return FiveTupleHash{}(a->info.client);
    }
  };
  struct Equal {
    using is_transparent = void;
    static const FiveTuple& key(const FiveTuple& t) { return t; }
    static const FiveTuple& key(const std::unique_ptr<Allocation>& a) { return a->info.client; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return key(a) == key(b);
    }
  };
  using Set = std::unordered_set<std::unique_ptr<Allocation>, Hash, Equal>;

 public:
  /// The allocation on `t`, or null.
  Allocation* find(const FiveTuple& t) const {
    const auto it = set_.find(t);
    return it == set_.end() ? nullptr : it->get();
  }
  bool contains(const FiveTuple& t) const { return set_.find(t) != set_.end(); }
  size_t size() const { return set_.size(); }
  bool empty() const { return set_.empty(); }

  /// Adds `a` under its info.client, which must not change while it is in. An allocation
  /// already on that 5-tuple is replaced (and destroyed).
  Allocation& insert(std::unique_ptr<Allocation> a) {
    if (const auto it = set_.find(a->info.client); it != set_.end()) set_.erase(it);
    return **set_.insert(std::move(a)).first;
  }
  /// Takes the allocation on `t` out of the table; null when there is none.
  std::unique_ptr<Allocation> take(const FiveTuple& t) {
    const auto it = set_.find(t);
    if (it == set_.end()) return nullptr;
    return std::move(set_.extract(it).value());
  }

  /// Iteration (each element a const std::unique_ptr<Allocation>&); no insert or take meanwhile.
  Set::const_iterator begin() const { return set_.begin(); }
  Set::const_iterator end() const { return set_.end(); }

 private:
  Set set_;
};

}  // namespace callrelay::core
