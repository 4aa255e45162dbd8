// Media negotiation between the call's two devices: offer, answer, ICE candidates (held until
// the receiving side can use them), ICE restarts and the connected reports that make a call
// active. JSEP (RFC 8829) lets either side offer; here only the caller does, so two offers can
// never cross (no glare) and no rollback is ever needed.
#include <algorithm>

#include "calls/core/engine_impl.hpp"

namespace callrelay::calls {

using nlohmann::json;

namespace {

bool negotiating(const Call& c) {
  return c.state == CallState::kConnecting || c.state == CallState::kActive;
}

json candidate_payload(const IceCandidate& ic) {
  json p = {{"candidate", ic.candidate}};
  p["sdpMid"] = ic.sdp_mid ? json(*ic.sdp_mid) : json(nullptr);
  p["sdpMLineIndex"] = ic.sdp_mline_index ? json(*ic.sdp_mline_index) : json(nullptr);
  if (ic.username_fragment) p["usernameFragment"] = *ic.username_fragment;
  return p;
}

}  // namespace

void CallEngine::Impl::offer(DeviceState& d, Call& c, const ClientMessage& m, Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (d.id != c.rec.caller_device) {
    error(d, m, "wrong-state", "type",
          "only the caller offers; ask for an ICE restart with ice-restart", out);
    return;
  }
  if (!negotiating(c)) {
    error(d, m, "wrong-state", "call", "offers are sent after the callee accepted", out);
    return;
  }
  if (c.offer_pending) {
    error(d, m, "wrong-state", "call", "the previous offer has not been answered yet", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  if (m.restart) {
    ++c.rec.ice_restarts;
    if (observer != nullptr) observer->on_ice_restart();
  }
  c.offer_pending = true;
  c.offer_seen = true;
  c.offer_types = sdp_payload_types(m.sdp);
  payload_types(c, out);
  send(out, c.rec.answered_device,
       message("offer", c, {{"sdp", m.sdp}, {"restart", m.restart}}));
  // Candidates the caller sent before its offer reached the callee, in order.
  for (json& held : c.held_for_callee)
    send(out, c.rec.answered_device, message("candidate", c, std::move(held)));
  c.held_for_callee.clear();
}

void CallEngine::Impl::answer(DeviceState& d, Call& c, const ClientMessage& m, Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (d.id != c.rec.answered_device) {
    error(d, m, "wrong-state", "type", "only the callee answers", out);
    return;
  }
  if (!c.offer_pending) {
    error(d, m, "wrong-state", "call", "there is no offer to answer", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  c.offer_pending = false;
  c.answer_seen = true;
  c.answer_types = sdp_payload_types(m.sdp);
  payload_types(c, out);
  send(out, c.rec.caller_device, message("answer", c, {{"sdp", m.sdp}}));
  for (json& held : c.held_for_caller)
    send(out, c.rec.caller_device, message("candidate", c, std::move(held)));
  c.held_for_caller.clear();
}

void CallEngine::Impl::candidate(DeviceState& d, Call& c, const ClientMessage& m, Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (!negotiating(c)) {
    error(d, m, "wrong-state", "call", "candidates are sent after the callee accepted", out);
    return;
  }
  const bool from_caller = d.id == c.rec.caller_device;
  // The callee can use the caller's candidates once it has the offer; the caller can use the
  // callee's once it has the answer. Until then the server holds them.
  const bool usable = from_caller ? c.offer_seen : c.answer_seen;
  if (!usable) {
    auto& held = from_caller ? c.held_for_callee : c.held_for_caller;
    if (held.size() >= cfg.max_held_candidates) {
      error(d, m, "rate-limited", "payload.candidate",
            "too many candidates before the " + std::string(from_caller ? "offer" : "answer") +
                " (at most " + std::to_string(cfg.max_held_candidates) + " are held)",
            out);
      return;
    }
    held.push_back(candidate_payload(m.candidate));
  } else {
    send(out, other_device(c, d.id), message("candidate", c, candidate_payload(m.candidate)));
  }
  ack(d, m, out);
  note(m.type, "ok");
}

void CallEngine::Impl::ice_restart(DeviceState& d, Call& c, const ClientMessage& m,
                                   Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (d.id != c.rec.answered_device || !negotiating(c)) {
    error(d, m, "wrong-state", "type",
          d.id == c.rec.caller_device ? "the caller restarts ICE with an offer (restart: true)"
                                      : "no call to restart",
          out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  send(out, c.rec.caller_device, message("ice-restart", c));
}

void CallEngine::Impl::payload_types(const Call& c, Actions& out) {
  // RFC 8843 section 9.1: within a BUNDLE group a payload type means one thing, so the offer's
  // and the answer's can be merged by number (the offer's wins should they ever differ).
  std::vector<RtpPayloadType> types = c.offer_types;
  for (const RtpPayloadType& t : c.answer_types) {
    const bool known = std::any_of(types.begin(), types.end(),
                                   [&](const RtpPayloadType& o) { return o.pt == t.pt; });
    if (!known) types.push_back(t);
  }
  out.payload_types.emplace_back(c.rec.id, std::move(types));
}

void CallEngine::Impl::connected(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now,
                                 Actions& out) {
  if (!is_participant(c, d.id)) {
    error(d, m, "not-participant", "call", "this device is not in the call", out);
    return;
  }
  if (!negotiating(c)) {
    error(d, m, "wrong-state", "call", "the call is not connecting", out);
    return;
  }
  ack(d, m, out);
  note(m.type, "ok");
  (d.id == c.rec.caller_device ? c.caller_connected : c.callee_connected) = true;
  if (c.state != CallState::kConnecting || !c.caller_connected || !c.callee_connected) return;
  set_state(c, CallState::kActive);
  set_deadline(c, now + cfg.max_duration_ms);
  c.rec.connected = now;
  c.rec.setup_ms = now - c.rec.created;
  if (observer != nullptr) observer->on_call_connected(c.rec);
  const json active = message("state", c, {{"state", "active"}});
  send(out, c.rec.caller_device, active);
  send(out, c.rec.answered_device, active);
}

}  // namespace callrelay::calls
