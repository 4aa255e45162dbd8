// An HTTP/1.1 request reader over the http-parser library (Debian libhttp-parser-dev, the
// parser Node.js used): bytes in as they arrive, one Request out, with limits checked as the
// bytes come so that no declared length or header count is trusted. Pure (no sockets, no
// clock), like Asio's example request_parser: the server feeds it and acts on the state.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "http/message.hpp"

struct http_parser;
struct http_parser_settings;

namespace callrelay::http {

class RequestParser {
 public:
  struct Limits {
    size_t max_head_bytes = 262144;  ///< request line and headers (431 beyond)
    size_t max_body_bytes = 262144;  ///< body bytes, declared or sent (413 beyond)
    size_t max_fields = 100;         ///< header fields (431 beyond)
    size_t max_field_name = 256;     ///< one header name (431 beyond)
  };
  enum class State : uint8_t {
    kHead,      ///< the request head is not complete yet
    kBody,      ///< the head is complete, the body is not
    kComplete,  ///< take() the request
    kBad,       ///< malformed: answer status() and close
  };

  explicit RequestParser(Limits limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  /// Reads from `data` until the request is complete (or bad); returns the bytes consumed.
  /// Bytes after a complete request (a pipelined next one, or WebSocket frames after an
  /// upgrade) are left to the caller.
  size_t feed(std::string_view data);
  State state() const { return state_; }
  /// Whether any byte of the current request arrived.
  bool started() const { return head_bytes_ > 0; }

  /// When kComplete: the request (client_ip left empty). Resets for the next request.
  Request take();
  /// When kComplete: whether the connection stays open after the answer (HTTP/1.1 without
  /// "Connection: close", HTTP/1.0 with "Connection: keep-alive").
  bool keep_alive() const { return keep_alive_; }

  /// When kBad: the status to answer (400, 413, 431) and why.
  int status() const { return status_; }
  const std::string& error() const { return error_; }

 private:
  struct Callbacks;
  void reset();
  bool fail(int status, std::string why);
  bool add_head_bytes(size_t n);

  const Limits limits_;
  std::unique_ptr<http_parser> parser_;
  std::unique_ptr<http_parser_settings> settings_;
  State state_ = State::kHead;
  Request req_;
  std::string target_;
  std::string field_, value_;
  bool in_value_ = false;
  size_t fields_ = 0;
  size_t head_bytes_ = 0;
  size_t header_size_ = 0;  ///< names and values + 4 each, as Request::size counts them
  bool keep_alive_ = false;
  int status_ = 0;
  std::string error_;
};

}  // namespace callrelay::http
