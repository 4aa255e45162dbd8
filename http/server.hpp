// The HTTP(S) listener: RESTinio on its own thread and io_context, so nothing it does (slow or
// malformed clients, scrapes, TLS handshakes) runs on a relay worker. Hands each request to the
// Router and runs a 1 s housekeeping timer on the same thread.
#pragma once

#include <functional>
#include <memory>

#include "http/http_config.hpp"
#include "http/router.hpp"
#include "relay/core/types.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::http {

class HttpServer {
 public:
  /// Called about once a second on the server's thread with the Unix time in ms.
  using Tick = std::function<void(core::TimeMs)>;

  /// Loads the TLS files (if any) and binds the listener now. Throws std::runtime_error
  /// naming the address or file and what to fix. `router` must outlive the server.
  HttpServer(const HttpConfig& cfg, Router& router, Tick on_tick);
  ~HttpServer();  ///< stops and joins if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The bound address (the actual port when configured with port 0).
  const stun::Endpoint& local_endpoint() const;
  bool tls() const;

  /// Starts the server thread (accepting, the timer).
  void start();
  /// Closes the listener and every connection, stops the thread and joins it. Idempotent.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::http
