#include "relay/net/uring_relay.hpp"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "base/log.hpp"
#include "relay/net/socket_ops.hpp"

namespace callrelay::net {

namespace {

// user_data of a submission: its kind in the top two bits; a receive carries the watch's
// generation and relay id (a completion of a socket closed since is recognised and dropped), a
// send its socket and how many datagrams it carries.
constexpr uint64_t kKindShift = 62;
constexpr uint64_t kRecv = 1, kSend = 2, kCancel = 3;
constexpr uint32_t kGenerationMask = (1u << 30) - 1;
constexpr uint16_t kGroup = 0;  // the one provided buffer group

uint64_t recv_tag(core::RelayId id, uint32_t generation) {
  return (kRecv << kKindShift) | (static_cast<uint64_t>(generation & kGenerationMask) << 32) | id;
}

uint64_t send_tag(int fd, size_t datagrams) {
  return (kSend << kKindShift) | (static_cast<uint64_t>(datagrams & 0xFF) << 32) |
         static_cast<uint32_t>(fd);
}

std::system_error uring_error(int err, const char* what) {
  return std::system_error(err, std::generic_category(), what);
}

}  // namespace

std::optional<RelayIo> parse_relay_io(std::string_view text) {
  if (text == "auto") return RelayIo::kAuto;
  if (text == "io_uring") return RelayIo::kUring;
  if (text == "epoll") return RelayIo::kEpoll;
  return std::nullopt;
}

const char* to_string(RelayIo io) {
  switch (io) {
    case RelayIo::kAuto: return "auto";
    case RelayIo::kUring: return "io_uring";
    case RelayIo::kEpoll: return "epoll";
  }
  return "auto";
}

namespace {

// Uses every feature the data path needs once, on a loopback socket pair: a provided buffer
// ring, a multishot recvmsg that gets a datagram and stays armed, a sendmsg, a cancel.
std::string probe_uring() {
  asio::io_context ctx;
  std::optional<UringRelay> ring;
  try {
    ring.emplace(ctx);
  } catch (const std::system_error& e) {
    return e.what();
  }
  const OpenResult rx = open_udp(stun::Endpoint::v4({127, 0, 0, 1}, 0), UdpOptions{});
  const OpenResult tx = open_udp(stun::Endpoint::v4({127, 0, 0, 1}, 0), UdpOptions{});
  if (rx.fd < 0 || tx.fd < 0) {
    if (rx.fd >= 0) ::close(rx.fd);
    if (tx.fd >= 0) ::close(tx.fd);
    return "no loopback UDP socket to probe with";
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(rx.fd, reinterpret_cast<sockaddr*>(&ss), &len);
  const auto to = from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
  struct Probe final : UringRelay::Sink {
    size_t got = 0;
    void on_relay_datagram(core::RelayId, const stun::Endpoint&, std::span<uint8_t> slot,
                           size_t n) override {
      if (n == 5 && std::memcmp(slot.data() + core::kPeerHeadroom, "probe", 5) == 0) ++got;
    }
  } sink;
  std::string why;
  ring->watch(rx.fd, 0);
  ring->submit();
  static constexpr uint8_t kProbe[] = {'p', 'r', 'o', 'b', 'e'};
  for (int i = 0; i < 2 && to; ++i) {
    ring->send(tx.fd, *to, kProbe);
    ring->submit();
  }
  // Loopback delivery is synchronous; completions may still take a moment to be posted.
  for (int spin = 0; spin < 200 && sink.got < 2; ++spin) {
    if (ring->harvest(sink, 16) == 0) ::usleep(1000);
    ring->release_buffers();
  }
  if (!to) {
    why = "no local address to probe with";
  } else if (sink.got < 2) {
    why = "multishot recvmsg with provided buffers did not deliver (kernel too old?)";
  } else if (ring->send_errors() != 0) {
    why = "sendmsg failed";
  }
  ring->unwatch(0);
  ring->close();
  ::close(rx.fd);
  ::close(tx.fd);
  return why;
}

}  // namespace

const std::string& uring_unavailable() {
  static const std::string why = probe_uring();
  return why;
}

namespace {
std::atomic<RelayIo> g_relay_io{RelayIo::kAuto};
}  // namespace

void set_relay_io(RelayIo io) { g_relay_io.store(io, std::memory_order_relaxed); }
RelayIo configured_relay_io() { return g_relay_io.load(std::memory_order_relaxed); }

RelayIo resolve_relay_io(RelayIo configured) {
  if (configured == RelayIo::kAuto) {
    if (const char* env = std::getenv("CALLRELAY_RELAY_IO")) {
      if (const auto forced = parse_relay_io(env); forced && *forced != RelayIo::kAuto) {
        configured = *forced;
        if (configured == RelayIo::kUring) return configured;
      }
    }
  }
  // auto stays on the Asio path until the io_uring path's CPU per packet has been measured
  // below it on a quiet machine and it has run under the sanitizers in CI; relay.io: io_uring
  // (or CALLRELAY_RELAY_IO=io_uring with auto) selects it.
  return configured == RelayIo::kAuto ? RelayIo::kEpoll : configured;
}

UringRelay::UringRelay(asio::io_context& ctx) : ring_fd_(ctx) {
  io_uring_params params{};
  // Not IORING_SETUP_SINGLE_ISSUER: the ring is made on the thread that builds the worker and
  // used on the worker's own, and that flag ties submissions to the creating thread.
  params.cq_entries = 4096;  // room for a burst of receives of every socket between harvests
  params.flags = IORING_SETUP_CQSIZE;
  const int r = io_uring_queue_init_params(1024, &ring_, &params);
  if (r < 0) throw uring_error(-r, "io_uring_setup");
  ring_ok_ = true;
  // Throws from here on leave the destructor to undo what was done: it is not run for a
  // constructor that throws, so undo by hand.
  try {
    buf_ring_bytes_ = kBuffers * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw uring_error(errno, "mmap of the buffer ring");
    buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
    reg.ring_entries = kBuffers;
    reg.bgid = kGroup;
    const int rr = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (rr < 0) throw uring_error(-rr, "io_uring_register_buf_ring");
    // Not zeroed: a page is touched only when a datagram that large arrives.
    buffers_.reset(new uint8_t[static_cast<size_t>(kBuffers) * kBufferSize]);
    io_uring_buf_ring_init(buf_ring_);
    const int mask = io_uring_buf_ring_mask(kBuffers);
    for (unsigned i = 0; i < kBuffers; ++i) {
      io_uring_buf_ring_add(buf_ring_, buffers_.get() + i * kBufferSize, kBufferSize,
                            static_cast<unsigned short>(i), mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, kBuffers);
    recv_template_.msg_namelen = kNameSpace;
    recv_template_.msg_controllen = 0;
    for (size_t i = 0; i < kSendSlots; ++i) free_sends_[i] = static_cast<uint16_t>(i);
    gso_ = udp_gso_configured() && (udp_gso_supported(AF_INET) || udp_gso_supported(AF_INET6));
    asio::error_code ec;
    ring_fd_.assign(ring_.ring_fd, ec);
    if (ec) throw uring_error(ec.value(), "registering the ring with the reactor");
  } catch (...) {
    close();
    throw;
  }
}

UringRelay::~UringRelay() { close(); }

void UringRelay::close() {
  if (!ring_ok_) return;
  if (ring_fd_.is_open()) ring_fd_.release();  // io_uring_queue_exit closes the descriptor
  // Ends every request still armed: the kernel drops its references to the relay sockets.
  io_uring_queue_exit(&ring_);
  ring_ok_ = false;
  queued_sends_ = 0;  // their payloads belong to the caller; nothing will send them now
  if (buf_ring_ != nullptr) ::munmap(buf_ring_, buf_ring_bytes_);
  buf_ring_ = nullptr;
  for (auto& w : watches_) w = Watch{-1, w.generation + 1, false};
}

io_uring_sqe* UringRelay::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // the submission queue is full: send it on its way first
    enter();
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe != nullptr) ++queued_;
  return sqe;
}

void UringRelay::watch(int fd, core::RelayId id) {
  if (id >= watches_.size()) watches_.resize(static_cast<size_t>(id) + 1);
  Watch& w = watches_[id];
  w.fd = fd;
  ++w.generation;
  w.armed = false;
  arm(id);
}

void UringRelay::arm(core::RelayId id) {
  Watch& w = watches_[id];
  if (w.fd < 0 || w.armed || !ring_ok_) return;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return;
  io_uring_prep_recvmsg_multishot(sqe, w.fd, &recv_template_, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kGroup;
  io_uring_sqe_set_data64(sqe, recv_tag(id, w.generation));
  w.armed = true;
}

void UringRelay::unwatch(core::RelayId id) {
  if (!watching(id)) return;
  Watch& w = watches_[id];
  if (w.armed && ring_ok_) {
    if (io_uring_sqe* sqe = next_sqe()) {
      io_uring_prep_cancel64(sqe, recv_tag(id, w.generation), 0);
      io_uring_sqe_set_data64(sqe, kCancel << kKindShift);
    }
  }
  w.fd = -1;
  w.armed = false;
  ++w.generation;
  // Now, not with the next batch: the caller closes the socket next, and the port is free for
  // another allocation only once the cancelled request has let go of it.
  submit();
}

std::vector<int> UringRelay::watched_fds() const {
  std::vector<int> fds;
  for (const auto& w : watches_) {
    if (w.fd >= 0) fds.push_back(w.fd);
  }
  return fds;
}

void UringRelay::send(int fd, const stun::Endpoint& to, std::span<const uint8_t> data) {
  if (!ring_ok_) return;
  if (queued_sends_ == queue_.size()) submit();
  queue_[queued_sends_++] = QueuedSend{fd, to, data.data(), data.size()};
}

void UringRelay::prepare_queued() {
  const size_t n = queued_sends_;
  if (n == 0) return;
  queued_sends_ = 0;
  if (n == 1 || !gso_) {
    // Nothing to group: without segmentation every datagram is a send of its own anyway.
    for (size_t i = 0; i < n; ++i) {
      const QueuedSend& q = queue_[i];
      prepare(q.fd, q.to, {q.data, q.len});
    }
    return;
  }
  const stun::EndpointHash hash;
  for (size_t i = 0; i < n; ++i) {
    const QueuedSend& q = queue_[i];
    order_[i] = SendOrder{(static_cast<uint64_t>(static_cast<uint32_t>(q.fd)) << 32) |
                              static_cast<uint32_t>(hash(q.to)),
                          static_cast<uint16_t>(i)};
  }
  // In place, no allocation (std::stable_sort may take a buffer); the index keeps it stable.
  std::sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n),
            [](const SendOrder& a, const SendOrder& b) {
              return a.key != b.key ? a.key < b.key : a.index < b.index;
            });
  for (size_t i = 0; i < n; ++i) {
    const QueuedSend& q = queue_[order_[i].index];
    prepare(q.fd, q.to, {q.data, q.len});
  }
}

void UringRelay::prepare(int fd, const stun::Endpoint& to, std::span<const uint8_t> data) {
  if (join_open_send(fd, to, data)) return;
  if (free_send_count_ == 0 || send_iovs_used_ == send_iovs_.size()) enter();
  io_uring_sqe* sqe = next_sqe();  // may submit what is queued: take slot and iovec after it
  if (sqe == nullptr) return;
  const uint16_t slot_index = free_sends_[--free_send_count_];
  SendSlot& s = sends_[slot_index];
  iovec& iov = send_iovs_[send_iovs_used_++];
  iov.iov_base = const_cast<uint8_t*>(data.data());
  iov.iov_len = data.size();
  s.hdr = msghdr{};
  s.hdr.msg_name = &s.name;
  s.hdr.msg_namelen = write_sockaddr(to, s.name);
  s.hdr.msg_iov = &iov;
  s.hdr.msg_iovlen = 1;
  // MSG_DONTWAIT makes the kernel issue the send inside io_uring_enter and fail it with EAGAIN
  // rather than park it until the socket is writable (REQ_F_NOWAIT): once submit() returns, the
  // payload has been copied into the socket or dropped, as with sendmmsg(MSG_DONTWAIT).
  io_uring_prep_sendmsg(sqe, fd, &s.hdr, MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, send_tag(fd, 1));
  // An empty datagram would vanish inside a segmented send; a long one could exceed the route's
  // MTU as a segment (SendBatch::kMaxGsoSegment).
  const bool may_grow = gso_ && !data.empty() && data.size() <= SendBatch::kMaxGsoSegment &&
                        udp_gso_supported(to.is_v4() ? AF_INET : AF_INET6) &&
                        !refused_.refused(fd);
  open_ = may_grow ? OpenSend{sqe, slot_index, fd, to, data.size(), data.size()} : OpenSend{};
}

bool UringRelay::join_open_send(int fd, const stun::Endpoint& to,
                                std::span<const uint8_t> data) {
  if (open_.sqe == nullptr) return false;
  SendSlot& s = sends_[open_.slot];
  const size_t count = s.hdr.msg_iovlen;
  // Only the same socket and peer, segments no longer than the first, within what one UDP
  // datagram and UDP_MAX_SEGMENTS allow. The open send's iovecs are the last ones queued, so
  // the next one extends them.
  if (open_.fd != fd || !(open_.to == to) || data.empty() || data.size() > open_.segment ||
      count >= SendBatch::kMaxSegments || open_.bytes + data.size() > SendBatch::kMaxGsoBytes ||
      send_iovs_used_ == send_iovs_.size()) {
    open_ = OpenSend{};
    return false;
  }
  iovec& iov = send_iovs_[send_iovs_used_++];
  iov.iov_base = const_cast<uint8_t*>(data.data());
  iov.iov_len = data.size();
  s.hdr.msg_iovlen = count + 1;
  if (count == 1) {
    // UDP_SEGMENT: every datagram but the last is this long (udp_send_skb, net/ipv4/udp.c).
    auto* c = reinterpret_cast<cmsghdr*>(s.control.data());
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const auto segment = static_cast<uint16_t>(open_.segment);
    std::memcpy(CMSG_DATA(c), &segment, sizeof(segment));
    s.hdr.msg_control = s.control.data();
    s.hdr.msg_controllen = s.control.size();
  }
  // The kernel reads the submission and its message header only when submit() issues them.
  io_uring_sqe_set_data64(open_.sqe, send_tag(fd, count + 1));
  open_.bytes += data.size();
  if (data.size() < open_.segment) open_ = OpenSend{};  // only the last may be shorter
  return true;
}

void UringRelay::submit() {
  if (!ring_ok_) return;
  prepare_queued();
  enter();
}

void UringRelay::enter() {
  if (!ring_ok_ || queued_ == 0) return;
  int r;
  do {
    r = io_uring_submit(&ring_);
  } while (r == -EINTR);
  if (r < 0 && log::enabled(log::Level::kDebug)) {
    log::debug("relay.uring_submit_failed", {{"error", error_text(-r)}}, "io_uring submit: ",
               error_text(-r));
  }
  queued_ = 0;
  // The kernel copied each message header while issuing it (sendmsg copies its msghdr, name,
  // control and iovecs at prep): the slots are free again whatever the completions say.
  free_send_count_ = kSendSlots;
  for (size_t i = 0; i < kSendSlots; ++i) free_sends_[i] = static_cast<uint16_t>(i);
  send_iovs_used_ = 0;
  open_ = OpenSend{};
}

bool UringRelay::ready() const {
  return ring_ok_ && io_uring_cq_ready(const_cast<io_uring*>(&ring_)) > 0;
}

size_t UringRelay::harvest(Sink& sink, size_t max) {
  if (!ring_ok_) return 0;
  size_t consumed = 0;
  size_t datagrams = 0;
  io_uring_cqe* cqe = nullptr;
  while (datagrams < max && io_uring_peek_cqe(&ring_, &cqe) == 0) {
    const io_uring_cqe c = *cqe;
    io_uring_cqe_seen(&ring_, cqe);
    ++consumed;
    switch (c.user_data >> kKindShift) {
      case kRecv:
        if ((c.flags & IORING_CQE_F_BUFFER) != 0) ++datagrams;
        on_receive(c, sink);
        break;
      case kSend:
        on_send(c);
        break;
      default:  // a cancel's own completion
        break;
    }
  }
  return consumed;
}

void UringRelay::on_receive(const io_uring_cqe& c, Sink& sink) {
  const auto id = static_cast<core::RelayId>(c.user_data & 0xFFFFFFFFu);
  const auto generation = static_cast<uint32_t>((c.user_data >> 32) & kGenerationMask);
  const bool current = id < watches_.size() && watches_[id].fd >= 0 &&
                       (watches_[id].generation & kGenerationMask) == generation;
  const bool has_buffer = (c.flags & IORING_CQE_F_BUFFER) != 0;
  if (has_buffer) {
    const auto bid = static_cast<uint16_t>(c.flags >> IORING_CQE_BUFFER_SHIFT);
    held_[held_count_++] = bid;  // back to the kernel at release_buffers()
    uint8_t* buf = buffers_.get() + static_cast<size_t>(bid) * kBufferSize;
    auto* out = io_uring_recvmsg_validate(buf, c.res, &recv_template_);
    if (current && c.res >= 0 && out != nullptr && (out->flags & MSG_TRUNC) == 0 &&
        out->namelen <= kNameSpace) {
      const auto peer =
          from_sockaddr(static_cast<const sockaddr*>(io_uring_recvmsg_name(out)), out->namelen);
      const size_t len = io_uring_recvmsg_payload_length(out, c.res, &recv_template_);
      if (peer) {
        ++received_;
        sink.on_relay_datagram(id, *peer, {buf, kBufferSize}, len);
      }
    } else if (current && out != nullptr && log::enabled(log::Level::kDebug)) {
      log::debug("relay.truncated", {{"flags", out->flags}},
                 "dropped a truncated datagram on a relay socket");
    }
  }
  if ((c.flags & IORING_CQE_F_MORE) != 0 || id >= watches_.size()) return;
  // The multishot request ended: re-arm if the socket is still watched (an ICMP error or a
  // full completion queue ends it), or once buffers are back when it ran out of them.
  Watch& w = watches_[id];
  if ((w.generation & kGenerationMask) != generation || w.fd < 0) return;
  w.armed = false;
  if (c.res == -ENOBUFS) {
    starved_.push_back(id);
    return;
  }
  if (c.res < 0 && c.res != -ECANCELED && log::enabled(log::Level::kDebug)) {
    log::debug("relay.receive_failed", {{"error", error_text(-c.res)}}, "relay receive: ",
               error_text(-c.res));
  }
  arm(id);
}

void UringRelay::on_send(const io_uring_cqe& c) {
  const size_t datagrams = (c.user_data >> 32) & 0xFF;
  if (c.res >= 0) {
    sent_ += datagrams;
    if (datagrams > 1) ++gso_sends_;
    return;
  }
  ++send_errors_;
  const int err = -c.res;
  // Those datagrams are lost, as with a UDP send that fails; the socket's next ones go one by
  // one.
  if (datagrams > 1 && GsoRefusals::is_refusal(err)) {
    const int fd = static_cast<int>(c.user_data & 0xFFFFFFFFu);
    if (!refused_.refuse(fd, err)) gso_ = false;  // many sockets refuse it
    return;
  }
  if (log::enabled(log::Level::kDebug)) {
    log::debug("relay.send_failed", {{"error", error_text(-c.res)}}, "send to peer: ",
               error_text(-c.res));
  }
}

void UringRelay::release_buffers() {
  if (!ring_ok_) return;
  if (held_count_ > 0) {
    const int mask = io_uring_buf_ring_mask(kBuffers);
    for (size_t i = 0; i < held_count_; ++i) {
      const uint16_t bid = held_[i];
      io_uring_buf_ring_add(buf_ring_, buffers_.get() + static_cast<size_t>(bid) * kBufferSize,
                            kBufferSize, bid, mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(held_count_));
    held_count_ = 0;
  }
  if (!starved_.empty()) {
    for (const core::RelayId id : starved_) arm(id);
    starved_.clear();
    submit();
  }
}

}  // namespace callrelay::net
