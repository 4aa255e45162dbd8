#include "relay/net/udp_batch.hpp"

#include <netinet/udp.h>
#include <unistd.h>

#include <atomic>
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

namespace {

std::atomic<bool> g_udp_gso{true};

bool probe_udp_gso(int family) {
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int size = 0;
  socklen_t len = sizeof(size);
  const bool ok = ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
  ::close(fd);
  return ok;
}

// FNV-1a over the destination and the source control message: equal routes hash equally, so
// a stable sort on (socket, hash) puts each destination's datagrams next to each other.
uint64_t route_hash(const msghdr& h) {
  uint64_t x = 1469598103934665603ull;
  const auto mix = [&x](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) x = (x ^ b[i]) * 1099511628211ull;
  };
  mix(h.msg_name, h.msg_namelen);
  if (h.msg_controllen > 0) mix(h.msg_control, h.msg_controllen);
  return x;
}

}  // namespace

void set_udp_gso(bool on) { g_udp_gso.store(on, std::memory_order_relaxed); }
bool udp_gso_configured() { return g_udp_gso.load(std::memory_order_relaxed); }

bool udp_gso_supported(int family) {
  static const bool v4 = probe_udp_gso(AF_INET);
  static const bool v6 = probe_udp_gso(AF_INET6);
  return family == AF_INET ? v4 : family == AF_INET6 ? v6 : false;
}

bool GsoRefusals::is_refusal(int err) {
  // EIO: the route's device cannot checksum segments (or IPsec); EINVAL: a segment longer than
  // the path allows, or checksums off on the socket (udp_send_skb, net/ipv4/udp.c).
  return err == EIO || err == EINVAL || err == EOPNOTSUPP;
}

bool GsoRefusals::refused(int fd) const {
  for (size_t i = 0; i < count_; ++i) {
    if (fds_[i] == fd) return true;
  }
  return false;
}

bool GsoRefusals::refuse(int fd, int err) {
  log::warn("udp.gso_refused", {{"fd", fd}, {"error", error_text(err)}},
            "UDP segmentation offload refused on fd ", fd, " (", error_text(err),
            "): its datagrams go one by one from now on");
  if (count_ == kMax) return false;
  fds_[count_++] = fd;
  return true;
}

SendBatch::SendBatch()
    : gso_(udp_gso_configured() && (udp_gso_supported(AF_INET) || udp_gso_supported(AF_INET6))) {}

void SendBatch::add(int fd, const stun::Endpoint& to, const stun::Endpoint* from,
                    std::span<const uint8_t> data) {
  const size_t i = count_++;
  fds_[i] = fd;
  fill_header(msgs_[i].msg_hdr, names_[i], iov_[i], control_[i].data(), to, from, data);
  if (gso_) route_[i] = route_hash(msgs_[i].msg_hdr);
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
  // Stable grouping by socket, and with GSO by route within a socket (insertion sort of at
  // most kCapacity indices).
  const auto before = [this](uint8_t a, uint8_t b) {
    if (fds_[a] != fds_[b]) return fds_[a] < fds_[b];
    return gso_ && route_[a] < route_[b];
  };
  for (size_t i = 0; i < count_; ++i) order_[i] = static_cast<uint8_t>(i);
  for (size_t i = 1; i < count_; ++i) {
    const uint8_t v = order_[i];
    size_t j = i;
    for (; j > 0 && before(v, order_[j - 1]); --j) order_[j] = order_[j - 1];
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
  // Without GSO the sorted entries go as they are; with it, runs are joined into out_.
  const bool grouped = gso_ && end - begin > 1;
  mmsghdr* msgs = grouped ? out_.data() : &sorted_[begin];
  const size_t n = grouped ? build_messages(begin, end) : end - begin;
  size_t m = 0;
  while (m < n) {
    ++stats_.calls;
    const int sent = send_(fd, &msgs[m], static_cast<unsigned>(n - m), MSG_DONTWAIT);
    if (sent > 0) {
      for (size_t k = m; k < m + static_cast<size_t>(sent); ++k) {
        if (grouped && out_count_[k] > 1) ++stats_.gso_messages;
      }
      stats_.messages += static_cast<size_t>(sent);
      m += static_cast<size_t>(sent);
      continue;
    }
    const int err = errno;
    if (sent < 0 && err == EINTR) continue;
    if (grouped && out_count_[m] > 1 && GsoRefusals::is_refusal(err)) {
      fall_back(fd, m, err);
      ++m;
      continue;
    }
    // The message at `m` failed: drop it (and its segments) and go on with the rest.
    if (log::enabled(log::Level::kDebug)) {
      log::debug("udp.send_failed", {{"fd", fd}, {"error", error_text(err)}}, "sendmmsg on fd ",
                 fd, ": ", error_text(err), "; datagram dropped");
    }
    ++m;
  }
}

size_t SendBatch::build_messages(size_t begin, size_t end) {
  size_t m = 0;
  for (size_t i = begin; i < end; ++m) {
    const size_t run = gso_run(i, end);
    out_begin_[m] = static_cast<uint8_t>(i);
    out_count_[m] = static_cast<uint8_t>(run);
    out_[m] = sorted_[i];
    if (run > 1) {
      msghdr& h = out_[m].msg_hdr;
      for (size_t k = i; k < i + run; ++k) out_iov_[k] = *sorted_[k].msg_hdr.msg_iov;
      h.msg_iov = &out_iov_[i];
      h.msg_iovlen = run;
      // The source (IP_PKTINFO) if any, then UDP_SEGMENT: every segment but the last is
      // this long.
      uint8_t* control = out_control_[m].data();
      const size_t pktinfo = h.msg_controllen;
      if (pktinfo > 0) std::memcpy(control, h.msg_control, pktinfo);
      auto* c = reinterpret_cast<cmsghdr*>(control + pktinfo);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const auto segment = static_cast<uint16_t>(out_iov_[i].iov_len);
      std::memcpy(CMSG_DATA(c), &segment, sizeof(segment));
      h.msg_control = control;
      h.msg_controllen = pktinfo + CMSG_SPACE(sizeof(uint16_t));
    }
    out_[m].msg_len = 0;
    i += run;
  }
  return m;
}

size_t SendBatch::gso_run(size_t i, size_t end) const {
  const size_t segment = sorted_[i].msg_hdr.msg_iov->iov_len;
  if (segment == 0 || segment > kMaxGsoSegment || !gso_allowed(fds_[order_[i]], i)) return 1;
  size_t total = segment;
  size_t k = i + 1;
  while (k < end && k - i < kMaxSegments) {
    const size_t len = sorted_[k].msg_hdr.msg_iov->iov_len;
    // An empty datagram would vanish inside a GSO message; a longer one cannot be a segment.
    if (len == 0 || len > segment || total + len > kMaxGsoBytes || !same_route(i, k)) break;
    total += len;
    ++k;
    if (len < segment) break;  // only the last segment may be shorter
  }
  return k - i;
}

bool SendBatch::same_route(size_t a, size_t b) const {
  if (route_[order_[a]] != route_[order_[b]]) return false;
  const msghdr& x = sorted_[a].msg_hdr;
  const msghdr& y = sorted_[b].msg_hdr;
  return x.msg_namelen == y.msg_namelen && x.msg_controllen == y.msg_controllen &&
         std::memcmp(x.msg_name, y.msg_name, x.msg_namelen) == 0 &&
         (x.msg_controllen == 0 || std::memcmp(x.msg_control, y.msg_control, x.msg_controllen) == 0);
}

bool SendBatch::gso_allowed(int fd, size_t sorted) const {
  const auto* to = static_cast<const sockaddr*>(sorted_[sorted].msg_hdr.msg_name);
  if (!udp_gso_supported(to->sa_family)) return false;
  return !refused_.refused(fd);
}

void SendBatch::fall_back(int fd, size_t m, int err) {
  ++stats_.fallbacks;
  // Many sockets refusing it means the routes here do not take it.
  if (!refused_.refuse(fd, err)) gso_ = false;
  size_t b = out_begin_[m];
  const size_t e = b + out_count_[m];
  while (b < e) {
    ++stats_.calls;
    const int sent = send_(fd, &sorted_[b], static_cast<unsigned>(e - b), MSG_DONTWAIT);
    if (sent > 0) {
      stats_.messages += static_cast<size_t>(sent);
      b += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    ++b;  // dropped, as any datagram the kernel does not take
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
