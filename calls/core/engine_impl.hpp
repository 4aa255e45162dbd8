// Private to calls/core: the state behind CallEngine. The lifecycle (devices, invite, accept,
// decline, cancel, hang-up, deadlines) lives in engine.cpp, the media negotiation (offer,
// answer, candidates, ICE restart, connected) in engine_media.cpp, call quality (stats, media,
// relay intervals) in engine_quality.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "calls/core/engine.hpp"

namespace callrelay::calls {

/// One signaling connection of a user, kept through its grace period.
struct DeviceState {
  DeviceId id;
  std::string user;
  std::string tenant;
  bool online = true;
  TimeMs grace_deadline = 0;  ///< when offline: the device is forgotten at this time
  uint64_t last_seq = 0;      ///< highest client seq processed
  /// The call ids that recent invites created, by seq, to acknowledge a resent invite again.
  std::deque<std::pair<uint64_t, std::string>> invite_acks;
  /// Live calls the device takes part in: as the caller's device, the answering device, or a
  /// callee device that rings.
  std::vector<std::string> calls;
};

struct Call {
  CallRecord rec;
  CallState state = CallState::kRinging;
  TimeMs deadline = 0;
  Media callee_media;
  std::set<DeviceId> ringing;  ///< callee devices that got the invite and have not answered
  bool ringing_reported = false;  ///< the caller got `ringing`
  bool offer_pending = false;     ///< an offer was forwarded and waits for its answer
  bool offer_seen = false;        ///< the callee device got an offer (can use caller candidates)
  bool answer_seen = false;       ///< the caller device got an answer (can use callee candidates)
  bool caller_connected = false, callee_connected = false;
  std::vector<nlohmann::json> held_for_callee, held_for_caller;  ///< candidate payloads
  /// Payload types of the current offer and answer (their union goes to the relay).
  std::vector<RtpPayloadType> offer_types, answer_types;
  QualityTracker quality;
  /// The receiving client's latest interval per [direction][kind], until a relay interval
  /// is compared with it (each client interval is compared at most once).
  struct LatestClient {
    IntervalMeasure measure;
    TimeMs start = 0, end = 0;
    bool pending = false;  ///< not compared yet
  };
  std::array<std::array<LatestClient, 2>, 2> latest_client{};
};

/// Deadlines of calls and of offline devices in one ordered set, so the timer never scans.
enum class DeadlineKind : uint8_t { kCall, kDevice };
using Deadline = std::tuple<TimeMs, DeadlineKind, std::string>;

struct CallEngine::Impl {
  Impl(EngineConfig c, IceServerSource& i, CallIdSource s, CallObserver* o, FinalRelaySource* f)
      : cfg(c), ice(i), ids(std::move(s)), observer(o), final_relay(f) {}

  EngineConfig cfg;
  IceServerSource& ice;
  CallIdSource ids;
  CallObserver* observer;
  FinalRelaySource* final_relay;
  BusyElsewhere busy_elsewhere;

  std::unordered_map<DeviceId, DeviceState> devices;
  /// tenant + '\n' + user -> the user's devices (a user id never contains '\n').
  std::unordered_map<std::string, std::vector<DeviceId>> by_user;
  std::unordered_map<std::string, Call> calls;
  std::set<Deadline> deadlines;
  std::array<size_t, 4> state_counts{};  ///< live calls per CallState

  static std::string user_key(std::string_view tenant, std::string_view user) {
    return std::string(tenant) + '\n' + std::string(user);
  }

  // --- lifecycle (engine.cpp) ---
  void invite(DeviceState& d, const ClientMessage& m, TimeMs now, Actions& out);
  void ringing(DeviceState& d, Call& c, const ClientMessage& m, Actions& out);
  void accept(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  void decline(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  void cancel(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  void hangup(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  bool callee_busy(std::string_view tenant, std::string_view user) const;
  void end_call(Call& c, Outcome outcome, std::string reason, Party by, TimeMs now, Actions& out);
  void forget_device(const DeviceId& id, TimeMs now, Actions& out);
  void set_state(Call& c, CallState s);
  void set_deadline(Call& c, TimeMs t);
  void on_call_deadline(Call& c, TimeMs now, Actions& out);

  // --- media negotiation (engine_media.cpp) ---
  void offer(DeviceState& d, Call& c, const ClientMessage& m, Actions& out);
  void answer(DeviceState& d, Call& c, const ClientMessage& m, Actions& out);
  void candidate(DeviceState& d, Call& c, const ClientMessage& m, Actions& out);
  void ice_restart(DeviceState& d, Call& c, const ClientMessage& m, Actions& out);
  void connected(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  /// The union of the offer's and answer's payload types, for the relay.
  static void payload_types(const Call& c, Actions& out);

  // --- call quality (engine_quality.cpp) ---
  void stats(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  void media(DeviceState& d, Call& c, const ClientMessage& m, TimeMs now, Actions& out);
  /// `last`: the call's final, partial interval (compared only with a client interval of the
  /// same time).
  void relay_interval(Call& c, Direction dir, MediaKind kind, TimeMs start, TimeMs end,
                      const IntervalMeasure& measure, bool last = false);
  /// An active call ends: its relay intervals since the last sample join its quality.
  void final_relay_intervals(Call& c, TimeMs now);

  // --- helpers (engine.cpp) ---
  /// A server message about call `c`.
  static nlohmann::json message(std::string_view type, const Call& c,
                                nlohmann::json payload = nullptr);
  static void send(Actions& out, const DeviceId& to, nlohmann::json msg) {
    out.send.push_back(Outgoing{to, std::move(msg)});
  }
  void ack(const DeviceState& d, const ClientMessage& m, Actions& out, std::string_view call = {},
           bool duplicate = false);
  void error(const DeviceState& d, const ClientMessage& m, std::string_view code,
             std::string_view field, std::string_view reason, Actions& out);
  /// The device of the call's other party (the caller's when `d` answered, and back).
  const DeviceId& other_device(const Call& c, const DeviceId& d) const {
    return d == c.rec.caller_device ? c.rec.answered_device : c.rec.caller_device;
  }
  bool is_participant(const Call& c, const DeviceId& d) const {
    return d == c.rec.caller_device || (!c.rec.answered_device.empty() && d == c.rec.answered_device);
  }
  void note(ClientType t, std::string_view result) {
    if (observer != nullptr) observer->on_message(t, result);
  }
};

void remove_call_from_device(DeviceState& d, const std::string& call_id);

}  // namespace callrelay::calls
