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

/// relay.udp_gso for the send batches made after this call (each SendBatch reads it when it is
/// constructed): true is `auto` (segmentation offload where the kernel offers it), false `off`.
void set_udp_gso(bool on);
bool udp_gso_configured();
/// Whether the kernel takes UDP_SEGMENT (Linux 4.18+) on sockets of `family` (AF_INET or
/// AF_INET6): probed with getsockopt once per family, then remembered.
bool udp_gso_supported(int family);

/// The sockets whose route refused a segmented send (EIO: a device that cannot checksum
/// segments, or IPsec; EINVAL; EOPNOTSUPP): their datagrams go one by one from then on. Past
/// kMax sockets, offload goes off for the owner altogether.
class GsoRefusals {
 public:
  static constexpr size_t kMax = 16;
  /// Whether `err` from a send of several segments means the route refuses offload.
  static bool is_refusal(int err);
  bool refused(int fd) const;
  /// Logs the refusal (udp.gso_refused) and remembers `fd`; false when too many sockets
  /// refused: the owner turns offload off.
  bool refuse(int fd, int err);

 private:
  std::array<int, kMax> fds_{};
  size_t count_ = 0;
};

/// What sends a SendBatch's messages: sendmmsg's signature, so a test can refuse them.
using SendMany = int (*)(int fd, mmsghdr* msgs, unsigned n, int flags);

/// Datagrams queued to be sent together with sendmmsg. add() does not copy: the data must stay
/// valid until flush() (it points into the worker's RecvBatch). add_copy() copies small
/// datagrams (the server's STUN answers, built in a buffer the next request reuses) into storage
/// of the batch's own. Datagrams to the same socket keep their order; one sendmmsg per socket
/// per flush.
///
/// With UDP generic segmentation offload (`man 7 udp`, UDP_SEGMENT), datagrams of one flush on
/// one socket to one destination from one source, of one length (the last may be shorter), go
/// as one message of several iovecs whose control message gives the segment size: the kernel
/// walks its send path once for them and cuts them apart at the end. The receiver sees the same
/// datagrams. Order is kept per destination (not between destinations of one socket).
class SendBatch {
 public:
  static constexpr size_t kCapacity = 32;
  /// Segments of one GSO message: UDP_MAX_SEGMENTS of the kernels that take UDP_SEGMENT
  /// (64 before Linux 6.9, larger after).
  static constexpr size_t kMaxSegments = 64;
  /// Bytes of one GSO message: what one IPv4 datagram carries (65,535 - 20 - 8).
  static constexpr size_t kMaxGsoBytes = 65507;
  /// Longest segment sent with GSO. A segment longer than the route's MTU allows is refused
  /// with EINVAL, which would turn GSO off for the socket: media datagrams (1,200 bytes and a
  /// header) stay well under the 1,500-byte MTU less IPv6 and tunnel headers.
  static constexpr size_t kMaxGsoSegment = 1400;

  /// What the kernel was asked for, counted since construction.
  struct Stats {
    uint64_t calls = 0;         ///< sendmmsg calls
    uint64_t messages = 0;      ///< messages the kernel took (a GSO message counts once)
    uint64_t gso_messages = 0;  ///< of which carried several datagrams with UDP_SEGMENT
    uint64_t fallbacks = 0;     ///< GSO messages refused and sent again one datagram each
  };

  /// GSO on when relay.udp_gso is auto (set_udp_gso) and the kernel offers it.
  SendBatch();
  /// Turns GSO on (where the kernel offers it for the destination's family) or off.
  void set_gso(bool on) { gso_ = on; }
  bool gso() const { return gso_; }
  /// Replaces ::sendmmsg (tests).
  void set_send_function(SendMany send) { send_ = send; }
  const Stats& stats() const { return stats_; }
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
  static constexpr size_t kGsoControlSpace = kPktInfoSpace + 32;  // + CMSG_SPACE(uint16_t)

  void send_run(size_t begin, size_t end);
  /// Sorted entries [begin, end) of one socket as messages, GSO runs joined; returns their
  /// count, written from out_[0].
  size_t build_messages(size_t begin, size_t end);
  /// Length of the GSO run starting at sorted entry `i`, at most `end - i` (1: no GSO).
  size_t gso_run(size_t i, size_t end) const;
  bool same_route(size_t a, size_t b) const;  // sorted positions
  bool gso_allowed(int fd, size_t sorted) const;
  /// GSO message `m` was refused with `err`: sends its datagrams one by one and stops using
  /// GSO on `fd`.
  void fall_back(int fd, size_t m, int err);

  SendMany send_ = ::sendmmsg;
  Stats stats_;
  bool gso_ = false;
  GsoRefusals refused_;
  size_t count_ = 0;
  std::array<uint64_t, kCapacity> route_{};  // hash of destination and source, for grouping
  std::array<mmsghdr, kCapacity> out_{};
  std::array<iovec, kCapacity> out_iov_{};
  std::array<uint8_t, kCapacity> out_begin_{};  // sorted position of each message's first entry
  std::array<uint8_t, kCapacity> out_count_{};
  alignas(cmsghdr) std::array<std::array<uint8_t, kGsoControlSpace>, kCapacity> out_control_{};
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
