// A small blocking WebSocket client for tests (RFC 6455 client side over Asio): the upgrade
// request, masked client frames, raw bytes for malformed input, and frame reads with a timeout
// so that a hang fails the test instead of stalling it.
#pragma once

#include <asio.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callrelay::http::test {

class WsTestClient {
 public:
  /// Connects to 127.0.0.1:`port` (connected() tells whether it worked).
  explicit WsTestClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool connected() const { return connected_; }

  struct Handshake {
    int status = 0;    ///< 101 when upgraded; 0 when no answer came
    std::string head;  ///< status line and headers
    std::string body;  ///< the body of a refusal (Content-Length bytes)
  };
  /// Sends "GET `target`" with the upgrade headers (plus `extra_headers`, each ending in
  /// CRLF) and reads the answer. After a 101 the connection speaks WebSocket.
  Handshake handshake(const std::string& target, const std::string& extra_headers = "",
                      const std::string& version = "13");
  /// Reads one HTTP response (after send_raw of a plain request, for instance).
  Handshake read_http_response();

  struct Frame {
    bool fin = true;
    uint8_t opcode = 0;
    std::string payload;
    /// The close code of a close frame (1005 when it carried none).
    uint16_t close_code() const;
  };
  /// One frame as the server sent it, or nullopt on EOF, error or timeout.
  std::optional<Frame> read_frame();
  /// The next frame that is not a ping (pings are answered), or nullopt.
  std::optional<Frame> read_message();
  /// Whether the server closed the TCP connection (EOF or reset) within the timeout.
  bool wait_closed();

  /// A masked frame (RFC 6455 section 5.3) with a random key; `declared_length` overrides
  /// the length field (the payload sent stays `payload`).
  void send_frame(uint8_t opcode, std::string_view payload, bool fin = true,
                  std::optional<uint64_t> declared_length = std::nullopt);
  void send_text(std::string_view text) { send_frame(0x1, text); }
  void send_close(uint16_t code);
  void send_raw(std::string_view bytes);

 private:
  /// Reads until `buf_` holds `n` bytes; false on EOF, error or timeout.
  bool fill(size_t n);

  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
  std::chrono::milliseconds timeout_;
  bool connected_ = false;
  bool closed_ = false;  ///< the server ended the connection (EOF or reset)
  std::string buf_;      ///< bytes read and not consumed yet
  std::string key_;
};

}  // namespace callrelay::http::test
