// WebSocket endpoints on the HTTP listener, as plain interfaces: the listener (server.cpp)
// upgrades the connection and moves text messages; what they mean is the endpoint's
// business (the signaling service). Keeps http/ free of calls/ and calls/ free of the listener.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "http/message.hpp"

namespace callrelay::http {

/// One open WebSocket. Both calls are thread-safe and harmless after the socket closed.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  /// Queues one text message.
  virtual void send_text(std::string text) = 0;
  /// Sends a close frame (RFC 6455 section 7.4 code, reason) and closes.
  virtual void close(uint16_t code, std::string reason) = 0;
};

/// How many WebSockets an endpoint takes at once (0: no limit). The listener counts and
/// enforces them before the socket changes hands: a refused upgrade is answered 429 (per
/// address) or 503 (total) and counted as kWsPerAddress / kWsTotal.
struct WsLimits {
  size_t max_per_address = 0;
  size_t max_total = 0;
};

class WsEndpoint {
 public:
  virtual ~WsEndpoint() = default;
  struct Accepted {
    uint64_t session = 0;  ///< the endpoint's name for this connection
  };
  /// An upgrade request on the endpoint's path (an HTTP thread): accept it, or refuse it with
  /// the response to send instead (401 for a bad token, 503 when full).
  virtual std::variant<Accepted, Response> on_upgrade(const Request& req) = 0;
  /// The upgrade completed for an accepted session.
  virtual void on_open(uint64_t session, std::shared_ptr<WsConnection> conn) = 0;
  /// One complete text message (binary messages are refused by the listener).
  virtual void on_message(uint64_t session, std::string text) = 0;
  /// The connection closed or failed (once per opened session; also when the upgrade failed
  /// after on_upgrade accepted it).
  virtual void on_close(uint64_t session) = 0;
  /// Messages longer than this close the connection with 1009 (message too big).
  virtual size_t max_message_bytes() const = 0;
  /// The endpoint's WebSocket limits (asked on each upgrade it accepted; any thread).
  virtual WsLimits limits() const { return {}; }
};

}  // namespace callrelay::http
