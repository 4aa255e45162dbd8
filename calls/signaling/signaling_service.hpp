// The signaling service behind /api/v1/signal: one thread that owns the CallEngine and every
// device session, fed by the HTTP listener's WebSocket callbacks (http::WsEndpoint, called on
// HTTP threads, posted here). It authenticates upgrades (JWT or resume token), parses and
// rate-limits messages, numbers what it sends (sseq) and keeps the last messages of each device
// so that a device that reconnects within the grace period gets what it missed. When a call
// ends it adds the relay's traffic to the record, hands the record to storage and ends the
// call's allocations. Every 5 s it samples what the relay measured of each active call's media
// and feeds the engine relay-observed quality intervals (README, section Call quality), and
// once more as an active call ends, so its record holds the media up to its end; it hands the
// relay the payload types each call negotiated. With other instances (Deps::cluster) it
// publishes its devices' presence and routes calls whose sides sit on different instances
// (calls/cluster/cluster_router.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "calls/cluster/cluster_seam.hpp"
#include "calls/core/config.hpp"
#include "calls/core/engine.hpp"
#include "calls/signaling/call_metrics.hpp"
#include "calls/signaling/relay_seam.hpp"
#include "calls/signaling/token.hpp"
#include "http/websocket.hpp"

namespace callrelay::calls {

/// Unix milliseconds, derived from a monotonic clock (deadlines never jump with the wall clock).
using Clock = std::function<TimeMs()>;
Clock monotonic_unix_clock();

/// How often the relay's measurements of each active call are sampled into quality intervals.
inline constexpr TimeMs kRelaySampleMs = 5000;

class SignalingService : public http::WsEndpoint {
 public:
  struct Deps {
    const TokenSigner& tokens;
    IceServerSource& ice;
    CallRelay& relay;
    /// Takes a finished record (with the relay's traffic); must not block (RecordWriter).
    std::function<void(CallRecord)> store;
    CallMetrics* metrics = nullptr;  ///< may be null
    Clock clock;                     ///< empty: monotonic_unix_clock()
    /// The other instances (cluster.redis_url); null: this instance alone. Started and
    /// stopped with the service.
    ClusterSeam* cluster = nullptr;
  };
  /// Everything in `deps` outlives the service.
  SignalingService(CallsConfig cfg, Deps deps);
  ~SignalingService() override;  ///< stops if still running
  SignalingService(const SignalingService&) = delete;
  SignalingService& operator=(const SignalingService&) = delete;

  /// Starts the signaling thread.
  void start();
  /// Ends every live call (records kept), closes every session and joins the thread.
  void stop();

  // http::WsEndpoint (HTTP threads)
  std::variant<Accepted, http::Response> on_upgrade(const http::Request& req) override;
  void on_open(uint64_t session, std::shared_ptr<http::WsConnection> conn) override;
  void on_message(uint64_t session, std::string text) override;
  void on_close(uint64_t session) override;
  size_t max_message_bytes() const override { return cfg_.limits.max_message_bytes; }
  /// calls.max_connections_per_address and calls.max_connections, enforced and counted by the
  /// listener before the upgrade completes.
  http::WsLimits limits() const override {
    return {cfg_.max_connections_per_address, cfg_.max_connections};
  }

  /// Runs `fn` on the signaling thread and waits for it (tests, status).
  void run_sync(std::function<void()> fn);
  /// Runs on the signaling thread what is due at the clock's time now (call deadlines, the
  /// relay sampling) and waits for it. The service's timer does this by itself; tests that move
  /// an injected clock call it instead of waiting.
  void run_due();
  size_t open_sessions() const { return open_.load(); }
  /// The live calls (CallEngine::live_calls), read on the signaling thread for the operator.
  /// nullopt when the thread does not answer within `timeout` (not started, or stopped).
  std::optional<std::vector<LiveCall>> live_calls(std::chrono::milliseconds timeout);
  /// Ends live call `call_id` for the operator (CallEngine::end_by_operator) on the signaling
  /// thread: both devices get `ended`, the record is stored and the call's allocations end, as
  /// for any call that ends. Whether the call was live; nullopt when the thread does not
  /// answer within `timeout`.
  std::optional<bool> end_call(std::string call_id, std::chrono::milliseconds timeout);
  /// Users of `tenant` with at least one open signaling connection, sorted, at most `max`
  /// (the demo page's list). Any thread.
  std::vector<std::string> online_users(std::string_view tenant, size_t max) const;

 private:
  struct Impl;
  CallsConfig cfg_;
  std::atomic<size_t> open_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::calls
