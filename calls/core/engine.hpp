// The call state machine for every call of the process, pure in the style of relay/core: device
// events, parsed client messages and `now` in; messages to devices, finished records and the
// next deadline out. No I/O, no clock, no threads: the signaling service owns one instance and
// calls it from one thread.
//
// States per call: ringing -> connecting -> active -> ended (README, section Calls). Every state
// but ended has a deadline; the rules (exactly one accept, busy, no glare, only the call's two
// devices, candidates held until usable, grace for dropped devices) are enforced here.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "calls/core/config.hpp"
#include "calls/core/messages.hpp"
#include "calls/core/quality.hpp"
#include "calls/core/record.hpp"
#include "calls/core/sdp_payloads.hpp"
#include "calls/core/types.hpp"

namespace callrelay::calls {

/// Call-scoped TURN credentials as an RTCIceServer list (the relay's REST mechanism).
class IceServerSource {
 public:
  virtual ~IceServerSource() = default;
  virtual nlohmann::json ice_servers(std::string_view user, std::string_view call_id,
                                     TimeMs now) = 0;
};

/// What the engine tells metrics. Called synchronously; must be cheap.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  /// A client message was handled: `result` is "ok", "duplicate" or an error code.
  virtual void on_message(ClientType /*type*/, std::string_view /*result*/) {}
  virtual void on_call_started(const CallRecord& /*r*/) {}
  /// The callee accepted: ring time is answered - created.
  virtual void on_call_answered(const CallRecord& /*r*/) {}
  /// The call became active: setup time is connected - created.
  virtual void on_call_connected(const CallRecord& /*r*/) {}
  virtual void on_call_ended(const CallRecord& /*r*/) {}
  virtual void on_ice_restart() {}
  /// A device resumed within the grace period (`in_call`: it had a live call).
  virtual void on_reconnect(bool /*in_call*/) {}
  /// One scored interval of an active call (relay-observed or client-reported).
  virtual void on_quality_interval(const QualityInterval& /*interval*/) {}
  /// The relay's and the receiving client's loss disagreed for one interval: `reason` is
  /// "client_underreports" or "loss_after_relay" (QualityTracker::compare).
  virtual void on_disagreement(MediaKind /*kind*/, const char* /*reason*/) {}
  /// A sender stopped its video for poor quality (`media` video:false, reason poor-quality).
  virtual void on_video_fallback() {}
};

/// One message for one device. The service adds `sseq` and sends it.
struct Outgoing {
  DeviceId to;
  nlohmann::json message;
};

/// Everything one engine call asks the service to do, in order.
struct Actions {
  std::vector<Outgoing> send;
  /// Calls that ended: store the record (after adding the relay's traffic) and end the call's
  /// allocations.
  std::vector<CallRecord> ended;
  /// Devices to disconnect for good (their grace period ran out, or they were refused).
  std::vector<DeviceId> drop;
  /// Calls whose negotiated payload types changed (an offer or answer passed): the union of
  /// the current offer's and answer's, for CallRelay::set_payload_types.
  std::vector<std::pair<std::string, std::vector<RtpPayloadType>>> payload_types;
};

/// An active call's id and users, for sampling what the relay measured of it.
struct ActiveCall {
  std::string id;
  std::string caller, callee;  ///< user ids
  TimeMs connected = 0;        ///< when it became active
};

/// A call's quality so far, as the operator sees it: the figures of its worst measured stream
/// (the direction, kind and source, relay-observed or client-reported, with the lowest mean
/// MOS).
struct LiveCallQuality {
  double mos = 0;
  double loss_ratio = 0;  ///< lost / expected over the call so far
  double jitter_ms = 0;   ///< mean
  double rtt_ms = -1;     ///< mean; -1: never known
};

/// A live call (ringing, connecting or active) for the operator.
struct LiveCall {
  std::string id;
  CallState state = CallState::kRinging;
  std::string caller, callee;  ///< user ids
  std::string tenant;
  TimeMs created = 0;
  std::optional<LiveCallQuality> quality;  ///< nullopt: nothing measured yet
};

/// One relay-observed interval of an active call, for one direction and kind.
struct RelayInterval {
  Direction direction = Direction::kCallerToCallee;
  MediaKind kind = MediaKind::kAudio;
  TimeMs start = 0, end = 0;
  IntervalMeasure measure;
};

/// The relay's last intervals of an active call that ends (README, section Call quality). The
/// service samples the relay every few seconds; the media relayed since a call's last sample
/// would be missing from its record, so the engine asks for it while it ends the call, however
/// the call ends (a hang-up, a device's grace running out, max duration, shutdown).
class FinalRelaySource {
 public:
  virtual ~FinalRelaySource() = default;
  /// The intervals of `call` from its previous relay sample (or its connection) to `now`, per
  /// direction and kind with media; they may be shorter than a sampling period. Called while
  /// the engine is inside a call of its own: must not call back into the engine.
  virtual std::vector<RelayInterval> final_intervals(const ActiveCall& call, TimeMs now) = 0;
};

/// Makes call ids ("c_" + 22 base64url characters); random in production, a counter in tests.
using CallIdSource = std::function<std::string()>;

/// Whether a user takes part in a connecting or active call of another engine (another
/// instance's, calls/cluster): an invite then ends busy as for a callee busy in this engine.
using BusyElsewhere = std::function<bool(std::string_view tenant, std::string_view user)>;

class CallEngine {
 public:
  /// `ice`, `observer` (may be null) and `final_relay` (may be null: records then hold the
  /// relay intervals passed to on_relay_interval only) outlive the engine.
  CallEngine(EngineConfig cfg, IceServerSource& ice, CallIdSource ids, CallObserver* observer,
             FinalRelaySource* final_relay = nullptr);
  ~CallEngine();
  CallEngine(const CallEngine&) = delete;
  CallEngine& operator=(const CallEngine&) = delete;

  /// A new device of `user` (in `tenant`) connected. False (and nothing changes) when the
  /// user has max_devices_per_user devices already. Rings it for the user's ringing calls.
  bool device_connected(const DeviceId& device, const std::string& user,
                        const std::string& tenant, TimeMs now, Actions& out);
  /// The device's socket dropped: its grace period starts. The other side of its calls gets
  /// `peer-reconnecting`.
  void device_lost(const DeviceId& device, TimeMs now, Actions& out);
  /// The device reconnected within the grace period. False when it is unknown or its grace
  /// ran out. The other side of its calls gets `peer-resumed`.
  bool device_resumed(const DeviceId& device, TimeMs now, Actions& out);
  /// The live calls of a device, for the `welcome` of a resumed session.
  nlohmann::json device_calls(const DeviceId& device) const;

  /// One parsed client message from `device`: answered with `ack` or `error`, and acted on.
  void on_message(const DeviceId& device, const ClientMessage& msg, TimeMs now, Actions& out);

  /// A relay-observed interval of an active call, for one direction and kind (README, section
  /// Call quality): scored, added to the call's quality and compared with the receiving
  /// client's latest report for the same direction and kind when both cover the same media
  /// (engine_quality.cpp, comparable()). False
  /// (and nothing changes) when the call is unknown or not active.
  bool on_relay_interval(std::string_view call_id, Direction direction, MediaKind kind,
                         TimeMs start, TimeMs end, const IntervalMeasure& measure);
  /// The calls that are active now, for the service's relay sampling.
  std::vector<ActiveCall> active_calls() const;

  /// Ends what is due at `now` (ring, connect, grace, duration deadlines). Returns the next
  /// deadline, or INT64_MAX when nothing is pending.
  TimeMs on_timer(TimeMs now, Actions& out);
  TimeMs next_deadline() const;

  /// Ends every live call (reason "shutdown", by the server).
  void shutdown(TimeMs now, Actions& out);

  /// Every live call, sorted by creation time then id (engine_admin.cpp).
  std::vector<LiveCall> live_calls() const;
  /// The (tenant, callee) of every ringing call, each once, sorted (engine_admin.cpp).
  std::set<std::pair<std::string, std::string>> ringing_callees() const;
  /// Ends live call `call_id` as a hang-up by the server would (reason "operator-ended", by
  /// the server): both devices get `ended`, the record goes out in `out`. An active call is
  /// completed, one that never became active cancelled. False when no live call has that id.
  bool end_by_operator(std::string_view call_id, TimeMs now, Actions& out);

  size_t calls_in(CallState s) const;
  size_t device_count() const;

  /// Consulted when an invite arrives and calls.call_waiting is off, after this engine's own
  /// calls; empty (the default): only this engine's calls make a callee busy.
  void set_busy_elsewhere(BusyElsewhere f);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::calls
