#include "app/ctl_http.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <asio.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl.hpp>
#include <charconv>
#include <exception>
#include <optional>

#include "app/ctl_response.hpp"

namespace callrelay::app {
namespace {

using asio::ip::tcp;
using Kind = HttpError::Kind;

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != s.npos; }

std::string host_header(const Url& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  return (v6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

std::string request_text(const Url& url, const HttpRequest& req) {
  std::string out = req.method + " " + req.target + " HTTP/1.1\r\n";
  out += "Host: " + host_header(url) + "\r\n";
  out += "User-Agent: callrelay-ctl\r\nAccept: application/json\r\nConnection: close\r\n";
  if (!req.bearer.empty()) out += "Authorization: Bearer " + req.bearer + "\r\n";
  if (!req.body.empty() || req.method == "POST") {
    out += "Content-Type: application/json\r\n";
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  }
  return out + "\r\n" + req.body;
}

/// One request and its answer on one connection. The coroutine runs on `io_`, which the
/// caller runs for at most the timeout.
class Exchange {
 public:
  Exchange(const Url& url, const HttpRequest& req, bool insecure)
      : url_(url), request_(request_text(url, req)), insecure_(insecure) {}

  HttpAnswer run(std::chrono::milliseconds timeout);

 private:
  enum class Phase { kConnecting, kHandshake, kExchanging };

  asio::awaitable<void> main();
  asio::awaitable<void> handshake();
  template <typename Stream>
  asio::awaitable<void> talk(Stream& stream);

  const Url& url_;
  const std::string request_;
  const bool insecure_;
  asio::io_context io_;
  asio::ssl::context ctx_{asio::ssl::context::tls_client};
  tcp::socket socket_{io_};
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
  Phase phase_ = Phase::kConnecting;
  bool done_ = false;
  std::exception_ptr error_;
  ResponseParser parser_;
};

HttpAnswer Exchange::run(std::chrono::milliseconds timeout) {
  asio::co_spawn(io_, main(), [this](std::exception_ptr e) {
    error_ = e;
    done_ = true;
  });
  io_.run_for(timeout);
  if (!done_) {
    // Closing completes the pending operation with an error; the coroutine then ends.
    std::error_code ignored;
    socket_.close(ignored);
    io_.restart();
    io_.run_for(std::chrono::seconds(1));
    const std::string secs =
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
    if (phase_ == Phase::kConnecting)
      throw HttpError(Kind::kUnreachable,
                      "no connection to " + url_.text() + " within " + secs + " s");
    throw HttpError(Kind::kTimeout, url_.text() + " did not answer within " + secs + " s");
  }
  if (error_) std::rethrow_exception(error_);
  return HttpAnswer{parser_.status(), parser_.content_type(), parser_.body()};
}

asio::awaitable<void> Exchange::main() {
  std::error_code ec;
  tcp::resolver resolver(io_);
  const auto endpoints = co_await resolver.async_resolve(
      url_.host, std::to_string(url_.port), asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    throw HttpError(Kind::kUnreachable, "cannot resolve '" + url_.host + "': " + ec.message());
  co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec)
    throw HttpError(Kind::kUnreachable, "cannot connect to " + url_.text() + ": " + ec.message());
  if (url_.tls) {
    phase_ = Phase::kHandshake;
    co_await handshake();
    phase_ = Phase::kExchanging;
    co_await talk(*tls_);
  } else {
    phase_ = Phase::kExchanging;
    co_await talk(socket_);
  }
}

asio::awaitable<void> Exchange::handshake() {
  if (insecure_) {
    ctx_.set_verify_mode(asio::ssl::verify_none);
  } else {
    ctx_.set_default_verify_paths();  // the system's CAs, or SSL_CERT_FILE / SSL_CERT_DIR
    ctx_.set_verify_mode(asio::ssl::verify_peer);
  }
  tls_.emplace(socket_, ctx_);
  if (!insecure_) tls_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
  std::error_code not_an_address;
  (void)asio::ip::make_address(url_.host, not_an_address);
  if (not_an_address)  // SNI names hosts, never addresses (RFC 6066 section 3)
    SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str());
  std::error_code ec;
  co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                 asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) co_return;
  const long verify = SSL_get_verify_result(tls_->native_handle());
  std::string why = ec.message();
  if (verify != X509_V_OK)
    why = std::string("the certificate was not accepted: ") +
          X509_verify_cert_error_string(verify) +
          " (give the CA in SSL_CERT_FILE, or --insecure to skip the check)";
  throw HttpError(Kind::kTls, "TLS with " + url_.text() + " failed: " + why);
}

template <typename Stream>
asio::awaitable<void> Exchange::talk(Stream& stream) {
  std::error_code ec;
  co_await asio::async_write(stream, asio::buffer(request_),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) throw HttpError(Kind::kUnreachable, "sending to " + url_.text() + ": " + ec.message());
  std::array<char, 16384> buf{};
  while (parser_.state() == ResponseParser::State::kIncomplete) {
    const size_t n = co_await stream.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec && ec != asio::error::eof && ec != asio::ssl::error::stream_truncated)
      throw HttpError(Kind::kProtocol, "reading from " + url_.text() + ": " + ec.message());
    if (n > 0) parser_.feed(std::string_view(buf.data(), n));
    if (ec) parser_.finish();
  }
  if (parser_.state() == ResponseParser::State::kBad)
    throw HttpError(Kind::kProtocol, url_.text() + ": " + parser_.error());
}

}  // namespace

std::string Url::text() const {
  return std::string(tls ? "https://" : "http://") + host_header(*this);
}

std::optional<Url> parse_url(std::string_view text, std::string& error) {
  Url url;
  if (text.rfind("https://", 0) == 0) {
    url.tls = true;
    text.remove_prefix(8);
  } else if (text.rfind("http://", 0) == 0) {
    text.remove_prefix(7);
  } else {
    error = "the URL must start with http:// or https://";
    return std::nullopt;
  }
  if (const size_t slash = text.find('/'); slash != text.npos) {
    if (text.substr(slash) != "/") {
      error = "the URL must name the relay's listener only (like http://127.0.0.1:9641), no path";
      return std::nullopt;
    }
    text = text.substr(0, slash);
  }
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == text.npos) {
      error = "an IPv6 address in a URL goes in brackets, like http://[::1]:9641";
      return std::nullopt;
    }
    url.host = std::string(text.substr(1, close - 1));
    text.remove_prefix(close + 1);
    if (!text.empty() && text.front() != ':') {
      error = "unexpected text after the address";
      return std::nullopt;
    }
    if (!text.empty()) port_text = text.substr(1);
  } else {
    const size_t colon = text.find(':');
    url.host = std::string(text.substr(0, colon));
    if (colon != text.npos) port_text = text.substr(colon + 1);
  }
  if (url.host.empty() || url.host.find_first_of(" \t\r\n@?#") != std::string::npos) {
    error = "the URL has no usable host";
    return std::nullopt;
  }
  url.port = url.tls ? 443 : 80;
  if (!port_text.empty() || text.find(':') != text.npos) {
    unsigned port = 0;
    const auto [end, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port == 0 || port > 65535) {
      error = "the URL's port must be a number from 1 to 65535";
      return std::nullopt;
    }
    url.port = static_cast<uint16_t>(port);
  }
  return url;
}

Url url_for_listener(const stun::Endpoint& listen, bool tls) {
  Url url;
  url.tls = tls;
  url.port = listen.port;
  url.host = listen.ip_string();
  if (url.host == "0.0.0.0") url.host = "127.0.0.1";
  if (url.host == "::") url.host = "::1";
  return url;
}

HttpAnswer http_call(const Url& url, const HttpRequest& req, std::chrono::milliseconds timeout,
                     bool insecure) {
  if (has_line_break(req.method) || has_line_break(req.target) || has_line_break(req.bearer) ||
      has_line_break(url.host))
    throw std::invalid_argument("a line break in an HTTP request's method, target, key or host");
  Exchange exchange(url, req, insecure);
  return exchange.run(timeout);
}

}  // namespace callrelay::app
