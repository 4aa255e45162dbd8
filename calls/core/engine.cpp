// The call lifecycle: devices coming and going, invite, ringing, accept, decline, cancel,
// hang-up and every deadline (README, section Calls). Media negotiation is in engine_media.cpp.
#include <algorithm>
#include <climits>

#include "calls/core/engine_impl.hpp"

namespace callrelay::calls {

using nlohmann::json;

namespace {

/// How many recent invite acks a device keeps for resends (the SDK resends only what was
/// unacknowledged when its socket dropped: a handful).
constexpr size_t kInviteAcksKept = 16;

json media_json(const Media& m) { return {{"audio", m.audio}, {"video", m.video}}; }

}  // namespace

void remove_call_from_device(DeviceState& d, const std::string& call_id) {
  d.calls.erase(std::remove(d.calls.begin(), d.calls.end(), call_id), d.calls.end());
}

// --- public surface ------------------------------------------------------------------------

CallEngine::CallEngine(EngineConfig cfg, IceServerSource& ice, CallIdSource ids,
                       CallObserver* observer, FinalRelaySource* final_relay)
    : impl_(std::make_unique<Impl>(cfg, ice, std::move(ids), observer, final_relay)) {}

CallEngine::~CallEngine() = default;

bool CallEngine::device_connected(const DeviceId& device, const std::string& user,
                                  const std::string& tenant, TimeMs now, Actions& out) {
  Impl& s = *impl_;
  if (s.devices.count(device) != 0) return false;
  auto& list = s.by_user[Impl::user_key(tenant, user)];
  if (list.size() >= s.cfg.max_devices_per_user) {
    if (list.empty()) s.by_user.erase(Impl::user_key(tenant, user));
    return false;
  }
  list.push_back(device);
  DeviceState& d = s.devices[device];
  d.id = device;
  d.user = user;
  d.tenant = tenant;
  // A device that connects while the user's calls ring rings too.
  for (auto& [id, c] : s.calls) {
    if (c.state != CallState::kRinging || c.rec.tenant != tenant || c.rec.callee != user) continue;
    c.ringing.insert(device);
    d.calls.push_back(id);
    Impl::send(out, device,
               Impl::message("invite", c,
                             {{"from", c.rec.caller},
                              {"media", media_json(c.rec.media)},
                              {"ice_servers", s.ice.ice_servers(user, id, now)}}));
  }
  return true;
}

void CallEngine::device_lost(const DeviceId& device, TimeMs now, Actions& out) {
  Impl& s = *impl_;
  const auto it = s.devices.find(device);
  if (it == s.devices.end() || !it->second.online) return;
  DeviceState& d = it->second;
  d.online = false;
  d.grace_deadline = now + s.cfg.grace_ms;
  s.deadlines.emplace(d.grace_deadline, DeadlineKind::kDevice, device);
  for (const std::string& id : d.calls) {
    Call& c = s.calls.at(id);
    if (!s.is_participant(c, device) || c.rec.answered_device.empty()) continue;
    Impl::send(out, s.other_device(c, device), Impl::message("peer-reconnecting", c));
  }
}

bool CallEngine::device_resumed(const DeviceId& device, TimeMs /*now*/, Actions& out) {
  Impl& s = *impl_;
  const auto it = s.devices.find(device);
  if (it == s.devices.end() || it->second.online) return false;
  DeviceState& d = it->second;
  s.deadlines.erase(Deadline{d.grace_deadline, DeadlineKind::kDevice, device});
  d.online = true;
  d.grace_deadline = 0;
  bool in_call = false;
  for (const std::string& id : d.calls) {
    Call& c = s.calls.at(id);
    if (!s.is_participant(c, device)) continue;
    in_call = true;
    ++c.rec.reconnects;
    if (!c.rec.answered_device.empty())
      Impl::send(out, s.other_device(c, device), Impl::message("peer-resumed", c));
  }
  if (s.observer != nullptr) s.observer->on_reconnect(in_call);
  return true;
}

json CallEngine::device_calls(const DeviceId& device) const {
  json list = json::array();
  const auto it = impl_->devices.find(device);
  if (it == impl_->devices.end()) return list;
  for (const std::string& id : it->second.calls) {
    const Call& c = impl_->calls.at(id);
    const bool caller = c.rec.caller_device == device;
    list.push_back({{"call", id},
                    {"state", to_string(c.state)},
                    {"role", caller ? "caller" : "callee"},
                    {"peer", caller ? c.rec.callee : c.rec.caller},
                    {"media", media_json(c.rec.media)}});
  }
  return list;
}

void CallEngine::on_message(const DeviceId& device, const ClientMessage& m, TimeMs now,
                            Actions& out) {
  Impl& s = *impl_;
  const auto dit = s.devices.find(device);
  if (dit == s.devices.end()) return;  // the service only passes known devices
  DeviceState& d = dit->second;
  if (m.seq <= d.last_seq) {
    // A resend after a reconnect: answer as before, do nothing again.
    std::string call = m.call;
    for (const auto& [seq, id] : d.invite_acks)
      if (seq == m.seq) call = id;
    s.ack(d, m, out, call, true);
    s.note(m.type, "duplicate");
    return;
  }
  d.last_seq = m.seq;
  if (m.type == ClientType::kInvite) {
    s.invite(d, m, now, out);
    return;
  }
  const auto cit = s.calls.find(m.call);
  if (cit == s.calls.end() || cit->second.rec.tenant != d.tenant) {
    s.error(d, m, "unknown-call", "call", "no live call with this id", out);
    return;
  }
  Call& c = cit->second;
  switch (m.type) {
    case ClientType::kRinging: s.ringing(d, c, m, out); break;
    case ClientType::kAccept: s.accept(d, c, m, now, out); break;
    case ClientType::kDecline: s.decline(d, c, m, now, out); break;
    case ClientType::kCancel: s.cancel(d, c, m, now, out); break;
    case ClientType::kHangup: s.hangup(d, c, m, now, out); break;
    case ClientType::kOffer: s.offer(d, c, m, out); break;
    case ClientType::kAnswer: s.answer(d, c, m, out); break;
    case ClientType::kCandidate: s.candidate(d, c, m, out); break;
    case ClientType::kIceRestart: s.ice_restart(d, c, m, out); break;
    case ClientType::kConnected: s.connected(d, c, m, now, out); break;
    case ClientType::kStats: s.stats(d, c, m, now, out); break;
    case ClientType::kMedia: s.media(d, c, m, now, out); break;
    case ClientType::kInvite: break;  // handled above
  }
}

TimeMs CallEngine::on_timer(TimeMs now, Actions& out) {
  Impl& s = *impl_;
  while (!s.deadlines.empty() && std::get<0>(*s.deadlines.begin()) <= now) {
    const auto [when, kind, id] = *s.deadlines.begin();
    s.deadlines.erase(s.deadlines.begin());
    if (kind == DeadlineKind::kDevice) {
      s.forget_device(id, now, out);
    } else if (const auto it = s.calls.find(id); it != s.calls.end()) {
      s.on_call_deadline(it->second, now, out);
    }
  }
  return next_deadline();
}

TimeMs CallEngine::next_deadline() const {
  return impl_->deadlines.empty() ? INT64_MAX : std::get<0>(*impl_->deadlines.begin());
}

void CallEngine::shutdown(TimeMs now, Actions& out) {
  Impl& s = *impl_;
  std::vector<std::string> ids;
  for (const auto& [id, c] : s.calls) ids.push_back(id);
  for (const auto& id : ids) {
    Call& c = s.calls.at(id);
    const Outcome o = c.state == CallState::kActive ? Outcome::kCompleted : Outcome::kFailed;
    s.end_call(c, o, "shutdown", Party::kServer, now, out);
  }
}

size_t CallEngine::calls_in(CallState st) const {
  return impl_->state_counts[static_cast<size_t>(st)];
}

size_t CallEngine::device_count() const { return impl_->devices.size(); }

void CallEngine::set_busy_elsewhere(BusyElsewhere f) { impl_->busy_elsewhere = std::move(f); }

// --- lifecycle -----------------------------------------------------------------------------

void CallEngine::Impl::invite(DeviceState& d, const ClientMessage& m, TimeMs now, Actions& out) {
  if (m.to == d.user) {
    error(d, m, "invalid", "payload.to", "a user cannot call themselves", out);
    return;
  }
  if (d.calls.size() >= cfg.max_calls_per_device) {
    error(d, m, "unavailable", "",
          "this device takes part in " + std::to_string(d.calls.size()) +
              " live calls already (calls.max_calls_per_device)",
          out);
    return;
  }
  const std::string id = ids();
  Call& c = calls[id];
  c.rec.id = id;
  c.rec.caller = d.user;
  c.rec.callee = m.to;
  c.rec.tenant = d.tenant;
  c.rec.caller_device = d.id;
  c.rec.media = m.media;
  c.rec.created = now;
  ++state_counts[static_cast<size_t>(CallState::kRinging)];
  d.calls.push_back(id);
  d.invite_acks.emplace_back(m.seq, id);
  if (d.invite_acks.size() > kInviteAcksKept) d.invite_acks.pop_front();
  ack(d, m, out, id);
  note(m.type, "ok");
  if (observer != nullptr) observer->on_call_started(c.rec);

  if (!cfg.call_waiting && callee_busy(d.tenant, m.to)) {
    end_call(c, Outcome::kBusy, "callee-busy", Party::kServer, now, out);
    return;
  }
  set_deadline(c, now + cfg.ring_timeout_ms);
  const auto users = by_user.find(user_key(d.tenant, m.to));
  if (users == by_user.end()) return;  // rings when a device of the callee connects
  for (const DeviceId& dev : users->second) {
    c.ringing.insert(dev);
    devices.at(dev).calls.push_back(id);
    send(out, dev,
         message("invite", c,
                 {{"from", c.rec.caller},
                  {"media", media_json(c.rec.media)},
                  {"ice_servers", ice.ice_servers(m.to, id, now)}}));
  }
}

bool CallEngine::Impl::callee_busy(std::string_view tenant, std::string_view user) const {
  const auto users = by_user.find(user_key(tenant, user));
  if (users == by_user.end()) return false;
  for (const DeviceId& dev : users->second) {
    for (const std::string& id : devices.at(dev).calls) {
      const Call& c = calls.at(id);
      if ((c.state == CallState::kConnecting || c.state == CallState::kActive) &&
          is_participant(c, dev))
        return true;
    }
  }
  return busy_elsewhere && busy_elsewhere(tenant, user);
}

void CallEngine::Impl::ringing(DeviceState& d, Call& c, const ClientMessage& m, Actions& out) {
  if (c.ringing.count(d.id) == 0) {
    error(d, m, is_participant(c, d.id) ? "wrong-state" : "not-participant", "call",
          "only a ringing callee device reports ringing", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  if (c.ringing_reported) return;
  c.ringing_reported = true;
  send(out, c.rec.caller_device, message("ringing", c));
}

void CallEngine::Impl::accept(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                              Actions& out) {
  if (c.state != CallState::kRinging) {
    const bool callee = d.user == c.rec.callee;
    error(d, m, callee ? "wrong-state" : "not-participant", "call",
          callee ? "the call was answered already or is over" : "only the callee accepts", out);
    return;
  }
  if (c.ringing.count(d.id) == 0) {
    error(d, m, "not-participant", "call", "only a ringing callee device accepts", out);
    return;
  }
  // Exactly one accept: the first one to arrive wins; the state changes before anything else.
  c.rec.answered_device = d.id;
  c.rec.answered = now;
  c.callee_media = m.media;
  set_state(c, CallState::kConnecting);
  set_deadline(c, now + cfg.connect_timeout_ms);
  ack(d, m, out);
  note(m.type, "ok");
  if (observer != nullptr) observer->on_call_answered(c.rec);
  for (const DeviceId& other : c.ringing) {
    if (other == d.id) continue;
    remove_call_from_device(devices.at(other), c.rec.id);
    send(out, other, message("answered-elsewhere", c));
  }
  c.ringing.clear();
  send(out, c.rec.caller_device,
       message("accepted", c,
               {{"media", media_json(m.media)},
                {"device", d.id},
                {"ice_servers", ice.ice_servers(c.rec.caller, c.rec.id, now)}}));
  const json state = message("state", c, {{"state", "connecting"}});
  send(out, c.rec.caller_device, state);
  send(out, d.id, state);
}

void CallEngine::Impl::decline(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                               Actions& out) {
  if (c.state != CallState::kRinging || c.ringing.count(d.id) == 0) {
    const bool ours = d.user == c.rec.callee;
    error(d, m, ours ? "wrong-state" : "not-participant", "call",
          ours ? "only a ringing call can be declined" : "only the callee declines", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  end_call(c, Outcome::kDeclined, m.reason.empty() ? "declined" : m.reason, Party::kCallee, now,
           out);
}

void CallEngine::Impl::cancel(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                              Actions& out) {
  if (d.id != c.rec.caller_device) {
    error(d, m, "not-participant", "call", "only the caller's device cancels", out);
    return;
  }
  if (c.state != CallState::kRinging) {
    error(d, m, "wrong-state", "type", "the call was answered: hang up instead", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  end_call(c, Outcome::kCancelled, "cancelled", Party::kCaller, now, out);
}

void CallEngine::Impl::hangup(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                              Actions& out) {
  if (c.state == CallState::kRinging) {
    // Before an answer a hang-up is what the side can do: the caller cancels, a ringing
    // callee device declines.
    if (d.id == c.rec.caller_device) return cancel(d, c, m, now, out);
    if (c.ringing.count(d.id) != 0) return decline(d, c, m, now, out);
  }
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  const Party by = d.id == c.rec.caller_device ? Party::kCaller : Party::kCallee;
  const std::string reason = m.reason.empty() ? "user-hangup" : m.reason;
  Outcome outcome = Outcome::kCompleted;
  if (c.state == CallState::kConnecting)
    outcome = reason == "user-hangup" ? Outcome::kCancelled : Outcome::kFailed;
  end_call(c, outcome, reason, by, now, out);
}

void CallEngine::Impl::on_call_deadline(Call& c, TimeMs now, Actions& out) {
  c.deadline = 0;  // already taken out of the set
  switch (c.state) {
    case CallState::kRinging:
      end_call(c, Outcome::kMissed, "ring-timeout", Party::kServer, now, out);
      break;
    case CallState::kConnecting:
      end_call(c, Outcome::kFailed, "connect-timeout", Party::kServer, now, out);
      break;
    case CallState::kActive:
      end_call(c, Outcome::kCompleted, "max-duration", Party::kServer, now, out);
      break;
    case CallState::kEnded:
      break;
  }
}

void CallEngine::Impl::forget_device(const DeviceId& id, TimeMs now, Actions& out) {
  const auto it = devices.find(id);
  if (it == devices.end()) return;
  // Calls it takes part in end; calls where it only rings lose one ringing device.
  const std::vector<std::string> live = it->second.calls;
  for (const std::string& call_id : live) {
    const auto cit = calls.find(call_id);
    if (cit == calls.end()) continue;
    Call& c = cit->second;
    if (is_participant(c, id)) {
      const bool caller = id == c.rec.caller_device;
      end_call(c, Outcome::kPeerDisconnected,
               caller ? "caller-disconnected" : "callee-disconnected", Party::kServer, now, out);
    } else {
      c.ringing.erase(id);
    }
  }
  auto& list = by_user[user_key(it->second.tenant, it->second.user)];
  list.erase(std::remove(list.begin(), list.end(), id), list.end());
  if (list.empty()) by_user.erase(user_key(it->second.tenant, it->second.user));
  devices.erase(it);
  out.drop.push_back(id);
}

void CallEngine::Impl::end_call(Call& c, Outcome outcome, std::string reason, Party by,
                                TimeMs now, Actions& out) {
  // Every way an active call ends passes here: the media since the last relay sample is
  // added before the record's quality is taken.
  if (c.state == CallState::kActive) final_relay_intervals(c, now);
  set_deadline(c, 0);
  set_state(c, CallState::kEnded);
  c.rec.outcome = outcome;
  c.rec.end_reason = std::move(reason);
  c.rec.ended_by = by;
  c.rec.ended = now;
  c.rec.quality = c.quality.result();
  const json ended = message("ended", c,
                             {{"outcome", to_string(outcome)},
                              {"reason", c.rec.end_reason},
                              {"by", to_string(by)}});
  std::vector<DeviceId> told{c.rec.caller_device};
  if (!c.rec.answered_device.empty()) told.push_back(c.rec.answered_device);
  told.insert(told.end(), c.ringing.begin(), c.ringing.end());
  for (const DeviceId& dev : told) {
    const auto it = devices.find(dev);
    if (it == devices.end()) continue;
    remove_call_from_device(it->second, c.rec.id);
    send(out, dev, ended);
  }
  if (observer != nullptr) observer->on_call_ended(c.rec);
  out.ended.push_back(std::move(c.rec));
  calls.erase(out.ended.back().id);
}

void CallEngine::Impl::set_state(Call& c, CallState st) {
  --state_counts[static_cast<size_t>(c.state)];
  c.state = st;
  if (st != CallState::kEnded) ++state_counts[static_cast<size_t>(st)];
}

void CallEngine::Impl::set_deadline(Call& c, TimeMs t) {
  if (c.deadline != 0) deadlines.erase(Deadline{c.deadline, DeadlineKind::kCall, c.rec.id});
  c.deadline = t;
  if (t != 0) deadlines.emplace(t, DeadlineKind::kCall, c.rec.id);
}

// --- helpers -------------------------------------------------------------------------------

json CallEngine::Impl::message(std::string_view type, const Call& c, json payload) {
  json msg = {{"type", type}, {"call", c.rec.id}};
  if (!payload.is_null()) msg["payload"] = std::move(payload);
  return msg;
}

void CallEngine::Impl::ack(const DeviceState& d, const ClientMessage& m, Actions& out,
                           std::string_view call, bool duplicate) {
  json msg = {{"type", "ack"}, {"seq", m.seq}};
  if (!call.empty()) msg["call"] = call;
  if (duplicate) msg["duplicate"] = true;
  send(out, d.id, std::move(msg));
}

void CallEngine::Impl::error(const DeviceState& d, const ClientMessage& m, std::string_view code,
                             std::string_view field, std::string_view reason, Actions& out) {
  json msg = {{"type", "error"}, {"seq", m.seq}, {"code", code}, {"reason", reason}};
  if (!m.call.empty()) msg["call"] = m.call;
  if (!field.empty()) msg["field"] = field;
  send(out, d.id, std::move(msg));
  note(m.type, code);
}

}  // namespace callrelay::calls
