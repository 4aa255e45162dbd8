// The HTTP client of `callrelay ctl`: one blocking request to the relay's HTTP listener (http
// or https, over Asio and OpenSSL) with a deadline on the whole exchange, and the relay's URL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "relay/stun/endpoint.hpp"

namespace callrelay::app {

/// Where the relay's HTTP listener is: "http://127.0.0.1:9641", "https://[::1]:9641".
struct Url {
  bool tls = false;
  std::string host;  ///< a name or an address (IPv6 without brackets)
  uint16_t port = 0;
  std::string text() const;
};

/// Parses "http://HOST[:PORT][/]" or "https://...". nullopt with `error` set when it is not
/// such a URL (a path other than "/" is refused: the API's paths are fixed).
std::optional<Url> parse_url(std::string_view text, std::string& error);

/// The URL that reaches a listener bound to `listen`: a wildcard address (0.0.0.0, ::) is
/// reached on the loopback address of its family.
Url url_for_listener(const stun::Endpoint& listen, bool tls);

/// A request that did not get an HTTP answer.
class HttpError : public std::runtime_error {
 public:
  enum class Kind {
    kUnreachable,  ///< name, connection refused, no route, or no connection within the time
    kTimeout,      ///< connected, but no whole answer within the time
    kTls,          ///< the TLS handshake failed (the certificate, most often)
    kProtocol,     ///< what came back was not a well-formed HTTP answer
  };
  HttpError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct HttpRequest {
  std::string method = "GET";
  std::string target;  ///< "/api/v1/admin/status"
  std::string body;    ///< sent as application/json when not empty (or for POST)
  std::string bearer;  ///< "Authorization: Bearer <bearer>"
};

struct HttpAnswer {
  int status = 0;
  std::string content_type;
  std::string body;
};

/// Sends `req` to `url` and reads the answer, all within `timeout`. With `insecure`, https
/// does not verify the certificate; otherwise it must chain to a trusted CA (the system's,
/// or SSL_CERT_FILE / SSL_CERT_DIR) and name the URL's host. Throws HttpError. The request's
/// fields must not hold CR or LF (checked: std::invalid_argument).
HttpAnswer http_call(const Url& url, const HttpRequest& req, std::chrono::milliseconds timeout,
                     bool insecure);

}  // namespace callrelay::app
