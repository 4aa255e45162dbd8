#include "relay/net/udp_listener.hpp"

#include "relay/net/socket_ops.hpp"
#include "base/log.hpp"

namespace callrelay::net {

UdpListener::UdpListener(asio::io_context& ctx, int fd, const stun::Endpoint& bound, uint32_t index)
    : socket_(ctx), fd_(fd), bound_(bound), index_(index) {
  socket_.assign(bound.is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), fd);
}

void UdpListener::send(const core::FiveTuple& to, std::span<const uint8_t> data, bool stable) {
  if (fd_ < 0) return;
  if (stable || defer_answers_) {
    if (queue_.full()) queue_.flush();
    if (stable) {
      queue_.add(fd_, to.client, &to.server, data);
      return;
    }
    if (queue_.add_copy(fd_, to.client, &to.server, data)) return;
    queue_.flush();  // too large to copy: what was queued before it leaves first
  }
  if (const int err = send_now(fd_, to.client, &to.server, data); err != 0) {
    if (log::enabled(log::Level::kDebug)) {
      log::debug("udp.send_failed", {{"client", to.client.to_string()}, {"error", error_text(err)}},
                 "send to ", to.client.to_string(), ": ", error_text(err));
    }
  }
}

void UdpListener::close() {
  if (fd_ < 0) return;
  queue_.flush();
  asio::error_code ec;
  socket_.close(ec);
  fd_ = -1;
}

}  // namespace callrelay::net
