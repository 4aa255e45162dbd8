// Batched UDP I/O with recvmmsg/sendmmsg over preallocated buffers: the data path makes one
// system call per batch and allocates nothing.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "relay/core/types.hpp"
#include "relay/net/socket_ops.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// Receive buffers for batches of datagrams. Each slot leaves core::kPeerHeadroom bytes
/// before the payload and core::kPeerTailroom after it, so the core can turn a peer's datagram
/// into ChannelData or a Data indication in place.
///
/// One per worker: the worker's sockets are drained one at a time on its thread. Slots stay
/// in use (queued sends point into them) until reset(): receive() fills the free slots after
/// the used ones, so datagrams from several relay sockets can be sent in one sendmmsg.
class RecvBatch {
 public:
  static constexpr size_t kBatch = 32;
  /// Larger than any UDP payload (65,507 over IPv4, 65,527 over IPv6), so a 64 KiB datagram
  /// arrives whole; MSG_TRUNC is still checked.
  static constexpr size_t kMaxPayload = 65536;
  static constexpr size_t kSlotSize = core::kPeerHeadroom + kMaxPayload + core::kPeerTailroom;

  RecvBatch();
  RecvBatch(const RecvBatch&) = delete;
  RecvBatch& operator=(const RecvBatch&) = delete;

  /// recvmmsg(MSG_DONTWAIT) into the free slots, from first(). Returns the number of
  /// datagrams (> 0), or -errno (-EAGAIN when the socket is empty; also when no slot is free).
  /// `pktinfo`: also collect the destination address.
  int receive(int fd, bool pktinfo);
  /// First slot the last receive() filled.
  size_t first() const { return first_; }
  size_t free_slots() const { return kBatch - used_; }
  /// Marks every slot free: only once nothing queued points into them any more.
  void reset() { used_ = 0; }

  /// The whole slot i (headroom + payload capacity + tailroom).
  std::span<uint8_t> slot(size_t i) { return {storage_.get() + i * kSlotSize, kSlotSize}; }
  /// The datagram received in slot i.
  std::span<const uint8_t> payload(size_t i) const {
    return {storage_.get() + i * kSlotSize + core::kPeerHeadroom, length(i)};
  }
  size_t length(size_t i) const { return msgs_[i].msg_len; }
  /// The datagram did not fit (cannot happen for UDP, checked anyway): drop it.
  bool truncated(size_t i) const { return (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }
  std::optional<stun::Endpoint> source(size_t i) const;
  /// Local destination address from IP_PKTINFO (when receive() asked for it).
  std::optional<stun::Endpoint> destination(size_t i, uint16_t port) const {
    return pktinfo_destination(msgs_[i].msg_hdr, port);
  }

  /// Whether `p` points into these buffers (so it stays valid until reset()).
  bool contains(const uint8_t* p) const {
    const uint8_t* base = storage_.get();
    return p >= base && p < base + kBatch * kSlotSize;
  }

 private:
  std::unique_ptr<uint8_t[]> storage_;  // not zeroed: pages are touched only when used
  size_t used_ = 0;
  size_t first_ = 0;
  std::array<mmsghdr, kBatch> msgs_{};
  std::array<iovec, kBatch> iov_{};
  std::array<sockaddr_storage, kBatch> names_{};
  alignas(cmsghdr) std::array<std::array<uint8_t, kPktInfoSpace>, kBatch> control_{};
};

/// Datagrams queued to be sent together with sendmmsg. add() does not copy: the data must stay
/// valid until flush() (it points into the worker's RecvBatch). add_copy() copies small
/// datagrams (the server's STUN answers, built in a buffer the next request reuses) into storage
/// of the batch's own. Datagrams to the same socket keep their order; one sendmmsg per socket
/// per flush.
class SendBatch {
 public:
  static constexpr size_t kCapacity = 32;
  /// Largest datagram add_copy() takes: more than any answer the core builds (a 401 or an
  /// Allocate success with both relayed addresses is a few hundred bytes).
  static constexpr size_t kMaxCopy = 1280;

  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == kCapacity; }
  /// Queues one datagram on socket `fd` to `to`, leaving from `from` when given (IP_PKTINFO).
  /// The caller flushes first when full().
  void add(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
           std::span<const uint8_t> data);
  /// As add(), with a copy of `data`, which may be reused as soon as this returns. False (and
  /// nothing queued) when `data` is larger than kMaxCopy. The caller flushes first when full().
  bool add_copy(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
                std::span<const uint8_t> data);
  /// Sends everything queued. Errors (full socket buffers, ICMP errors) drop the datagram:
  /// UDP is lossy and the server must keep going.
  void flush();

 private:
  void send_run(size_t begin, size_t end);

  size_t count_ = 0;
  std::unique_ptr<uint8_t[]> copies_;  // kCapacity slots of kMaxCopy, made at the first copy
  std::array<int, kCapacity> fds_{};
  std::array<uint8_t, kCapacity> order_{};
  std::array<mmsghdr, kCapacity> msgs_{};
  std::array<mmsghdr, kCapacity> sorted_{};
  std::array<iovec, kCapacity> iov_{};
  std::array<sockaddr_storage, kCapacity> names_{};
  alignas(cmsghdr) std::array<std::array<uint8_t, kPktInfoSpace>, kCapacity> control_{};
};

/// Sends one datagram now with sendmsg (for data that is valid only until the next core call).
/// Returns 0 or the errno; the caller logs at debug level and carries on.
int send_now(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
             std::span<const uint8_t> data);

}  // namespace callrelay::net
