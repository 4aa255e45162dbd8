// The operator endpoints under /api/v1/admin/, for API keys marked `admin: true` (the contract
// `callrelay ctl` and the status page use; README, section Admin API):
//   GET  /api/v1/admin/status                  version, uptime, workers, drain, allocations by
//                                              transport, calls by state, ports, recent errors
//   GET  /api/v1/admin/allocations[?user=U]    every live allocation (never capped)
//   GET  /api/v1/admin/calls                   every live call
//   POST /api/v1/admin/allocations/end         {"user": U} or {"allocation": "<worker>-<id>"}
//   POST /api/v1/admin/calls/end               {"call": ID}: ended as the server's hang-up
//   POST /api/v1/admin/drain                   {"deadline_s": S} (S optional)
//   GET  /api/v1/admin/config                  the effective configuration, secrets masked
// Pure request -> response logic over plain view structs: what the relay, telemetry and the
// calls service know is gathered by the Actions (app/ wires them), so every route is testable
// without a server. Thread-safe as long as the actions are.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/api_keys.hpp"
#include "http/codec.hpp"
#include "http/message.hpp"
#include "relay/core/types.hpp"

namespace callrelay::http {

/// What GET /api/v1/admin/status reports of the relay itself (calls and recent errors are
/// added by AdminApi).
struct AdminStatus {
  std::string version;
  int64_t uptime_s = 0;
  unsigned workers = 0;
  bool draining = false;
  std::optional<int64_t> drain_deadline_s;  ///< seconds left until the drain ends; null: none
  std::array<uint64_t, 3> allocations_by_transport{};  ///< udp, tcp, tls
  uint64_t relay_ports_in_use = 0;
  uint64_t relay_ports_total = 0;
};

/// Relay-observed media quality of one allocation (what its client sent).
struct AdminAllocationQuality {
  double loss_ratio = 0;
  double jitter_ms = 0;
};

/// One live allocation (telemetry's live view, in the API's terms).
struct AdminAllocation {
  std::string id;  ///< "<worker>-<core id>", as the metrics' allocation_id label
  std::string user;
  std::string transport;  ///< udp | tcp | tls
  std::string family;     ///< ipv4 | ipv6 | dual
  std::string client;
  std::vector<std::string> relayed;
  double age_s = 0;
  std::array<uint64_t, 2> bytes{};  ///< client_to_peer, peer_to_client
  std::array<double, 2> rate{};     ///< bytes/s, same order
  std::optional<AdminAllocationQuality> quality;
  std::string call_id;  ///< "" when not call-scoped
};

/// A call's quality so far (its worst measured stream).
struct AdminCallQuality {
  double mos = 0;
  double loss_ratio = 0;
  double jitter_ms = 0;
  std::optional<double> rtt_ms;  ///< nullopt: never known
};

/// One live call.
struct AdminCall {
  std::string id;
  std::string state;  ///< ringing | connecting | active
  std::string caller, callee;
  double age_s = 0;
  uint32_t allocations = 0;  ///< live allocations made with the call's credentials
  std::optional<AdminCallQuality> quality;
};

class AdminApi {
 public:
  /// Longest call id accepted in a request (the service's ids are 24 characters).
  static constexpr size_t kMaxCallIdBytes = 64;

  struct Actions {
    /// Ends every live allocation of `user` (the app's user id, or a static username) and
    /// returns how many ended.
    std::function<size_t(const std::string& user)> end_user;
    /// Ends allocation `id` of worker `worker` (the two parts of an allocation id); false when
    /// no such allocation lives.
    std::function<bool(unsigned worker, uint64_t id)> end_allocation;
    /// Starts draining (or, when draining already, shortens the deadline to `deadline_s`);
    /// returns the seconds left until the drain's deadline.
    std::function<uint32_t(std::optional<uint32_t> deadline_s)> drain;
    /// The relay's own status.
    std::function<AdminStatus()> status;
    /// Every live allocation.
    std::function<std::vector<AdminAllocation>()> allocations;
  };
  /// The calls service's part (absent when calls are off: no calls, calls/end answers 404).
  struct CallActions {
    /// Every live call; nullopt when the service did not answer in time (503).
    std::function<std::optional<std::vector<AdminCall>>()> calls;
    /// Ends a live call; whether it was live; nullopt when the service did not answer (503).
    std::function<std::optional<bool>(const std::string& call_id)> end_call;
    /// Open signaling connections.
    std::function<size_t()> connections;
  };

  /// `keys` (which must outlive this) checks the key; `actions` do the work.
  AdminApi(ApiKeys& keys, Actions actions);

  /// Before the server starts: the calls service's actions.
  void set_calls(CallActions calls) { calls_ = std::move(calls); }
  /// Before the server starts: the effective configuration with every secret masked.
  void set_config(std::function<nlohmann::json()> config) { config_ = std::move(config); }

  /// The answer to a request under /api/v1/admin/, or nullopt for a path this class does not
  /// serve (another admin route may).
  std::optional<Response> handle(const Request& req, core::TimeMs now);

  /// The key of an admin request, or the response to send: 401/429 as ApiKeys::authorize,
  /// 403 for a valid key not marked admin. `params` receives the request's parameters.
  std::variant<const ApiKey*, Response> authorize(const Request& req, Params& params,
                                                  core::TimeMs now);

 private:
  Response status(const Request& req, core::TimeMs now);
  Response allocations(const Request& req, core::TimeMs now);
  Response calls(const Request& req, core::TimeMs now);
  Response end_allocations(const Request& req, core::TimeMs now);
  Response end_call(const Request& req, core::TimeMs now);
  Response drain(const Request& req, core::TimeMs now);
  Response config(const Request& req, core::TimeMs now);

  ApiKeys& keys_;
  Actions actions_;
  CallActions calls_;
  std::function<nlohmann::json()> config_;
};

/// "<worker>-<core id>" split into its numbers, or nullopt for anything else (digits only,
/// no sign, no leading '+', each part within its type).
std::optional<std::pair<unsigned, uint64_t>> parse_allocation_id(std::string_view id);

/// Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-12-03T08:00:00.123Z").
std::string rfc3339_ms(int64_t unix_ms);

}  // namespace callrelay::http
