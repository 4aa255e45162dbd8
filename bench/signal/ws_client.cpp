#include "bench/signal/ws_client.hpp"

#include <asio/connect.hpp>
#include <asio/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "bench/signal/ws_codec.hpp"

namespace callrelay::bench::ws {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
/// Larger upgrade answers are refused (ours are a few hundred bytes).
constexpr size_t kMaxHandshake = 16 * 1024;
/// RFC 6455 section 7.4.1: normal closure.
constexpr uint16_t kCloseNormal = 1000;

}  // namespace

Client::Client(asio::io_context& io, Listener& listener, size_t id, uint32_t seed)
    : socket_(io), listener_(listener), id_(id), rng_(seed) {}

void Client::start(const asio::ip::tcp::endpoint& server, std::string host, std::string target) {
  state_ = State::kUpgrading;
  std::array<uint8_t, 16> nonce{};  // RFC 6455 4.1: a random 16-byte value, base64-encoded
  for (auto& b : nonce) b = static_cast<uint8_t>(rng_());
  key_ = base64(nonce);
  socket_.async_connect(server, [this, host = std::move(host),
                                 target = std::move(target)](const asio::error_code& ec) {
    if (ec) return fail("connect: " + ec.message());
    asio::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    writing_ = upgrade_request(host, target, key_);
    write_busy_ = true;
    asio::async_write(socket_, asio::buffer(writing_), [this](const asio::error_code& e, size_t) {
      write_busy_ = false;
      if (e) return fail("upgrade request: " + e.message());
      flush();
    });
    read_more();
  });
}

void Client::read_more() {
  if (in_.size() - in_used_ < kReadChunk) in_.resize(in_used_ + kReadChunk);
  socket_.async_read_some(asio::buffer(in_.data() + in_used_, in_.size() - in_used_),
                          [this](const asio::error_code& ec, size_t n) {
                            if (ec) {
                              if (state_ != State::kClosed) fail("read: " + ec.message());
                              return;
                            }
                            on_read(n);
                          });
}

void Client::on_read(size_t n) {
  in_used_ += n;
  if (quick_ack_) {
    const int on = 1;
    setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
  }
  if (state_ == State::kUpgrading && !consume_handshake()) return;
  if (state_ == State::kOpen || state_ == State::kClosing) consume_frames();
  if (state_ == State::kClosed) return;
  read_more();  // after a close frame too: the server closes TCP first (RFC 6455 7.1.1)
}

bool Client::consume_handshake() {
  const std::string_view got(reinterpret_cast<const char*>(in_.data()), in_used_);
  const size_t end = got.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in_used_ > kMaxHandshake) fail("upgrade answer larger than 16 KiB");
    return in_used_ <= kMaxHandshake;
  }
  const UpgradeAnswer answer = check_upgrade_answer(got.substr(0, end + 2), key_);
  if (!answer.accepted) {
    // Show the refusal's body (callrelay answers {"error": "..."}) when it arrived with it.
    const std::string body(got.substr(end + 4, 200));
    fail("upgrade refused: " + answer.error + (body.empty() ? "" : ": " + body));
    return false;
  }
  const size_t head = end + 4;
  std::memmove(in_.data(), in_.data() + head, in_used_ - head);
  in_used_ -= head;
  state_ = State::kOpen;
  listener_.on_open(*this);
  return state_ != State::kClosed;
}

bool Client::consume_frames() {
  size_t pos = 0;
  while ((state_ == State::kOpen || state_ == State::kClosing) && !close_received_) {
    const auto avail = std::span<const uint8_t>(in_.data() + pos, in_used_ - pos);
    const ParsedHeader h = parse_server_header(avail, kMaxMessage);
    if (h.status == ParseStatus::kError) {
      fail("protocol error: " + h.error);
      return false;
    }
    if (h.status == ParseStatus::kNeedMore) break;
    const uint64_t total = h.header.header_size + h.header.payload_size;
    if (avail.size() < total) break;  // read_more() leaves room for the rest
    const std::string_view payload(
        reinterpret_cast<const char*>(avail.data()) + h.header.header_size,
        static_cast<size_t>(h.header.payload_size));
    pos += static_cast<size_t>(total);
    if (!deliver(static_cast<uint8_t>(h.header.opcode), h.header.fin, payload)) return false;
  }
  if (state_ == State::kClosed) return false;
  std::memmove(in_.data(), in_.data() + pos, in_used_ - pos);
  in_used_ -= pos;
  return true;
}

bool Client::deliver(uint8_t opcode, bool fin, std::string_view payload) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::kPing:  // RFC 6455 5.5.3: a pong with the ping's payload
      send_frame(static_cast<uint8_t>(Opcode::kPong), payload);
      return true;
    case Opcode::kPong:
      return true;
    case Opcode::kClose: {  // 5.5.1: echo a close, then wait for the server to close TCP
      const uint16_t code = payload.size() >= 2
                                ? static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                        static_cast<uint8_t>(payload[1]))
                                : 1005;  // 7.4.1: no status code present
      const std::string reason(payload.size() > 2 ? payload.substr(2) : std::string_view());
      if (state_ == State::kOpen) {
        close_reason_ = "closed by the server: " + std::to_string(code) + " " + reason;
        send_frame(static_cast<uint8_t>(Opcode::kClose), payload.substr(0, 2));
        state_ = State::kClosing;
      }
      close_received_ = true;
      return false;
    }
    case Opcode::kBinary:
      fail("binary message: signaling is JSON text only");
      return false;
    case Opcode::kText:
      if (in_message_) {
        fail("protocol error: a new message inside a fragmented one (5.4)");
        return false;
      }
      if (fin) {
        listener_.on_text(*this, payload);
        return state_ != State::kClosed;
      }
      in_message_ = true;
      message_.assign(payload);
      return true;
    case Opcode::kContinuation:
      if (!in_message_ || message_.size() + payload.size() > kMaxMessage) {
        fail("protocol error: unexpected or oversized continuation frame (5.4)");
        return false;
      }
      message_.append(payload);
      if (fin) {
        in_message_ = false;
        listener_.on_text(*this, message_);
      }
      return state_ != State::kClosed;
  }
  return true;
}

void Client::send_text(std::string_view text) {
  if (state_ == State::kOpen) send_frame(static_cast<uint8_t>(Opcode::kText), text);
}

void Client::close() {
  if (state_ != State::kOpen) return;
  const std::array<char, 2> code{static_cast<char>(kCloseNormal >> 8),
                                 static_cast<char>(kCloseNormal & 0xFF)};
  send_frame(static_cast<uint8_t>(Opcode::kClose), std::string_view(code.data(), code.size()));
  state_ = State::kClosing;
}

void Client::send_frame(uint8_t opcode, std::string_view payload) {
  const uint32_t r = static_cast<uint32_t>(rng_());
  const std::array<uint8_t, 4> mask{static_cast<uint8_t>(r), static_cast<uint8_t>(r >> 8),
                                    static_cast<uint8_t>(r >> 16), static_cast<uint8_t>(r >> 24)};
  append_client_frame(out_, static_cast<Opcode>(opcode), payload, mask);
  flush();
}

void Client::flush() {
  if (write_busy_ || out_.empty() || state_ == State::kClosed) return;
  writing_.swap(out_);
  out_.clear();
  write_busy_ = true;
  asio::async_write(socket_, asio::buffer(writing_), [this](const asio::error_code& ec, size_t) {
    write_busy_ = false;
    writing_.clear();
    if (ec) {
      if (state_ != State::kClosed) fail("write: " + ec.message());
      return;
    }
    flush();
  });
}

void Client::fail(const std::string& why) {
  if (state_ == State::kClosed) return;
  // Once a close frame went either way, how the socket ends (EOF, reset) says nothing new.
  const std::string reason = state_ == State::kClosing ? close_reason_ : why;
  state_ = State::kClosed;
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  listener_.on_closed(*this, reason);
}

}  // namespace callrelay::bench::ws
