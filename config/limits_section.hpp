// The `limits:` section of the schema: the abuse limits (answers to unauthenticated requests,
// TCP/TLS connections), kept apart from config.cpp; called from its Loader. Private to config/.
#pragma once

#include "config/yaml_reader.hpp"
#include "relay/core/abuse.hpp"

namespace callrelay::config::detail {

/// Reads `limits:` into `out` (keys left out keep their defaults: see core::AbuseConfig).
void read_limits_section(Reader& reader, const Field& f, core::AbuseConfig& out);

}  // namespace callrelay::config::detail
