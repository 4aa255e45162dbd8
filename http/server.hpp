// The HTTP(S) listener: Asio on its own io_context run by a small thread pool (http.threads),
// so nothing it does (slow or malformed clients, scrapes, TLS handshakes) runs on a relay
// worker, and one slow request never stalls signaling. Admits each connection through a
// ConnectionBudget (per address and in total, oldest silent connection evicted when full, so
// idle or slow clients cannot lock out /metrics, /healthz, /readyz and the API), hands each
// request to the Router, upgrades WebSockets for the Router's endpoint within the endpoint's
// limits, and runs a 1 s housekeeping timer.
#pragma once

#include <functional>
#include <memory>

#include "base/limits.hpp"
#include "http/http_config.hpp"
#include "http/router.hpp"
#include "relay/core/types.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::http {

class HttpServer {
 public:
  /// Called about once a second with the Unix time in ms, on one of the server's threads
  /// (never twice at once).
  using Tick = std::function<void(core::TimeMs)>;

  /// Loads the TLS files (if any) and binds the listener now. Throws std::runtime_error
  /// naming the address or file and what to fix. `router` and `limits` (may be null: nothing
  /// counted) must outlive the server.
  HttpServer(const HttpConfig& cfg, Router& router, Tick on_tick,
             base::LimitCounters* limits = nullptr);
  ~HttpServer();  ///< stops and joins if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The bound address (the actual port when configured with port 0).
  const stun::Endpoint& local_endpoint() const;
  bool tls() const;
  /// WebSockets open now.
  size_t websockets() const;
  /// HTTP connections counted now (WebSockets not included).
  size_t connections() const;

  /// Starts the server threads (accepting, the timer).
  void start();
  /// Closes the listener, then every WebSocket (each endpoint hears on_close), then every
  /// HTTP connection; stops the threads and joins them. Idempotent.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::http
