// A list of a few trivially copyable values with room for one of them inline: an allocation's
// permissions and channel bindings. An allocation usually relays for one ICE candidate pair,
// so one peer: the common case costs no heap block and no vector header beside it; more
// entries move to the heap, growing like a vector.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace callrelay::core {

template <typename T>
class SmallList {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "entries are moved with memcpy");

 public:
  SmallList() = default;
  SmallList(const SmallList&) = delete;
  SmallList& operator=(const SmallList&) = delete;
  ~SmallList() {
    if (on_heap()) std::free(many_);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }

  void push_back(const T& v) {
    if (size_ == capacity_) grow();
    data()[size_++] = v;
  }

  /// Removes the entries `pred` accepts, keeping the others' order (as std::erase_if).
  template <typename Pred>
  size_t remove_if(Pred pred) {
    T* first = data();
    T* kept_end = std::remove_if(first, first + size_, pred);
    const size_t removed = static_cast<size_t>(first + size_ - kept_end);
    size_ -= static_cast<uint32_t>(removed);
    return removed;
  }

 private:
  bool on_heap() const { return capacity_ > 1; }
  T* data() { return on_heap() ? many_ : &one_; }
  const T* data() const { return on_heap() ? many_ : &one_; }

  void grow() {
    const uint32_t cap = capacity_ * 2;
    auto* heap = static_cast<T*>(std::malloc(sizeof(T) * cap));
    if (heap == nullptr) throw std::bad_alloc();
    std::memcpy(static_cast<void*>(heap), data(), sizeof(T) * size_);
    if (on_heap()) std::free(many_);
    many_ = heap;
    capacity_ = cap;
  }

  union {
    T one_{};  ///< capacity_ == 1
    T* many_;  ///< capacity_ > 1
  };
  uint32_t size_ = 0;
  uint32_t capacity_ = 1;
};

}  // namespace callrelay::core
