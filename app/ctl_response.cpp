#include "app/ctl_response.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cctype>

namespace callrelay::app {
namespace {

ResponseParser& self(http_parser* p) { return *static_cast<ResponseParser*>(p->data); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

/// The http-parser callbacks; a nonzero return stops the parser with an error.
struct ResponseParser::Callbacks {
  static int head(http_parser* p, size_t n) {
    ResponseParser& s = self(p);
    s.head_bytes_ += n;
    if (s.head_bytes_ <= s.limits_.max_head_bytes) return 0;
    s.fail("the answer's headers are longer than " + std::to_string(s.limits_.max_head_bytes) +
           " bytes");
    return 1;
  }
  static void store_field(ResponseParser& s) {
    if (iequals(s.field_, "Content-Type")) s.content_type_ = s.value_;
    s.field_.clear();
    s.value_.clear();
    s.in_value_ = false;
  }
  static int on_status(http_parser* p, const char*, size_t n) { return head(p, n); }
  static int on_header_field(http_parser* p, const char* at, size_t n) {
    if (head(p, n) != 0) return 1;
    ResponseParser& s = self(p);
    if (s.in_value_) store_field(s);
    s.field_.append(at, n);
    return 0;
  }
  static int on_header_value(http_parser* p, const char* at, size_t n) {
    if (head(p, n) != 0) return 1;
    ResponseParser& s = self(p);
    s.in_value_ = true;
    s.value_.append(at, n);
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    ResponseParser& s = self(p);
    if (s.in_value_) store_field(s);
    s.status_ = static_cast<int>(p->status_code);
    return 0;
  }
  static int on_body(http_parser* p, const char* at, size_t n) {
    ResponseParser& s = self(p);
    if (n > s.limits_.max_body_bytes - s.body_.size()) {
      s.fail("the answer's body is larger than " + std::to_string(s.limits_.max_body_bytes) +
             " bytes");
      return 1;
    }
    s.body_.append(at, n);
    return 0;
  }
  static int on_message_complete(http_parser* p) {
    ResponseParser& s = self(p);
    // 1xx answers are interim (RFC 9110 section 15.2): the real one follows.
    if (s.status_ >= 100 && s.status_ < 200) {
      s.head_bytes_ = 0;
      s.body_.clear();
      return 0;
    }
    s.state_ = State::kComplete;
    http_parser_pause(p, 1);  // anything after the answer is not ours to read
    return 0;
  }
};

ResponseParser::ResponseParser() : ResponseParser(Limits{}) {}

ResponseParser::ResponseParser(Limits limits)
    : limits_(limits),
      parser_(std::make_unique<http_parser>()),
      settings_(std::make_unique<http_parser_settings>()) {
  http_parser_init(parser_.get(), HTTP_RESPONSE);
  parser_->data = this;
  http_parser_settings_init(settings_.get());
  settings_->on_status = &Callbacks::on_status;
  settings_->on_header_field = &Callbacks::on_header_field;
  settings_->on_header_value = &Callbacks::on_header_value;
  settings_->on_headers_complete = &Callbacks::on_headers_complete;
  settings_->on_body = &Callbacks::on_body;
  settings_->on_message_complete = &Callbacks::on_message_complete;
}

ResponseParser::~ResponseParser() = default;

bool ResponseParser::fail(std::string why) {
  if (state_ != State::kBad) error_ = std::move(why);
  state_ = State::kBad;
  return false;
}

ResponseParser::State ResponseParser::feed(std::string_view data) {
  if (state_ != State::kIncomplete || data.empty()) return state_;
  http_parser_execute(parser_.get(), settings_.get(), data.data(), data.size());
  const auto err = HTTP_PARSER_ERRNO(parser_.get());
  if (state_ == State::kIncomplete && err != HPE_OK)
    fail(std::string("not an HTTP answer: ") + http_errno_description(err));
  return state_;
}

ResponseParser::State ResponseParser::finish() {
  if (state_ != State::kIncomplete) return state_;
  // A zero-length execute tells http-parser the stream ended (a body that runs to the close).
  http_parser_execute(parser_.get(), settings_.get(), nullptr, 0);
  if (state_ == State::kIncomplete)
    fail(status_ == 0 ? "the connection closed before an HTTP answer"
                      : "the connection closed in the middle of the answer");
  return state_;
}

}  // namespace callrelay::app
