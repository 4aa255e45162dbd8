// A minimal WebSocket client (RFC 6455) over one Asio TCP socket, for the signaling bench:
// the HTTP upgrade, masked text frames out, server frames in (fragmented messages assembled,
// pings answered with pongs, a close answered and the socket closed). One io_context thread
// drives every client; nothing here is thread-safe.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace callrelay::bench::ws {

class Client;

/// What a client reports, on the io_context thread.
class Listener {
 public:
  virtual ~Listener() = default;
  /// The upgrade succeeded; text may be sent now.
  virtual void on_open(Client& c) = 0;
  /// One complete text message.
  virtual void on_text(Client& c, std::string_view text) = 0;
  /// The connection failed or closed (once): `why` says how (refused upgrade, the server's
  /// close frame with its code, protocol error, socket error), "" after close().
  virtual void on_closed(Client& c, const std::string& why) = 0;
};

class Client {
 public:
  /// `id` is the owner's name for the client (an index), handed back by id().
  Client(asio::io_context& io, Listener& listener, size_t id, uint32_t seed);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Connects to `server` and upgrades `target` ("/path?query") with Host `host`.
  void start(const asio::ip::tcp::endpoint& server, std::string host, std::string target);
  /// Queues one text message (dropped when not open).
  void send_text(std::string_view text);
  /// Sends a close frame (1000); on_closed follows with "" once the server closed TCP.
  void close();

  size_t id() const { return id_; }
  bool is_open() const { return state_ == State::kOpen; }
  /// Acknowledge every received segment at once (Linux TCP_QUICKACK, set again after each
  /// read since the kernel clears it). A diagnostic: it shows how much of a latency comes from
  /// the server's small writes waiting on this side's delayed ACKs (Nagle, RFC 896/1122).
  void set_quick_ack(bool on) { quick_ack_ = on; }
  /// Messages larger than this close the connection.
  static constexpr size_t kMaxMessage = 1 << 20;

 private:
  enum class State : uint8_t { kIdle, kUpgrading, kOpen, kClosing, kClosed };

  void read_more();
  void on_read(size_t n);
  bool consume_handshake();
  bool consume_frames();
  bool deliver(uint8_t opcode, bool fin, std::string_view payload);
  void send_frame(uint8_t opcode, std::string_view payload);
  void flush();
  void fail(const std::string& why);

  asio::ip::tcp::socket socket_;
  Listener& listener_;
  size_t id_;
  std::minstd_rand rng_;  ///< mask keys (RFC 6455 5.3 asks for unpredictable ones; a bench
                          ///< talking to its own server on loopback needs no secrecy)
  State state_ = State::kIdle;
  std::string key_;
  std::vector<uint8_t> in_;  ///< received, not yet consumed
  size_t in_used_ = 0;
  std::string close_reason_;  ///< "" when this side closed first
  bool close_received_ = false;
  std::string message_;  ///< a fragmented message being assembled
  bool in_message_ = false;
  std::string out_;      ///< frames queued while a write is in flight
  std::string writing_;  ///< frames being written
  bool write_busy_ = false;
  bool quick_ack_ = false;
};

}  // namespace callrelay::bench::ws
