// Messages between instances are JSON objects: {"k": kind, "from": instance, "nonce":
// incarnation, "dev": device, ...}. Kinds: "d" (the owner's engine sends `msg` to a device of
// the receiving instance), "m" (a device's client message `text`, for the call's owner),
// "lost" / "resumed" (the device's socket dropped / came back), "gone" (no such device here).
// They come from other instances of the same cluster, but are still parsed without trusting a
// field: a malformed one is counted and dropped.
#include "calls/cluster/cluster_router.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace callrelay::calls {

using nlohmann::json;

namespace {

constexpr size_t kMaxIdBytes = 256;
/// Arrays and objects an envelope may nest: a client message nests at most 8 deep
/// (messages.cpp) and the envelope and an engine message add a few levels. Deeper ones are
/// refused, since copying or serializing a JSON value recurses once per level: a message of
/// kMaxEnvelopeBytes of brackets would overflow the stack when the service sends it.
constexpr int kMaxEnvelopeDepth = 32;

/// The envelope in `payload`, or a discarded value when it is too large, too deep or not JSON.
json parse_envelope(const std::string& payload) {
  if (payload.size() > kMaxEnvelopeBytes) return json(json::value_t::discarded);
  bool too_deep = false;
  json env = json::parse(
      payload,
      [&](int depth, json::parse_event_t, json&) {
        too_deep = too_deep || depth > kMaxEnvelopeDepth;
        return !too_deep;  // nothing more is built once it is refused
      },
      /*allow_exceptions=*/false);
  if (too_deep) return json(json::value_t::discarded);
  return env;
}

/// A non-empty string field of at most kMaxIdBytes, or "".
std::string id_field(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  const auto& s = it->get_ref<const std::string&>();
  return s.size() <= kMaxIdBytes ? s : std::string();
}

}  // namespace

ClusterRouter::ClusterRouter(ClusterSeam& seam, CallEngine& engine, MessageLimits limits,
                             std::function<bool(const DeviceId&)> is_local)
    : seam_(seam), engine_(engine), limits_(limits), is_local_(std::move(is_local)) {
  engine_.set_busy_elsewhere([this](std::string_view tenant, std::string_view user) {
    return !busy_now_.empty() && busy_now_ == std::string(tenant) + '\n' + std::string(user);
  });
}

void ClusterRouter::publish(const std::string& instance, json envelope) {
  envelope["from"] = seam_.instance();
  envelope["nonce"] = seam_.nonce();
  seam_.publish(instance, envelope.dump(-1, ' ', false, json::error_handler_t::replace));
  ++counters_.forwarded;
}

void ClusterRouter::before_invite(const std::string& tenant, const std::string& callee, TimeMs now,
                                  Actions& out) {
  // Unreachable presence: the invite rings this instance's devices only (and the caller
  // hears `missed` if none answers), rather than waiting on the store. Nor is the callee busy
  // elsewhere then (fail open: the call rings).
  busy_now_.clear();
  const auto found = seam_.callee(tenant, callee);
  if (!found) return;
  // Busy elsewhere: the engine ends the call `busy` unless calls.call_waiting is on, in which
  // case the devices below ring as usual.
  if (!found->busy_on.empty()) busy_now_ = tenant + '\n' + callee;
  for (const RemoteDevice& rd : found->devices) add_remote(tenant, callee, rd, now, out);
}

void ClusterRouter::add_remote(const std::string& tenant, const std::string& user,
                               const RemoteDevice& rd, TimeMs now, Actions& out) {
  if (rd.instance == seam_.instance() || rd.device.empty() || is_local_(rd.device)) return;
  learn(rd.instance, rd.nonce, now, out);
  const auto it = virtual_.find(rd.device);
  if (it != virtual_.end()) {
    if (it->second.host != rd.instance) return;
    // A known device is one of the callee's devices in the engine, online or in its grace
    // period: the engine's invites ring it whether or not a lookup saw it.
    if (!it->second.online) it->second.online = engine_.device_resumed(rd.device, now, out);
  } else if (engine_.device_connected(rd.device, user, tenant, now, out)) {
    virtual_.emplace(rd.device, Virtual{rd.instance, user, tenant, true});
  }
  touched_.insert(rd.device);
}

void ClusterRouter::recheck_ringing(TimeMs now, Actions& out) {
  if (engine_.calls_in(CallState::kRinging) == 0) return;
  // The callees of this engine's ringing calls, each once, at most kRecheckUsers per pass (the
  // lookup is one pipelined round trip on the signaling thread); the next pass starts after
  // the last user looked at, so that every callee is looked at in turn however many ring.
  const auto ringing = engine_.ringing_callees();
  std::vector<std::pair<std::string, std::string>> users;
  auto it = ringing.upper_bound(recheck_after_);
  while (users.size() < kRecheckUsers && users.size() < ringing.size()) {
    if (it == ringing.end()) it = ringing.begin();
    users.push_back(*it++);
  }
  recheck_after_ = users.back();
  if (users.size() == ringing.size()) recheck_after_ = {};
  const auto found = seam_.callees(users);
  if (!found || found->size() != users.size()) return;  // the store is away: next pass
  for (size_t i = 0; i < users.size(); ++i) {
    for (const RemoteDevice& rd : (*found)[i].devices)
      add_remote(users[i].first, users[i].second, rd, now, out);
  }
}

bool ClusterRouter::forward(const DeviceId& device, const ClientMessage& m,
                            const std::string& text) {
  if (m.type == ClientType::kInvite) return false;
  const auto it = remote_calls_.find(m.call);
  if (it == remote_calls_.end() || it->second.devices.count(device) == 0) return false;
  publish(it->second.owner, {{"k", "m"}, {"dev", device}, {"text", text}});
  return true;
}

void ClusterRouter::route(TimeMs now, Actions& out) {
  busy_now_.clear();  // the invite it was looked up for is handled
  mark_busy(out);
  std::vector<Outgoing> local;
  const auto split = [&](std::vector<Outgoing>& sends) {
    for (Outgoing& o : sends) {
      const auto it = virtual_.find(o.to);
      if (it == virtual_.end()) {
        local.push_back(std::move(o));
        continue;
      }
      publish(it->second.host, {{"k", "d"}, {"dev", o.to}, {"msg", std::move(o.message)}});
      touched_.insert(o.to);
    }
  };
  split(out.send);
  for (const DeviceId& dev : out.drop) {
    virtual_.erase(dev);
    touched_.erase(dev);
    for (auto it = remote_calls_.begin(); it != remote_calls_.end();) {
      it->second.devices.erase(dev);
      it = it->second.devices.empty() ? remote_calls_.erase(it) : std::next(it);
    }
  }
  // A virtual device without calls goes offline here: it stays known for the grace period
  // (a new invite brings it back) and is then forgotten, as any device is.
  Actions idle;
  for (const DeviceId& dev : touched_) {
    const auto it = virtual_.find(dev);
    if (it == virtual_.end() || !it->second.online || !engine_.device_calls(dev).empty()) continue;
    engine_.device_lost(dev, now, idle);
    it->second.online = false;
  }
  touched_.clear();
  split(idle.send);
  out.send = std::move(local);
}

void ClusterRouter::mark_busy(const Actions& out) {
  // A call becomes connecting or active from ringing (the count grows) and leaves by ending
  // (its record is in `out`): when neither shows, the marked set is unchanged.
  const size_t engaged =
      engine_.calls_in(CallState::kConnecting) + engine_.calls_in(CallState::kActive);
  if (engaged == engaged_ && out.ended.empty()) return;
  engaged_ = engaged;
  std::map<std::pair<std::string, std::string>, std::string> now_marked;
  if (engaged != 0) {
    for (const LiveCall& c : engine_.live_calls()) {
      if (c.state != CallState::kConnecting && c.state != CallState::kActive) continue;
      now_marked.emplace(std::pair{c.tenant, c.caller}, c.id);
      now_marked.emplace(std::pair{c.tenant, c.callee}, c.id);
    }
  }
  for (const auto& [who, call] : marked_) {
    if (now_marked.count(who) == 0) seam_.busy(who.first, who.second, call, false);
  }
  for (const auto& [who, call] : now_marked) {
    const auto it = marked_.find(who);
    if (it == marked_.end() || it->second != call) seam_.busy(who.first, who.second, call, true);
  }
  marked_ = std::move(now_marked);
}

void ClusterRouter::on_envelope(const std::string& payload, TimeMs now, Actions& out) {
  json env = parse_envelope(payload);
  const std::string kind = env.is_object() ? id_field(env, "k") : std::string();
  const std::string from = kind.empty() ? std::string() : id_field(env, "from");
  const std::string nonce = from.empty() ? std::string() : id_field(env, "nonce");
  const DeviceId dev = nonce.empty() ? std::string() : id_field(env, "dev");
  if (dev.empty() || from == seam_.instance()) {
    ++counters_.refused;
    return;
  }
  learn(from, nonce, now, out);
  if (kind == "d") {
    const auto msg = env.find("msg");
    if (msg == env.end() || !msg->is_object() || !msg->contains("type")) {
      ++counters_.refused;
      return;
    }
    ++counters_.received;
    deliver(from, dev, std::move(*msg), out);
    return;
  }
  if (kind == "m") {
    const auto text = env.find("text");
    if (text == env.end() || !text->is_string()) {
      ++counters_.refused;
      return;
    }
    ++counters_.received;
    from_device(from, dev, text->get_ref<const std::string&>(), now, out);
    return;
  }
  const auto it = virtual_.find(dev);
  if (it == virtual_.end() || it->second.host != from) {
    ++counters_.refused;
    return;
  }
  ++counters_.received;
  if ((kind == "lost" || kind == "gone") && it->second.online) {
    engine_.device_lost(dev, now, out);
    it->second.online = false;
  } else if (kind == "resumed" && !it->second.online) {
    it->second.online = engine_.device_resumed(dev, now, out);
  }
}

void ClusterRouter::deliver(const std::string& from, const DeviceId& device, json msg,
                            Actions& out) {
  if (!is_local_(device)) {
    // Forgotten here (its grace ran out): the owner's engine lets it go too.
    publish(from, {{"k", "gone"}, {"dev", device}});
    return;
  }
  msg.erase("sseq");  // numbered by this instance, in the device's own stream
  const std::string type = msg["type"].is_string() ? msg["type"].get<std::string>() : "";
  const std::string call = msg.contains("call") && msg["call"].is_string()
                               ? msg["call"].get<std::string>()
                               : std::string();
  if (!call.empty() && type != "ack" && type != "error") {
    if (type == "ended" || type == "answered-elsewhere") {
      if (auto it = remote_calls_.find(call); it != remote_calls_.end()) {
        it->second.devices.erase(device);
        if (it->second.devices.empty()) remote_calls_.erase(it);
      }
    } else {
      RemoteCall& rc = remote_calls_[call];
      rc.owner = from;
      rc.devices.insert(device);
    }
  }
  out.send.push_back(Outgoing{device, std::move(msg)});
}

void ClusterRouter::from_device(const std::string& from, const DeviceId& device,
                                const std::string& text, TimeMs now, Actions& out) {
  auto parsed = parse_client_message(text, limits_);
  const auto it = virtual_.find(device);
  if (it == virtual_.end() || it->second.host != from) {
    // Not a device of this instance's calls (the call ended, or this instance restarted).
    json err = {
        {"type", "error"}, {"code", "unknown-call"}, {"reason", "no live call with this id"}};
    if (const auto* m = std::get_if<ClientMessage>(&parsed)) {
      err["seq"] = m->seq;
      err["call"] = m->call;
    }
    publish(from, {{"k", "d"}, {"dev", device}, {"msg", std::move(err)}});
    return;
  }
  if (const auto* e = std::get_if<MessageError>(&parsed)) {
    json err = {{"type", "error"}, {"code", e->code}, {"reason", e->reason}};
    if (!e->field.empty()) err["field"] = e->field;
    if (e->seq) err["seq"] = *e->seq;
    if (!e->call.empty()) err["call"] = e->call;
    out.send.push_back(Outgoing{device, std::move(err)});
    return;
  }
  engine_.on_message(device, std::get<ClientMessage>(parsed), now, out);
  touched_.insert(device);
}

void ClusterRouter::learn(const std::string& instance, const std::string& nonce, TimeMs now,
                          Actions& out) {
  const auto it = nonces_.find(instance);
  if (it != nonces_.end() && it->second != nonce) instance_dead(instance, now, out);
  nonces_[instance] = nonce;
  missing_since_.erase(instance);
}

void ClusterRouter::on_instances(const std::vector<InstanceSeen>& seen, TimeMs now, Actions& out) {
  for (const InstanceSeen& s : seen) {
    const auto known = nonces_.find(s.instance);
    if (known == nonces_.end()) continue;
    if (s.nonce == known->second) {
      missing_since_.erase(s.instance);
    } else if (!s.nonce.empty()) {
      instance_dead(s.instance, now, out);  // restarted: its calls are gone with its memory
    } else if (const auto [it, first] = missing_since_.emplace(s.instance, now);
               !first && now - it->second >= kDeadAfterMs) {
      instance_dead(s.instance, now, out);
    }
  }
}

void ClusterRouter::instance_dead(const std::string& instance, TimeMs now, Actions& out) {
  ++counters_.instances_lost;
  size_t devices = 0, calls = 0;
  for (auto& [dev, v] : virtual_) {
    if (v.host != instance || !v.online) continue;
    engine_.device_lost(dev, now, out);
    v.online = false;
    ++devices;
  }
  for (auto it = remote_calls_.begin(); it != remote_calls_.end();) {
    if (it->second.owner != instance) {
      ++it;
      continue;
    }
    const json ended = {{"type", "ended"},
                        {"call", it->first},
                        {"payload",
                         {{"outcome", to_string(Outcome::kPeerDisconnected)},
                          {"reason", "instance-lost"},
                          {"by", to_string(Party::kServer)}}}};
    for (const DeviceId& dev : it->second.devices) out.send.push_back(Outgoing{dev, ended});
    ++calls;
    it = remote_calls_.erase(it);
  }
  nonces_.erase(instance);
  missing_since_.erase(instance);
  log::warn("cluster.instance_lost",
            {{"instance", instance}, {"devices", devices}, {"calls_ended", calls}},
            "cluster: instance ", instance, " is gone: ", devices,
            " of its devices lose their socket here, ", calls, " calls it owned end");
}

void ClusterRouter::tell_owners(const DeviceId& device, const char* kind) {
  std::set<std::string> owners;
  for (const auto& [id, rc] : remote_calls_)
    if (rc.devices.count(device) != 0) owners.insert(rc.owner);
  for (const std::string& owner : owners) publish(owner, {{"k", kind}, {"dev", device}});
}

void ClusterRouter::local_lost(const DeviceId& device) { tell_owners(device, "lost"); }
void ClusterRouter::local_resumed(const DeviceId& device) { tell_owners(device, "resumed"); }

std::vector<std::string> ClusterRouter::watched(bool& changed) {
  std::set<std::string> set;
  for (const auto& [dev, v] : virtual_) set.insert(v.host);
  for (const auto& [id, rc] : remote_calls_) set.insert(rc.owner);
  std::vector<std::string> list(set.begin(), set.end());
  changed = list != last_watched_;
  if (changed) last_watched_ = list;
  return list;
}

}  // namespace callrelay::calls
