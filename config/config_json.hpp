// The effective configuration as JSON, for operators (GET /api/v1/admin/config, `callrelay ctl
// config`): the same keys as the YAML file, every value after defaults and file resolution,
// and every secret replaced by "***".
#pragma once

#include <nlohmann/json.hpp>

#include "config/config.hpp"

namespace callrelay::config {

/// What a masked secret reads as.
inline constexpr const char* kMasked = "***";

/// `cfg` as JSON keyed like the YAML file (listen, relay, auth, allocations, ..., durations in
/// seconds as the file gives them). REST secrets, static users' passwords, API keys, the
/// signaling token secret, the webhook secret and a password in the webhook URL read "***"
/// (an unset optional secret reads null, so operators see whether one is configured). File
/// paths are shown: a path names where a secret lives, it is not the secret.
nlohmann::json to_masked_json(const Config& cfg);

}  // namespace callrelay::config
