// A worker's inbox for work that other threads hand it (a client's data connection accepted by
// another worker, a state change owned by this worker's shard). Many producers, one consumer,
// no mutex: producers push onto a lock-free list with one compare-and-swap; the owning worker
// takes the whole list with one exchange and runs the messages in the order they were pushed.
// The first push onto an empty list writes the worker's eventfd, which its io_context watches,
// so a burst of messages costs one wake-up. Control path only (one allocation per message).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace callrelay::net {

class Mailbox {
 public:
  /// Watches an eventfd in `ctx` (the owning worker's). Throws asio::system_error when no
  /// eventfd can be made (startup only).
  explicit Mailbox(asio::io_context& ctx);
  /// Messages never run are destroyed without running (their destructors release what they
  /// carry). No producer may push concurrently with the destructor.
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  /// Any thread: `fn` (move-only is fine) runs on the owning worker's thread, after the
  /// messages pushed before it by the same thread. After close(), it is destroyed unrun when
  /// the mailbox is.
  template <typename Fn>
  void post(Fn&& fn) {
    push(new Message<std::decay_t<Fn>>(std::forward<Fn>(fn)));
  }

  /// Owning thread: starts running messages as they arrive (also those pushed before).
  void start();
  /// Owning thread: stops running messages and the wait (idempotent). Later pushes still
  /// succeed and are destroyed with the mailbox.
  void close();

  /// Owning thread: runs what is queued now; returns how many ran. (start() does this on
  /// every wake-up; tests call it directly.)
  size_t drain();

 private:
  struct Node {
    virtual ~Node() = default;
    virtual void run() = 0;
    Node* next = nullptr;
  };
  template <typename Fn>
  struct Message final : Node {
    explicit Message(Fn&& f) : fn(std::move(f)) {}
    explicit Message(const Fn& f) : fn(f) {}
    void run() override { fn(); }
    Fn fn;
  };

  void push(Node* n);
  void arm();
  /// Takes the whole list, oldest first.
  Node* take_all();

  std::atomic<Node*> head_{nullptr};  ///< newest first
  asio::posix::stream_descriptor wake_;
  bool closed_ = false;
};

}  // namespace callrelay::net
