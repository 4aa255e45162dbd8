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
///   "bytes_callee_to_caller", "relayed"}, "quality": quality_to_json(...)}`.
/// Times are ISO 8601 UTC with milliseconds ("2026-12-02T18:45:06.123Z"), null when 0 (never
/// happened); tenant and answered_device are null when empty; setup_ms is null when the call
/// never connected; duration_ms is ended - connected, null when it never connected.
nlohmann::json to_json(const CallRecord& record);

/// The inverse of to_json, for tests and tools that read the API or webhook bodies. Returns
/// nullopt when a field is missing, of the wrong type or out of range; duration_ms and
/// relay.relayed are derived values and are not read. A missing or null "quality" (a body
/// from a server that predates it) reads as an empty CallQuality.
std::optional<CallRecord> from_json(const nlohmann::json& json);

/// The record's "quality" object:
/// `{"caller_to_callee": {"audio": {"relay": S, "client": S}, "video": {...}},
///   "callee_to_caller": {...}, "client_underreports", "loss_after_relay",
///   "video_fallbacks": [{"party": "caller"|"callee", "at", "restored"}]}`
/// with S = `{"intervals", "mean_mos", "worst_mos", "loss_ratio", "worst_loss_ratio",
///   "packets_expected", "packets_lost", "mean_jitter_ms", "worst_jitter_ms", "mean_rtt_ms",
///   "worst_rtt_ms", "ms_in_class": {"excellent", "good", "fair", "poor"}}`, or null for a
/// summary of 0 intervals. The RTTs are null when never known; fallback times are Unix ms
/// (restored 0: not restored). The packet totals make the summary exact to read back.
nlohmann::json quality_to_json(const CallQuality& quality);

/// The inverse of quality_to_json; nullopt for anything it could not have written.
/// loss_ratio is derived from the packet totals and not read.
std::optional<CallQuality> quality_from_json(const nlohmann::json& json);

/// Unix milliseconds as ISO 8601 UTC with milliseconds: "2026-12-02T18:45:06.123Z".
std::string format_iso8601_ms(TimeMs unix_ms);

/// Parses exactly the format_iso8601_ms shape (the "Z" and the three digits are required);
/// nullopt for anything else, including impossible dates such as February 30.
std::optional<TimeMs> parse_iso8601_ms(std::string_view text);

}  // namespace callrelay::calls
