#include "relay/net/udp_batch.hpp"

#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace callrelay::net {

RecvBatch::RecvBatch() : storage_(new uint8_t[kBatch * kSlotSize]) {
  for (size_t i = 0; i < kBatch; ++i) {
    iov_[i].iov_base = storage_.get() + i * kSlotSize + core::kPeerHeadroom;
    iov_[i].iov_len = kMaxPayload;
  }
}

int RecvBatch::receive(int fd, bool pktinfo) {
  if (used_ == kBatch) return -EAGAIN;
  for (size_t i = used_; i < kBatch; ++i) {
    msghdr& h = msgs_[i].msg_hdr;
    h.msg_name = &names_[i];
    h.msg_namelen = sizeof(sockaddr_storage);
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_control = pktinfo ? control_[i].data() : nullptr;
    h.msg_controllen = pktinfo ? kPktInfoSpace : 0;
    h.msg_flags = 0;
    msgs_[i].msg_len = 0;
  }
  int n;
  do {
    n = ::recvmmsg(fd, &msgs_[used_], static_cast<unsigned>(kBatch - used_), MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  first_ = used_;
  used_ += static_cast<size_t>(n);
  return n;
}

std::optional<stun::Endpoint> RecvBatch::source(size_t i) const {
  const msghdr& h = msgs_[i].msg_hdr;
  return from_sockaddr(static_cast<const sockaddr*>(h.msg_name), h.msg_namelen);
}

namespace {

void fill_header(msghdr& h, sockaddr_storage& name, iovec& iov, uint8_t* control,
                 const stun::Endpoint& to, const stun::Endpoint* from,
                 std::span<const uint8_t> data) {
  h = msghdr{};
  h.msg_name = &name;
  h.msg_namelen = write_sockaddr(to, name);
  iov.iov_base = const_cast<uint8_t*>(data.data());
  iov.iov_len = data.size();
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  const size_t clen = from != nullptr ? write_pktinfo(*from, control) : 0;
  h.msg_control = clen > 0 ? control : nullptr;
  h.msg_controllen = clen;
}

}  // namespace

void SendBatch::add(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
                    std::span<const uint8_t> data) {
  const size_t i = count_++;
  fds_[i] = fd;
  fill_header(msgs_[i].msg_hdr, names_[i], iov_[i], control_[i].data(), to, from, data);
}

bool SendBatch::add_copy(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
                         std::span<const uint8_t> data) {
  if (data.size() > kMaxCopy) return false;
  if (!copies_) copies_.reset(new uint8_t[kCapacity * kMaxCopy]);
  uint8_t* slot = copies_.get() + count_ * kMaxCopy;  // the entry add() is about to fill
  std::memcpy(slot, data.data(), data.size());
  add(fd, to, from, {slot, data.size()});
  return true;
}

void SendBatch::flush() {
  if (count_ == 0) return;
  // Stable grouping by socket (insertion sort of at most kCapacity indices).
  for (size_t i = 0; i < count_; ++i) order_[i] = static_cast<uint8_t>(i);
  for (size_t i = 1; i < count_; ++i) {
    const uint8_t v = order_[i];
    size_t j = i;
    for (; j > 0 && fds_[order_[j - 1]] > fds_[v]; --j) order_[j] = order_[j - 1];
    order_[j] = v;
  }
  for (size_t i = 0; i < count_; ++i) sorted_[i] = msgs_[order_[i]];
  size_t begin = 0;
  for (size_t i = 1; i <= count_; ++i) {
    if (i == count_ || fds_[order_[i]] != fds_[order_[begin]]) {
      send_run(begin, i);
      begin = i;
    }
  }
  count_ = 0;
}

void SendBatch::send_run(size_t begin, size_t end) {
  const int fd = fds_[order_[begin]];
  while (begin < end) {
    const int n = ::sendmmsg(fd, &sorted_[begin], static_cast<unsigned>(end - begin), MSG_DONTWAIT);
    if (n > 0) {
      begin += static_cast<size_t>(n);
      continue;
    }
    const int err = errno;
    if (n < 0 && err == EINTR) continue;
    // The datagram at `begin` failed: drop it and go on with the rest.
    if (log::enabled(log::Level::kDebug)) {
      log::debug("udp.send_failed", {{"fd", fd}, {"error", error_text(err)}}, "sendmmsg on fd ",
                 fd, ": ", error_text(err), "; datagram dropped");
    }
    ++begin;
  }
}

int send_now(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
             std::span<const uint8_t> data) {
  msghdr h;
  sockaddr_storage name;
  iovec iov;
  alignas(cmsghdr) std::array<uint8_t, kPktInfoSpace> control;
  fill_header(h, name, iov, control.data(), to, from, data);
  for (;;) {
    if (::sendmsg(fd, &h, MSG_DONTWAIT) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace callrelay::net
