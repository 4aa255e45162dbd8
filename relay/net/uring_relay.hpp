// The io_uring data path for a worker's relay sockets: one multishot recvmsg per relay socket
// receiving into a ring of provided buffers, completions harvested in batches from one ring
// whose descriptor is the only thing the worker's io_context waits on for all of them, and
// datagrams to peers queued as sendmsg submissions that leave in one io_uring_enter however many
// relay sockets they use. The epoll path (the worker's epoll set of relay sockets, one
// recvmmsg/sendmmsg per socket) stays the fallback where io_uring is missing or refused (old
// kernel, seccomp).
#pragma once

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio.hpp>

#include "relay/core/types.hpp"
#include "relay/net/udp_batch.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// How relay sockets are driven (config `relay.io`).
enum class RelayIo : uint8_t {
  kAuto,    ///< io_uring when uring_unavailable() says it works, else epoll
  kUring,   ///< io_uring; the server does not start without it
  kEpoll,   ///< one epoll set per worker for its relay sockets (RelaySockets)
};
std::optional<RelayIo> parse_relay_io(std::string_view text);
const char* to_string(RelayIo io);

/// Empty when this process can use the io_uring features the data path needs (ring setup,
/// provided buffer rings, multishot recvmsg, sendmsg, cancel), found by using them once on a
/// loopback socket; otherwise why not. Computed once per process.
const std::string& uring_unavailable();

/// The process's configured choice (config `relay.io`), read by each worker as it starts;
/// kAuto until set. Set before the server starts (the app does, from the configuration).
void set_relay_io(RelayIo io);
RelayIo configured_relay_io();

/// What `configured` resolves to here: kAuto becomes kEpoll for now (the environment variable
/// CALLRELAY_RELAY_IO=io_uring|epoll, when set, decides for kAuto: tests run both paths with one
/// configuration). kUring stays kUring even if unavailable (the caller reports it).
RelayIo resolve_relay_io(RelayIo configured);

/// One worker's ring. Thread: the worker's thread only. Nothing on the data path allocates.
class UringRelay {
 public:
  /// Datagrams received and handed to the sink. `slot` spans the whole buffer: the payload is
  /// at [core::kPeerHeadroom, core::kPeerHeadroom + len) with core::kPeerTailroom bytes after
  /// it (the core frames in place); the buffer stays valid until release_buffers().
  class Sink {
   public:
    virtual void on_relay_datagram(core::RelayId id, const stun::Endpoint& peer,
                                   std::span<uint8_t> slot, size_t len) = 0;

   protected:
    ~Sink() = default;
  };

  /// Provided receive buffers (a power of two, as the kernel requires).
  static constexpr unsigned kBuffers = 256;
  /// Space for the source address the kernel writes before the payload: with the 16-byte
  /// io_uring_recvmsg_out header it makes the payload start exactly core::kPeerHeadroom bytes
  /// into the buffer, so headroom costs nothing; an IPv6 sockaddr (28 bytes) fits.
  static constexpr size_t kNameSpace = core::kPeerHeadroom - sizeof(io_uring_recvmsg_out);
  /// A 64 KiB datagram arrives whole, as on the Asio path (MSG_TRUNC is still checked).
  static constexpr size_t kMaxPayload = 65536;
  static constexpr size_t kBufferSize = core::kPeerHeadroom + kMaxPayload + core::kPeerTailroom;
  /// Sends queued or in flight at once; more waits for a submit.
  static constexpr size_t kSendSlots = 128;

  /// Throws std::system_error when the ring or its buffer ring cannot be set up.
  explicit UringRelay(asio::io_context& ctx);
  ~UringRelay();
  UringRelay(const UringRelay&) = delete;
  UringRelay& operator=(const UringRelay&) = delete;

  /// Starts receiving on relay socket `fd` (non-blocking UDP) as relay `id`: its datagrams
  /// reach the sink from harvest() until unwatch(id). The request leaves with the next submit.
  void watch(int fd, core::RelayId id);
  /// Stops receiving on `id` before its socket is closed: cancelled now, so the kernel drops
  /// its reference to the socket (and the port is free again) when the caller closes it.
  /// Datagrams of `id` still in the completion queue are dropped.
  void unwatch(core::RelayId id);
  bool watching(core::RelayId id) const { return id < watches_.size() && watches_[id].fd >= 0; }
  /// Descriptors still watched (the worker closes them at shutdown).
  std::vector<int> watched_fds() const;

  /// Queues `data` to `to` on relay socket `fd`; it leaves with the next submit() (one system
  /// call for everything queued, whatever the socket). `data` must stay valid until then.
  /// The datagrams queued to one peer on one socket, wherever they fall among the others, join
  /// one sendmsg with UDP segmentation offload (as SendBatch does on the epoll path), in the
  /// order they were queued, where relay.udp_gso and the kernel allow: the kernel walks its
  /// send path once for them and the peer receives the same datagrams.
  void send(int fd, const stun::Endpoint& to, std::span<const uint8_t> data);
  /// Submits what is queued (sends, re-armed receives) and waits until every send has
  /// completed, so the buffers they point into may be reused: UDP sendmsg with MSG_DONTWAIT
  /// completes inside the submit (sent, or failed with EAGAIN when the socket buffer is full:
  /// dropped, as UDP drops).
  void submit();

  /// Hands up to `max` received datagrams to `sink` (each costs one buffer until
  /// release_buffers()). Returns how many completions it consumed (0: the queue is empty).
  size_t harvest(Sink& sink, size_t max);
  /// Whether completions are waiting.
  bool ready() const;
  /// Returns the buffers handed out since the last call to the kernel, and re-arms receives
  /// that stopped for want of buffers. Only when nothing points into them any more.
  void release_buffers();
  /// Whether `p` points into the receive buffers (valid until release_buffers()).
  bool contains(const uint8_t* p) const {
    const uint8_t* base = buffers_.get();
    return p >= base && p < base + static_cast<size_t>(kBuffers) * kBufferSize;
  }

  /// Calls `handler(error_code)` once the ring has completions to harvest (the ring's
  /// descriptor in the worker's io_context: timers, streams and posted work keep running).
  template <typename Handler>
  void async_wait(Handler&& handler) {
    ring_fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                        std::forward<Handler>(handler));
  }
  void close();

  /// Counters for tests and the log: datagrams received, datagrams sent, sends failed (a
  /// failed send with segmentation offload counts once), and sendmsg submissions that carried
  /// several datagrams with UDP_SEGMENT.
  uint64_t received() const { return received_; }
  uint64_t sent() const { return sent_; }
  uint64_t send_errors() const { return send_errors_; }
  uint64_t gso_sends() const { return gso_sends_; }
  /// Segmentation offload on (relay.udp_gso and the kernel) for sends queued from now on.
  bool gso() const { return gso_; }
  void set_gso(bool on) { gso_ = on; }

 private:
  struct Watch {
    int fd = -1;
    uint32_t generation = 0;
    bool armed = false;
  };
  struct SendSlot {
    msghdr hdr{};
    sockaddr_storage name{};
    alignas(cmsghdr) std::array<uint8_t, CMSG_SPACE(sizeof(uint16_t))> control{};
  };
  /// The send datagrams may still join: the last one queued, while it has room.
  struct OpenSend {
    io_uring_sqe* sqe = nullptr;  ///< nullptr: none
    uint16_t slot = 0;
    int fd = -1;
    stun::Endpoint to;
    size_t segment = 0;  ///< every datagram but the last is this long
    size_t bytes = 0;
  };
  /// A send queued until submit(), which lays the queue into submissions grouped by socket and
  /// peer: clients' datagrams arrive interleaved, and only a peer's run can be one segmented send.
  struct QueuedSend {
    int fd = -1;
    stun::Endpoint to;
    const uint8_t* data = nullptr;
    size_t len = 0;
  };
  /// Orders the queue: (socket, hash of the peer) and then the queue position, so each peer's
  /// datagrams keep their order.
  struct SendOrder {
    uint64_t key = 0;
    uint16_t index = 0;
  };
  void prepare_queued();
  void prepare(int fd, const stun::Endpoint& to, std::span<const uint8_t> data);
  bool join_open_send(int fd, const stun::Endpoint& to, std::span<const uint8_t> data);
  /// Issues the prepared submissions (io_uring_enter); their message headers are free again.
  void enter();
  io_uring_sqe* next_sqe();
  void arm(core::RelayId id);
  void on_receive(const io_uring_cqe& cqe, Sink& sink);
  void on_send(const io_uring_cqe& cqe);
  void give_buffer(uint16_t bid);

  io_uring ring_{};
  bool ring_ok_ = false;
  asio::posix::stream_descriptor ring_fd_;
  std::unique_ptr<uint8_t[]> buffers_;
  io_uring_buf_ring* buf_ring_ = nullptr;  // mmap'ed, page aligned
  size_t buf_ring_bytes_ = 0;
  msghdr recv_template_{};  // what the kernel lays each buffer out by
  std::vector<Watch> watches_;
  std::vector<core::RelayId> starved_;  // receives ended by ENOBUFS, re-armed on release
  std::array<uint16_t, kBuffers> held_{};
  size_t held_count_ = 0;
  std::array<SendSlot, kSendSlots> sends_{};
  std::array<uint16_t, kSendSlots> free_sends_{};
  size_t free_send_count_ = kSendSlots;
  // One iovec per datagram queued, in queueing order: a send's datagrams are contiguous.
  std::array<iovec, kSendSlots> send_iovs_{};
  size_t send_iovs_used_ = 0;
  OpenSend open_;
  std::array<QueuedSend, kSendSlots> queue_{};
  std::array<SendOrder, kSendSlots> order_{};
  size_t queued_sends_ = 0;
  bool gso_ = false;
  GsoRefusals refused_;
  size_t queued_ = 0;  // SQEs prepared since the last submit
  uint64_t received_ = 0, sent_ = 0, send_errors_ = 0, gso_sends_ = 0;
};

}  // namespace callrelay::net
