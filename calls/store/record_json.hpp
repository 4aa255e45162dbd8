// The one JSON shape of a call record: GET /api/v1/calls, GET /api/v1/calls/{id} and the
// webhook body all use it, so a receiver parses a single schema.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "calls/core/record.hpp"

namespace callrelay::calls {

/// The record as JSON, snake_case keys:
/// `{"id", "caller", "callee", "tenant", "caller_device", "answered_device",
///   "media": {"audio", "video"}, "created", "answered", "connected", "ended",
///   "outcome", "end_reason", "ended_by", "setup_ms", "duration_ms", "ice_restarts",
///   "reconnects", "relay": {"allocations", "bytes_caller_to_callee",
///   "bytes_callee_to_caller", "relayed"}}`.
/// Times are ISO 8601 UTC with milliseconds ("2026-12-02T18:45:06.123Z"), null when 0 (never
/// happened); tenant and answered_device are null when empty; setup_ms is null when the call
/// never connected; duration_ms is ended - connected, null when it never connected.
nlohmann::json to_json(const CallRecord& record);

/// The inverse of to_json, for tests and tools that read the API or webhook bodies. Returns
/// nullopt when a field is missing, of the wrong type or out of range; duration_ms and
/// relay.relayed are derived values and are not read.
std::optional<CallRecord> from_json(const nlohmann::json& json);

/// Unix milliseconds as ISO 8601 UTC with milliseconds: "2026-12-02T18:45:06.123Z".
std::string format_iso8601_ms(TimeMs unix_ms);

/// Parses exactly the format_iso8601_ms shape (the "Z" and the three digits are required);
/// nullopt for anything else, including impossible dates such as February 30.
std::optional<TimeMs> parse_iso8601_ms(std::string_view text);

}  // namespace callrelay::calls
