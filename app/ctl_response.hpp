// An HTTP/1.1 response reader for `callrelay ctl`, over the http-parser library the HTTP
// listener's request reader uses: bytes in as they arrive, the status and body out. Limits
// are checked as bytes come, so a declared length (Content-Length, chunk sizes) is never
// trusted. Pure: no sockets.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct http_parser;
struct http_parser_settings;

namespace callrelay::app {

class ResponseParser {
 public:
  struct Limits {
    size_t max_head_bytes = 65536;              ///< status line and headers
    size_t max_body_bytes = 256 * 1024 * 1024;  ///< every live allocation fits many times
  };
  enum class State : uint8_t { kIncomplete, kComplete, kBad };

  ResponseParser();
  explicit ResponseParser(Limits limits);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  /// Reads the next bytes of the response. Bytes after a complete response are ignored.
  State feed(std::string_view data);
  /// The connection closed: completes a response whose body runs to the close, else bad.
  State finish();
  State state() const { return state_; }

  int status() const { return status_; }
  const std::string& body() const { return body_; }
  /// The Content-Type header's value ("" when absent).
  const std::string& content_type() const { return content_type_; }
  /// When kBad: what was wrong.
  const std::string& error() const { return error_; }

 private:
  struct Callbacks;
  bool fail(std::string why);

  Limits limits_;
  std::unique_ptr<http_parser> parser_;
  std::unique_ptr<http_parser_settings> settings_;
  State state_ = State::kIncomplete;
  int status_ = 0;
  size_t head_bytes_ = 0;
  std::string field_, value_, content_type_, body_, error_;
  bool in_value_ = false;
};

}  // namespace callrelay::app
