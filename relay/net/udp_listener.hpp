// One UDP listen socket of one worker (SO_REUSEPORT: every worker has its own socket on each
// listen endpoint and the kernel keeps a client's 5-tuple on one of them).
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <span>

#include "relay/net/transport.hpp"
#include "relay/net/udp_batch.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

/// Owns the socket and its outgoing batch; the worker drives the receive side (it owns the
/// receive buffers and the core). Thread: its worker's thread only.
class UdpListener final : public ClientTransport {
 public:
  /// Takes ownership of `fd`, a bound, non-blocking UDP socket with packet info enabled.
  /// `index` is what the worker puts in FiveTuple::listener. Throws asio::system_error if the
  /// reactor cannot register the socket (startup only).
  UdpListener(asio::io_context& ctx, int fd, const stun::Endpoint& bound, uint32_t index);

  int fd() const { return fd_; }
  const stun::Endpoint& bound() const { return bound_; }
  uint32_t index() const { return index_; }
  bool is_open() const { return fd_ >= 0; }

  /// Waits until a datagram can be read.
  template <typename Handler>
  void async_wait_readable(Handler&& handler) {
    socket_.async_wait(asio::socket_base::wait_read, std::forward<Handler>(handler));
  }

  /// While on, answers whose bytes are not stable (the core's, valid until its next call) are
  /// copied into the send batch rather than sent at once, so the answers of one receive round
  /// leave in one sendmmsg with the round's other datagrams. Whoever turns it on flushes before
  /// turning it off.
  void defer_answers(bool on) { defer_answers_ = on; }

  void send(const core::FiveTuple& to, std::span<const uint8_t> data, bool stable) override;
  void flush() override { queue_.flush(); }
  void close() override;

 private:
  asio::ip::udp::socket socket_;
  int fd_;
  stun::Endpoint bound_;
  uint32_t index_;
  SendBatch queue_;
  bool defer_answers_ = false;
};

}  // namespace callrelay::net
