#include "http/request_parser.hpp"

#include <http_parser.h>

#include <algorithm>
#include <utility>

namespace callrelay::http {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  return s;
}

/// Whether a comma-separated header value (Connection) has `token`, case-insensitively.
bool has_token(const std::string& value, std::string_view token) {
  const std::string v = lower(value);
  size_t start = 0;
  while (start <= v.size()) {
    const size_t comma = std::min(v.find(',', start), v.size());
    std::string_view part(v.data() + start, comma - start);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (part == token) return true;
    start = comma + 1;
  }
  return false;
}

RequestParser& self(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

}  // namespace

/// The http-parser callbacks (C function pointers), friends of the parser's state. Any
/// nonzero return stops the parser with an error, except from on_headers_complete, where 1
/// and 2 mean "no body": it stops with kAbort.
struct RequestParser::Callbacks {
  static constexpr int kAbort = -1;

  static int on_message_begin(http_parser* p) {
    self(p).head_bytes_ = std::max<size_t>(self(p).head_bytes_, 1);
    return 0;
  }
  static int on_url(http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (!s.add_head_bytes(n)) return 1;
    s.target_.append(at, n);
    return 0;
  }
  static int on_header_field(http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (!s.add_head_bytes(n)) return 1;
    if (s.in_value_) store_field(s);
    if (s.field_.size() + n > s.limits_.max_field_name)
      s.fail(431, "a header name is longer than " + std::to_string(s.limits_.max_field_name) +
                      " bytes");
    if (s.state_ == State::kBad) return 1;
    s.field_.append(at, n);
    return 0;
  }
  static int on_header_value(http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (!s.add_head_bytes(n)) return 1;
    s.in_value_ = true;
    s.value_.append(at, n);
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    RequestParser& s = self(p);
    if (s.in_value_ || !s.field_.empty()) store_field(s);
    if (s.state_ == State::kBad) return kAbort;
    if ((p->flags & F_CONTENTLENGTH) != 0 && p->content_length > s.limits_.max_body_bytes) {
      s.fail(413, "the body declared (" + std::to_string(p->content_length) +
                      " bytes) is larger than the server accepts");
      return kAbort;
    }
    s.req_.method = http_method_str(static_cast<http_method>(p->method));
    if (!split_target(s)) return kAbort;
    s.state_ = State::kBody;
    return 0;
  }
  static int on_body(http_parser* p, const char* at, size_t n) {
    RequestParser& s = self(p);
    if (s.req_.body.size() + n > s.limits_.max_body_bytes) {
      s.fail(413, "the body is larger than the server accepts");
      return 1;
    }
    s.req_.body.append(at, n);
    return 0;
  }
  static int on_message_complete(http_parser* p) {
    RequestParser& s = self(p);
    if (s.state_ == State::kBad) return kAbort;
    s.keep_alive_ = http_should_keep_alive(p) != 0 && p->upgrade == 0;
    s.state_ = State::kComplete;
    // One request at a time: the rest stays with the caller. An upgrade stops by itself after
    // its head (what follows is the new protocol's).
    if (p->upgrade == 0) http_parser_pause(p, 1);
    return 0;
  }

  /// Keeps the header fields the routes read (the first of each name).
  static void store_field(RequestParser& s) {
    if (++s.fields_ > s.limits_.max_fields)
      s.fail(431, "more than " + std::to_string(s.limits_.max_fields) + " header fields");
    s.header_size_ += s.field_.size() + s.value_.size() + 4;
    const std::string name = lower(s.field_);
    Request& r = s.req_;
    auto keep = [&](std::string& slot) {
      if (slot.empty()) slot = s.value_;
    };
    if (name == "authorization") keep(r.authorization);
    else if (name == "origin") keep(r.origin);
    else if (name == "content-type") keep(r.content_type);
    else if (name == "upgrade") keep(r.upgrade);
    else if (name == "sec-websocket-key") keep(r.sec_websocket_key);
    else if (name == "sec-websocket-version") keep(r.sec_websocket_version);
    else if (name == "connection") r.connection_upgrade |= has_token(s.value_, "upgrade");
    s.field_.clear();
    s.value_.clear();
    s.in_value_ = false;
  }

  /// Path and query from the request target (origin or absolute form, RFC 9112 section 3.2).
  static bool split_target(RequestParser& s) {
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(s.target_.data(), s.target_.size(), 0, &u) != 0)
      return s.fail(400, "malformed request target");
    auto part = [&](http_parser_url_fields f) {
      if ((u.field_set & (1U << f)) == 0) return std::string();
      return s.target_.substr(u.field_data[f].off, u.field_data[f].len);
    };
    s.req_.path = part(UF_PATH);
    if (s.req_.path.empty()) s.req_.path = "/";
    s.req_.query = part(UF_QUERY);
    s.req_.upgrade = lower(s.req_.upgrade);
    return true;
  }
};

RequestParser::RequestParser(Limits limits)
    : limits_(limits),
      parser_(std::make_unique<http_parser>()),
      settings_(std::make_unique<http_parser_settings>()) {
  http_parser_settings_init(settings_.get());
  settings_->on_message_begin = &Callbacks::on_message_begin;
  settings_->on_url = &Callbacks::on_url;
  settings_->on_header_field = &Callbacks::on_header_field;
  settings_->on_header_value = &Callbacks::on_header_value;
  settings_->on_headers_complete = &Callbacks::on_headers_complete;
  settings_->on_body = &Callbacks::on_body;
  settings_->on_message_complete = &Callbacks::on_message_complete;
  reset();
}

RequestParser::~RequestParser() = default;

void RequestParser::reset() {
  http_parser_init(parser_.get(), HTTP_REQUEST);
  parser_->data = this;
  state_ = State::kHead;
  req_ = Request{};
  target_.clear();
  field_.clear();
  value_.clear();
  in_value_ = false;
  fields_ = 0;
  head_bytes_ = 0;
  header_size_ = 0;
  keep_alive_ = false;
  status_ = 0;
  error_.clear();
}

bool RequestParser::fail(int status, std::string why) {
  if (state_ != State::kBad) {
    state_ = State::kBad;
    status_ = status;
    error_ = std::move(why);
  }
  return false;
}

bool RequestParser::add_head_bytes(size_t n) {
  head_bytes_ += n;
  if (head_bytes_ <= limits_.max_head_bytes) return true;
  return fail(431, "the request head is larger than " + std::to_string(limits_.max_head_bytes) +
                       " bytes");
}

size_t RequestParser::feed(std::string_view data) {
  if (state_ == State::kComplete || state_ == State::kBad || data.empty()) return 0;
  const size_t used = http_parser_execute(parser_.get(), settings_.get(), data.data(), data.size());
  const auto err = static_cast<http_errno>(parser_->http_errno);
  if (state_ == State::kBad || state_ == State::kComplete) return used;
  if (err == HPE_HEADER_OVERFLOW) {
    fail(431, "the request head is too large");
  } else if (err != HPE_OK && err != HPE_PAUSED) {
    fail(400, std::string("malformed request: ") + http_errno_description(err));
  }
  return used;
}

Request RequestParser::take() {
  Request r = std::move(req_);
  r.size = r.method.size() + target_.size() + 12 + header_size_ + r.body.size();
  reset();
  return r;
}

}  // namespace callrelay::http
