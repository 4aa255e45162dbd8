// The signaling service's state on its thread (SignalingService::Impl), shared by
// signaling_service.cpp (start, stop, the upgrade, timers, relay sampling, metrics) and
// signaling_sessions.cpp (device sessions: open, welcome, messages, close, replay, actions).
// Private to calls/signaling.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <optional>

#include "calls/cluster/cluster_router.hpp"
#include "calls/core/messages.hpp"
#include "calls/signaling/relay_sampler.hpp"
#include "calls/signaling/signaling_service.hpp"

namespace callrelay::calls::signaling_detail {

using nlohmann::json;

/// Messages kept per device for replay after a reconnect. A device in its grace period receives
/// little (candidates, a state change, an ended): this covers a renegotiation's worth.
constexpr size_t kReplayKept = 256;
/// ... and at most this many bytes of them, so that a device reconnecting through offers of
/// large SDPs does not pin megabytes.
constexpr size_t kReplayMaxBytes = 256 * 1024;
/// A session that exceeds its message rate this many times in a row is closed (1008).
constexpr uint32_t kFloodCloseAfter = 200;
/// RFC 6455 section 7.4.2 leaves 4000-4999 to applications.
constexpr uint16_t kCloseGraceOver = 4408;
constexpr uint16_t kCloseReplaced = 4409;
constexpr uint16_t kClosePolicy = 1008;  ///< RFC 6455 section 7.4.1: policy violation
constexpr uint16_t kCloseGoingAway = 1001;

/// `prefix` and `bytes` random base64url characters (OpenSSL's generator).
std::string random_token(const char* prefix, size_t bytes);

}  // namespace callrelay::calls::signaling_detail

namespace callrelay::calls {

using namespace signaling_detail;

struct SignalingService::Impl : FinalRelaySource, ClusterSink {
  /// What on_upgrade decided, until on_open arrives on the signaling thread.
  struct Pending {
    std::string user, tenant;     ///< from the token (new device)
    DeviceId resume;              ///< resumed device ("" for a new one)
    uint64_t last_sseq = 0;
  };
  struct Session {
    std::shared_ptr<http::WsConnection> conn;
    DeviceId device;
    double tokens = 0;  ///< token bucket: messages allowed now
    TimeMs refilled = 0;
    uint32_t over_limit = 0;
  };
  struct Link {  ///< a device as the service sees it: its session and what it was sent
    std::string user, tenant, resume_token;
    uint64_t session = 0;  ///< 0 while disconnected
    uint64_t sseq = 0;
    std::deque<std::pair<uint64_t, std::string>> replay;
    size_t replay_bytes = 0;
  };

  Impl(SignalingService& o, const CallsConfig& cfg, Deps d)
      : owner(o),
        deps(std::move(d)),
        clock(deps.clock ? deps.clock : monotonic_unix_clock()),
        engine(cfg.engine, deps.ice, [] { return random_token("c_", 22); }, deps.metrics, this),
        rate(static_cast<double>(cfg.messages_per_second)) {
    if (deps.cluster != nullptr)
      router = std::make_unique<ClusterRouter>(
          *deps.cluster, engine, cfg.limits,
          [this](const DeviceId& dev) { return links.count(dev) != 0; });
  }

  SignalingService& owner;
  Deps deps;
  Clock clock;
  CallEngine engine;
  double rate;

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::steady_timer timer{io};
  std::thread thread;
  bool stopped = false;

  std::atomic<uint64_t> next_session{0};
  std::mutex pending_mutex;  ///< guards pending and resume_tokens (HTTP threads read them)
  std::unordered_map<uint64_t, Pending> pending;
  std::unordered_map<std::string, DeviceId> resume_tokens;

  // Signaling thread only.
  std::unordered_map<uint64_t, Session> sessions;
  std::unordered_map<DeviceId, Link> links;
  RelaySampler sampler;
  TimeMs next_sample = 0;  ///< 0: no active call to sample
  TimeMs next_recheck = 0;  ///< 0: no ringing call whose callee is looked up again
  std::unique_ptr<ClusterRouter> router;  ///< with other instances only

  /// Open sessions per tenant and user, for online_users() (HTTP threads read it).
  mutable std::mutex online_mutex;
  std::map<std::string, std::map<std::string, uint32_t>, std::less<>> online;

  void opened(uint64_t id, std::shared_ptr<http::WsConnection> conn);
  void received(uint64_t id, const std::string& text);
  void closed(uint64_t id);
  bool admit(Session& s, TimeMs now);
  void welcome(const DeviceId& dev, Link& link, bool resumed);
  void send_to(const DeviceId& dev, json msg);
  void apply(Actions& out);
  void schedule();
  void run_due();
  void sample_relay(TimeMs now);
  /// Samples the relay's media of `call`: its intervals since the previous sample.
  std::vector<RelayInterval> relay_intervals(const ActiveCall& call, TimeMs now);
  /// As the engine ends an active call, the media since its last sample (apply() forgets the
  /// call's sample once its record is out).
  std::vector<RelayInterval> final_intervals(const ActiveCall& call, TimeMs now) override {
    return relay_intervals(call, now);
  }
  void set_online(const DeviceId& dev, const Link& link, bool up);
  // ClusterSink (the seam's threads): handled on the signaling thread.
  void on_envelope(std::string payload) override {
    asio::post(io, [this, payload = std::move(payload)] {
      if (stopped) return;
      Actions out;
      router->on_envelope(payload, clock(), out);
      apply(out);
    });
  }
  void on_instances(std::vector<InstanceSeen> seen) override {
    asio::post(io, [this, seen = std::move(seen)] {
      if (stopped) return;
      Actions out;
      router->on_instances(seen, clock(), out);
      apply(out);
    });
  }
  void forget(const DeviceId& dev);
  void update_metrics();
};

}  // namespace callrelay::calls
