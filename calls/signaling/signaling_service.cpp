#include "calls/signaling/signaling_service.hpp"

#include <openssl/rand.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <optional>

#include "base/log.hpp"
#include "calls/cluster/cluster_router.hpp"
#include "calls/core/messages.hpp"
#include "calls/signaling/relay_sampler.hpp"
#include "http/codec.hpp"

namespace callrelay::calls {
namespace {

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

std::string random_token(const char* prefix, size_t bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed: no randomness for signaling ids");
  std::string out(prefix);
  for (const char c : raw) out += kAlphabet[static_cast<unsigned char>(c) & 63];
  return out;
}

std::optional<uint64_t> parse_u64(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

http::Response refuse(int status, const std::string& why) { return http::json_error(status, why); }

/// Runs `fn` on `io`'s thread and waits at most `timeout` for its result. `fn` owns what it
/// uses: it may run after the wait gave up. nullopt when it did not run in time (or never will).
template <typename R, typename F>
std::optional<R> ask(asio::io_context& io, F fn, std::chrono::milliseconds timeout) {
  auto done = std::make_shared<std::promise<R>>();
  std::future<R> result = done->get_future();
  asio::post(io, [fn = std::move(fn), done]() mutable { done->set_value(fn()); });
  if (result.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  try {
    return result.get();
  } catch (const std::future_error&) {  // the loop was destroyed before it ran
    return std::nullopt;
  }
}

}  // namespace

Clock monotonic_unix_clock() {
  using namespace std::chrono;
  const auto unix0 = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const auto mono0 = steady_clock::now();
  return [unix0, mono0] {
    return unix0 + duration_cast<milliseconds>(steady_clock::now() - mono0).count();
  };
}

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

SignalingService::SignalingService(CallsConfig cfg, Deps deps)
    : cfg_(std::move(cfg)), impl_(std::make_unique<Impl>(*this, cfg_, std::move(deps))) {}

SignalingService::~SignalingService() { stop(); }

void SignalingService::start() {
  if (impl_->thread.joinable()) return;
  if (impl_->deps.cluster != nullptr) impl_->deps.cluster->start(*impl_);
  impl_->thread = std::thread([impl = impl_.get()] {
    try {
      impl->io.run();
    } catch (const std::exception& e) {
      log::error("signaling.thread_stopped", {{"error", e.what()}},
                 "signaling: thread stopped: ", e.what());
    }
  });
}

void SignalingService::stop() {
  if (!impl_->thread.joinable() || impl_->stopped) return;
  asio::post(impl_->io, [impl = impl_.get()] {
    Actions out;
    impl->engine.shutdown(impl->clock(), out);
    impl->apply(out);
    for (auto& [id, s] : impl->sessions) s.conn->close(kCloseGoingAway, "server shutting down");
    impl->sessions.clear();
    {
      const std::lock_guard lock(impl->online_mutex);
      impl->online.clear();
    }
    impl->timer.cancel();
    impl->stopped = true;
    impl->work.reset();
  });
  impl_->thread.join();
  // After the engine's shutdown: the `ended` of calls with a side elsewhere go out first.
  if (impl_->deps.cluster != nullptr) impl_->deps.cluster->stop();
}

void SignalingService::run_sync(std::function<void()> fn) {
  std::promise<void> done;
  asio::post(impl_->io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void SignalingService::run_due() {
  if (!impl_->thread.joinable()) return;  // not started, or stopped: nothing runs
  run_sync([impl = impl_.get()] { impl->run_due(); });
}

std::optional<std::vector<LiveCall>> SignalingService::live_calls(
    std::chrono::milliseconds timeout) {
  return ask<std::vector<LiveCall>>(
      impl_->io, [impl = impl_.get()] { return impl->engine.live_calls(); }, timeout);
}

std::optional<bool> SignalingService::end_call(std::string call_id,
                                               std::chrono::milliseconds timeout) {
  return ask<bool>(
      impl_->io,
      [impl = impl_.get(), id = std::move(call_id)] {
        Actions out;
        const bool found = impl->engine.end_by_operator(id, impl->clock(), out);
        impl->apply(out);
        return found;
      },
      timeout);
}

std::vector<std::string> SignalingService::online_users(std::string_view tenant,
                                                        size_t max) const {
  std::vector<std::string> users;
  const std::lock_guard lock(impl_->online_mutex);
  const auto it = impl_->online.find(tenant);
  if (it == impl_->online.end()) return users;
  for (const auto& [user, sessions] : it->second) {
    if (users.size() >= max) break;
    users.push_back(user);
  }
  return users;
}

// --- HTTP threads --------------------------------------------------------------------------

std::variant<http::WsEndpoint::Accepted, http::Response> SignalingService::on_upgrade(
    const http::Request& req) {
  Impl& s = *impl_;
  if (open_.load() >= cfg_.max_connections) {
    if (s.deps.metrics != nullptr) s.deps.metrics->on_rejected("unavailable");
    return refuse(503, "too many signaling connections (calls.max_connections)");
  }
  const auto params = http::parse_form(req.query);
  if (!params) return refuse(400, "malformed query string");
  Impl::Pending p;
  if (const auto resume = http::find_param(*params, "resume"); resume && !resume->empty()) {
    const std::lock_guard lock(s.pending_mutex);
    const auto it = s.resume_tokens.find(*resume);
    if (it == s.resume_tokens.end()) {
      if (s.deps.metrics != nullptr) s.deps.metrics->on_rejected("unauthorized");
      return refuse(401, "unknown or expired resume token: connect again with a token");
    }
    p.resume = it->second;
    if (const auto last = http::find_param(*params, "last_sseq"))
      p.last_sseq = parse_u64(*last).value_or(0);
  } else {
    std::string token = http::find_param(*params, "token").value_or("");
    if (token.empty() && req.authorization.rfind("Bearer ", 0) == 0)
      token = req.authorization.substr(7);
    if (token.empty()) {
      if (s.deps.metrics != nullptr) s.deps.metrics->on_rejected("unauthorized");
      return refuse(401, "missing token: connect with ?token=JWT");
    }
    const auto verified = s.deps.tokens.verify(token, s.clock() / 1000);
    if (const auto* err = std::get_if<TokenError>(&verified)) {
      if (s.deps.metrics != nullptr) s.deps.metrics->on_rejected("unauthorized");
      return refuse(401, "token refused: " + err->reason);
    }
    const auto& claims = std::get<TokenClaims>(verified);
    p.user = claims.user;
    p.tenant = claims.tenant;
  }
  const uint64_t id = ++s.next_session;
  const std::lock_guard lock(s.pending_mutex);
  s.pending.emplace(id, std::move(p));
  return Accepted{id};
}

void SignalingService::on_open(uint64_t session, std::shared_ptr<http::WsConnection> conn) {
  ++open_;
  asio::post(impl_->io, [impl = impl_.get(), session, conn = std::move(conn)]() mutable {
    impl->opened(session, std::move(conn));
  });
}

void SignalingService::on_message(uint64_t session, std::string text) {
  asio::post(impl_->io, [impl = impl_.get(), session, text = std::move(text)] {
    impl->received(session, text);
  });
}

void SignalingService::on_close(uint64_t session) {
  asio::post(impl_->io, [this, session] {
    // Sessions whose upgrade never completed were only pending.
    {
      const std::lock_guard lock(impl_->pending_mutex);
      if (impl_->pending.erase(session) != 0) return;
    }
    --open_;  // once per opened session (the listener's contract)
    impl_->closed(session);
  });
}

// --- signaling thread ----------------------------------------------------------------------

void SignalingService::Impl::opened(uint64_t id, std::shared_ptr<http::WsConnection> conn) {
  Pending p;
  {
    const std::lock_guard lock(pending_mutex);
    const auto it = pending.find(id);
    if (it == pending.end()) return;
    p = std::move(it->second);
    pending.erase(it);
  }
  if (stopped) {
    conn->close(kCloseGoingAway, "server shutting down");
    return;
  }
  const TimeMs now = clock();
  Actions out;
  Session& s = sessions[id];
  s.conn = conn;
  s.tokens = 2 * rate;
  s.refilled = now;
  if (!p.resume.empty()) {
    const auto it = links.find(p.resume);
    if (it == links.end()) {  // forgotten between the upgrade and now
      conn->close(kCloseGraceOver, "grace period over: connect again with a token");
      sessions.erase(id);
      return;
    }
    Link& link = it->second;
    if (link.session != 0) {
      // The old socket is still open on our side (its loss not yet noticed): this one takes
      // over without the call noticing.
      if (auto old = sessions.find(link.session); old != sessions.end()) {
        old->second.conn->close(kCloseReplaced, "resumed on another connection");
        sessions.erase(old);
      }
    } else {
      engine.device_resumed(p.resume, now, out);
      set_online(p.resume, link, true);
      if (router) router->local_resumed(p.resume);
    }
    link.session = id;
    s.device = p.resume;
    welcome(p.resume, link, true);
    for (const auto& [sseq, text] : link.replay)
      if (sseq > p.last_sseq) conn->send_text(text);
    apply(out);
    return;
  }
  const DeviceId dev = random_token("d_", 16);
  if (!engine.device_connected(dev, p.user, p.tenant, now, out)) {
    conn->send_text(json{{"type", "error"},
                         {"code", "unavailable"},
                         {"reason", "too many devices connected for this user"}}
                        .dump());
    conn->close(kClosePolicy, "too many devices");
    sessions.erase(id);
    return;
  }
  Link& link = links[dev];
  link.user = p.user;
  link.tenant = p.tenant;
  link.session = id;
  set_online(dev, link, true);
  link.resume_token = random_token("", 32);
  {
    const std::lock_guard lock(pending_mutex);
    resume_tokens.emplace(link.resume_token, dev);
  }
  s.device = dev;
  welcome(dev, link, false);
  apply(out);
}

void SignalingService::Impl::welcome(const DeviceId& dev, Link& link, bool resumed) {
  json payload = {{"user", link.user},
                  {"tenant", link.tenant.empty() ? json(nullptr) : json(link.tenant)},
                  {"device", dev},
                  {"resume", link.resume_token},
                  {"grace_ms", owner.cfg_.engine.grace_ms},
                  {"resumed", resumed}};
  if (resumed) payload["calls"] = engine.device_calls(dev);
  // Not numbered: it belongs to this connection, not to the device's replayable stream.
  sessions.at(link.session).conn->send_text(json{{"type", "welcome"}, {"payload", payload}}.dump());
}

bool SignalingService::Impl::admit(Session& s, TimeMs now) {
  s.tokens = std::min(2 * rate, s.tokens + rate * static_cast<double>(now - s.refilled) / 1000.0);
  s.refilled = now;
  if (s.tokens < 1) return false;
  s.tokens -= 1;
  return true;
}

void SignalingService::Impl::received(uint64_t id, const std::string& text) {
  const auto it = sessions.find(id);
  if (it == sessions.end()) return;
  Session& s = it->second;
  const TimeMs now = clock();
  const auto reject = [&](MessageError e) {
    if (deps.metrics != nullptr) deps.metrics->on_rejected(e.code);
    json msg = {{"type", "error"}, {"code", e.code}, {"reason", e.reason}};
    if (!e.field.empty()) msg["field"] = e.field;
    if (e.seq) msg["seq"] = *e.seq;
    if (!e.call.empty()) msg["call"] = e.call;
    send_to(s.device, std::move(msg));
  };
  if (!admit(s, now)) {
    if (++s.over_limit >= kFloodCloseAfter) {
      s.conn->close(kClosePolicy, "message flood");
      return;
    }
    MessageError e;
    e.code = "rate-limited";
    e.reason = "more than " + std::to_string(owner.cfg_.messages_per_second) +
               " messages per second (calls.messages_per_second): message dropped";
    reject(std::move(e));
    return;
  }
  s.over_limit = 0;
  auto parsed = parse_client_message(text, owner.cfg_.limits);
  if (auto* e = std::get_if<MessageError>(&parsed)) {
    reject(std::move(*e));
    return;
  }
  Actions out;
  const ClientMessage& m = std::get<ClientMessage>(parsed);
  if (router) {
    // A call owned by another instance: its engine answers, through that instance.
    if (router->forward(s.device, m, text)) return;
    if (m.type == ClientType::kInvite) {
      const Link& link = links.at(s.device);
      router->before_invite(link.tenant, m.to, now, out);
    }
  }
  engine.on_message(s.device, m, now, out);
  apply(out);
}

void SignalingService::Impl::closed(uint64_t id) {
  const auto it = sessions.find(id);
  if (it == sessions.end()) return;
  const DeviceId dev = it->second.device;
  sessions.erase(it);
  const auto link = links.find(dev);
  if (link == links.end() || link->second.session != id) return;
  link->second.session = 0;
  set_online(dev, link->second, false);
  Actions out;
  engine.device_lost(dev, clock(), out);
  if (router) router->local_lost(dev);
  apply(out);
}

void SignalingService::Impl::send_to(const DeviceId& dev, json msg) {
  const auto it = links.find(dev);
  if (it == links.end()) return;
  Link& link = it->second;
  msg["sseq"] = ++link.sseq;
  std::string text = msg.dump();
  if (link.session != 0) sessions.at(link.session).conn->send_text(text);
  link.replay_bytes += text.size();
  link.replay.emplace_back(link.sseq, std::move(text));
  while (link.replay.size() > kReplayKept ||
         (link.replay.size() > 1 && link.replay_bytes > kReplayMaxBytes)) {
    link.replay_bytes -= link.replay.front().second.size();
    link.replay.pop_front();
  }
}

void SignalingService::Impl::apply(Actions& out) {
  if (router) router->route(clock(), out);  // sends to devices elsewhere are published
  for (Outgoing& o : out.send) send_to(o.to, std::move(o.message));
  for (auto& [call, types] : out.payload_types)
    deps.relay.set_payload_types(call, std::move(types));
  for (CallRecord& r : out.ended) {
    sampler.forget(r.id);
    // Relay-relay calls count each packet at both allocations (the sender's towards its
    // peer, the receiver's towards its client): the larger figure is the direction's bytes.
    const CallTraffic t = deps.relay.traffic(r.id, r.caller, r.callee);
    r.bytes_caller_to_callee = std::max(t.caller_to_peer, t.callee_to_client);
    r.bytes_callee_to_caller = std::max(t.callee_to_peer, t.caller_to_client);
    r.relay_allocations = t.allocations;
    deps.relay.end_call(r.id);
    log::info("call.ended",
              {{"call_id", r.id}, {"caller", r.caller}, {"callee", r.callee},
               {"outcome", to_string(r.outcome)}, {"end_reason", r.end_reason},
               {"duration_ms", r.ended - r.created}, {"setup_ms", r.setup_ms},
               {"bytes_caller_to_callee", r.bytes_caller_to_callee},
               {"bytes_callee_to_caller", r.bytes_callee_to_caller},
               {"relay_allocations", r.relay_allocations}},
              "call ", r.id, " ended: ", to_string(r.outcome), " (", r.end_reason, ")");
    deps.store(std::move(r));
  }
  for (const DeviceId& dev : out.drop) forget(dev);
  if (router) {
    bool changed = false;
    auto watched = router->watched(changed);
    if (changed) deps.cluster->watch(std::move(watched));
  }
  update_metrics();
  schedule();
}

void SignalingService::Impl::forget(const DeviceId& dev) {
  const auto it = links.find(dev);
  if (it == links.end()) return;
  {
    const std::lock_guard lock(pending_mutex);
    resume_tokens.erase(it->second.resume_token);
  }
  if (it->second.session != 0) {
    set_online(dev, it->second, false);
    if (auto s = sessions.find(it->second.session); s != sessions.end()) {
      s->second.conn->close(kCloseGraceOver, "grace period over");
      sessions.erase(s);
    }
  }
  links.erase(it);
}

void SignalingService::Impl::schedule() {
  // The relay sampling runs while there are active calls, on the same timer as the engine's
  // deadlines (whichever is first).
  if (engine.calls_in(CallState::kActive) == 0) {
    next_sample = 0;
  } else if (next_sample == 0) {
    next_sample = clock() + kRelaySampleMs;
  }
  TimeMs next = engine.next_deadline();
  if (next_sample != 0) next = std::min(next, next_sample);
  if (next == INT64_MAX || stopped) {
    timer.cancel();
    return;
  }
  const TimeMs delay = std::max<TimeMs>(0, next - clock());
  timer.expires_after(std::chrono::milliseconds(delay));
  timer.async_wait([this](const asio::error_code& ec) {
    if (ec) return;  // rescheduled or stopped
    run_due();
  });
}

void SignalingService::Impl::run_due() {
  if (stopped) return;
  const TimeMs now = clock();
  Actions out;
  engine.on_timer(now, out);
  if (next_sample != 0 && now >= next_sample) {
    sample_relay(now);
    next_sample = now + kRelaySampleMs;
  }
  apply(out);
}

void SignalingService::Impl::sample_relay(TimeMs now) {
  for (const ActiveCall& a : engine.active_calls()) {
    for (const RelayInterval& i : relay_intervals(a, now))
      engine.on_relay_interval(a.id, i.direction, i.kind, i.start, i.end, i.measure);
  }
}

std::vector<RelayInterval> SignalingService::Impl::relay_intervals(const ActiveCall& call,
                                                                   TimeMs now) {
  const RelayMedia media = deps.relay.media(call.id, call.caller, call.callee);
  return sampler.sample(call.id, call.connected, media, now);
}

void SignalingService::Impl::set_online(const DeviceId& dev, const Link& link, bool up) {
  if (deps.cluster != nullptr) deps.cluster->presence(link.tenant, link.user, dev, up);
  const std::lock_guard lock(online_mutex);
  auto& users = online[link.tenant];
  if (up) {
    ++users[link.user];
    return;
  }
  const auto it = users.find(link.user);
  if (it != users.end() && --it->second == 0) users.erase(it);
  if (users.empty()) online.erase(link.tenant);
}

void SignalingService::Impl::update_metrics() {
  if (deps.metrics == nullptr) return;
  deps.metrics->set_live(engine.calls_in(CallState::kRinging),
                         engine.calls_in(CallState::kConnecting),
                         engine.calls_in(CallState::kActive), owner.open_.load());
}

}  // namespace callrelay::calls
