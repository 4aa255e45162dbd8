// What the admin API (http/admin_api.hpp) shows, gathered from the running relay: telemetry's
// live allocations, the workers, the drain, and the signaling service's live calls, converted
// to the API's view structs. Wiring only; every function is safe on the HTTP threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "calls/signaling/signaling_service.hpp"
#include "http/admin_api.hpp"
#include "http/message.hpp"
#include "relay/core/types.hpp"
#include "relay/net/server.hpp"
#include "telemetry/telemetry.hpp"

namespace callrelay::app {

/// How long an admin request waits for a worker or the signaling thread to answer (they answer
/// in microseconds unless stopped or stuck; then the request gets 503 or counts nothing).
inline constexpr std::chrono::milliseconds kAdminWait{5000};

/// Every live allocation in the admin API's terms. `now`: net::now_ms().
std::vector<http::AdminAllocation> admin_allocations(const telemetry::Telemetry& metrics,
                                                     core::TimeMs now);

/// The relay's status. `drain_left_s`: seconds until the drain's deadline (nullopt: none
/// running). `now`: net::now_ms().
http::AdminStatus admin_status(const telemetry::Telemetry& metrics, const net::Server& relay,
                               const http::Readiness& readiness,
                               std::optional<int64_t> drain_left_s, core::TimeMs now);

/// The calls service's part of the admin API: its live calls (with the count of each call's
/// live allocations from `metrics`), ending one, and its open connections. `signaling` and
/// `metrics` outlive the actions.
http::AdminApi::CallActions admin_call_actions(calls::SignalingService& signaling,
                                               const telemetry::Telemetry& metrics);

}  // namespace callrelay::app
