// Device sessions of the signaling service, on its thread: a WebSocket opened (new device or
// resumed within the grace period), the welcome, each message (rate limit, parse, engine or
// another instance), a close, what is sent (sseq, the replay buffer) and the engine's actions.
#include <algorithm>

#include "base/log.hpp"
#include "calls/signaling/signaling_impl.hpp"

namespace callrelay::calls {

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

}  // namespace callrelay::calls
