#include "calls/signaling/signaling_service.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <future>

#include "base/log.hpp"
#include "calls/signaling/signaling_impl.hpp"
#include "http/codec.hpp"

namespace callrelay::calls {

namespace signaling_detail {

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

}  // namespace signaling_detail

namespace {

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
void SignalingService::Impl::schedule() {
  // The relay sampling runs while there are active calls, on the same timer as the engine's
  // deadlines (whichever is first).
  if (engine.calls_in(CallState::kActive) == 0) {
    next_sample = 0;
  } else if (next_sample == 0) {
    next_sample = clock() + kRelaySampleMs;
  }
  // With other instances, the callees of ringing calls are looked up again now and then: a
  // device that came online elsewhere after the invite's lookup rings too.
  if (!router || engine.calls_in(CallState::kRinging) == 0) {
    next_recheck = 0;
  } else if (next_recheck == 0) {
    next_recheck = clock() + kRecheckMs;
  }
  TimeMs next = engine.next_deadline();
  if (next_sample != 0) next = std::min(next, next_sample);
  if (next_recheck != 0) next = std::min(next, next_recheck);
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
  if (next_recheck != 0 && now >= next_recheck) {
    router->recheck_ringing(now, out);
    next_recheck = now + kRecheckMs;
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
