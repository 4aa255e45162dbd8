#include "tests/http/ws_test_client.hpp"

#include <poll.h>

#include <random>

namespace callrelay::http::test {
namespace {

uint32_t random_u32() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<uint32_t>(rng());
}

}  // namespace

WsTestClient::WsTestClient(uint16_t port, std::chrono::milliseconds timeout) : timeout_(timeout) {
  asio::error_code ec;
  socket_.connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port), ec);
  connected_ = !ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);  // frames go out as they are sent
}

bool WsTestClient::fill(size_t n) {
  char chunk[16384];
  while (buf_.size() < n) {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout_.count())) <= 0) return false;
    asio::error_code ec;
    const size_t got = socket_.read_some(asio::buffer(chunk), ec);
    if (ec || got == 0) {
      closed_ = true;
      return false;
    }
    buf_.append(chunk, got);
  }
  return true;
}

WsTestClient::Handshake WsTestClient::handshake(const std::string& target,
                                                const std::string& extra_headers,
                                                const std::string& version) {
  key_ = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 section 1.3's sample nonce
  send_raw("GET " + target +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: " +
           key_ + "\r\nSec-WebSocket-Version: " + version + "\r\n" + extra_headers + "\r\n");
  return read_http_response();
}

WsTestClient::Handshake WsTestClient::read_http_response() {
  Handshake out;
  size_t end = std::string::npos;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(buf_.size() + 1)) return out;
  }
  out.head = buf_.substr(0, end + 2);
  buf_.erase(0, end + 4);
  if (out.head.size() > 12) out.status = std::stoi(out.head.substr(9, 3));
  const size_t cl = out.head.find("Content-Length: ");
  if (cl != std::string::npos) {
    const size_t n = std::stoul(out.head.substr(cl + 16));
    if (fill(n)) {
      out.body = buf_.substr(0, n);
      buf_.erase(0, n);
    }
  }
  return out;
}

uint16_t WsTestClient::Frame::close_code() const {
  if (payload.size() < 2) return 1005;
  return static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                               static_cast<uint8_t>(payload[1]));
}

std::optional<WsTestClient::Frame> WsTestClient::read_frame() {
  if (!fill(2)) return std::nullopt;
  Frame f;
  const auto b0 = static_cast<uint8_t>(buf_[0]);
  const auto b1 = static_cast<uint8_t>(buf_[1]);
  f.fin = (b0 & 0x80) != 0;
  f.opcode = b0 & 0x0F;
  size_t header = 2;
  uint64_t len = b1 & 0x7F;
  if (len >= 126) {
    const size_t ext = len == 126 ? 2 : 8;
    if (!fill(2 + ext)) return std::nullopt;
    len = 0;
    for (size_t i = 0; i < ext; ++i) len = (len << 8) | static_cast<uint8_t>(buf_[2 + i]);
    header += ext;
  }
  if ((b1 & 0x80) != 0) return std::nullopt;  // servers never mask (section 5.1)
  if (!fill(header + len)) return std::nullopt;
  f.payload = buf_.substr(header, len);
  buf_.erase(0, header + len);
  return f;
}

std::optional<WsTestClient::Frame> WsTestClient::read_message() {
  while (true) {
    auto f = read_frame();
    if (!f || f->opcode != 0x9) return f;
    send_frame(0xA, f->payload);
  }
}

bool WsTestClient::wait_closed() {
  while (fill(buf_.size() + 1)) {
  }
  return closed_;
}

void WsTestClient::send_frame(uint8_t opcode, std::string_view payload, bool fin,
                              std::optional<uint64_t> declared_length) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint64_t len = declared_length.value_or(payload.size());
  if (len < 126) {
    out.push_back(static_cast<char>(0x80 | len));
  } else if (len <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(len & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>((len >> s) & 0xFF));
  }
  const uint32_t key = random_u32();
  const char mask[4] = {static_cast<char>(key >> 24), static_cast<char>(key >> 16),
                        static_cast<char>(key >> 8), static_cast<char>(key)};
  out.append(mask, 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  send_raw(out);
}

void WsTestClient::send_close(uint16_t code) {
  const char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  send_frame(0x8, std::string_view(payload, 2));
}

void WsTestClient::send_raw(std::string_view bytes) {
  asio::error_code ec;
  asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
}

}  // namespace callrelay::http::test
