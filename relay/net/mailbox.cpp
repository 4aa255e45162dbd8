#include "relay/net/mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace callrelay::net {

namespace {

int make_eventfd() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    throw asio::system_error(asio::error_code(errno, asio::system_category()), "eventfd");
  }
  return fd;
}

}  // namespace

Mailbox::Mailbox(asio::io_context& ctx) : wake_(ctx, make_eventfd()) {}

Mailbox::~Mailbox() {
  close();
  for (Node* n = head_.exchange(nullptr, std::memory_order_acquire); n != nullptr;) {
    Node* next = n->next;
    delete n;
    n = next;
  }
}

void Mailbox::push(Node* n) {
  Node* old = head_.load(std::memory_order_relaxed);
  do {
    n->next = old;
  } while (
      !head_.compare_exchange_weak(old, n, std::memory_order_release, std::memory_order_relaxed));
  // Only the push that found the list empty wakes the worker: every later one is taken by the
  // drain that wake-up causes (the drain empties the list with one exchange, so a push after
  // it finds the list empty again and wakes once more).
  if (old == nullptr) {
    const uint64_t one = 1;
    // The counter cannot overflow (the consumer reads it to zero on each wake-up); EAGAIN would
    // mean a wake-up is pending anyway.
    [[maybe_unused]] const ssize_t w = ::write(wake_.native_handle(), &one, sizeof one);
  }
}

Mailbox::Node* Mailbox::take_all() {
  Node* n = head_.exchange(nullptr, std::memory_order_acquire);
  Node* oldest_first = nullptr;
  while (n != nullptr) {  // the list is newest first: reverse it
    Node* next = n->next;
    n->next = oldest_first;
    oldest_first = n;
    n = next;
  }
  return oldest_first;
}

size_t Mailbox::drain() {
  size_t ran = 0;
  for (Node* n = take_all(); n != nullptr; ++ran) {
    Node* next = n->next;
    n->run();
    delete n;
    n = next;
  }
  return ran;
}

void Mailbox::start() {
  closed_ = false;
  drain();  // pushed before the wait existed (their wake-up is consumed by the first arm)
  arm();
}

void Mailbox::arm() {
  wake_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const asio::error_code& ec) {
    if (ec || closed_) return;
    // Reset the counter before taking the list: a push after the take finds the list empty
    // and writes again, so no message waits for a wake-up that was already consumed.
    uint64_t count = 0;
    [[maybe_unused]] const ssize_t r = ::read(wake_.native_handle(), &count, sizeof count);
    drain();
    if (!closed_) arm();
  });
}

void Mailbox::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  wake_.cancel(ignored);
}

}  // namespace callrelay::net
