// Payload readers of the quality messages `stats` and `media` (README, section Call quality),
// used by parse_client_message. Internal to calls_core.
#pragma once

#include <nlohmann/json.hpp>

#include "calls/core/messages.hpp"

namespace callrelay::calls::detail {

/// Reads a `stats` payload into `out`. On failure fills e.field and e.reason and returns false.
/// Unknown fields are refused: figures the server does not know it could not score.
bool read_stats(const nlohmann::json& payload, StatsReport& out, MessageError& e);

/// Reads a `media` payload into `out`, with the same conventions.
bool read_media_state(const nlohmann::json& payload, MediaState& out, MessageError& e);

}  // namespace callrelay::calls::detail
