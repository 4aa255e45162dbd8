// The `calls:` section of the schema (signaling, the call state machine's timeouts, records,
// the webhook), kept apart from config.cpp; called from its Loader. Private to config/.
#pragma once

#include <filesystem>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace callrelay::config::detail {

/// Reads `calls:`. A relative records.path is resolved against `base_dir`.
void read_calls_section(Reader& reader, const Field& f, calls::CallsConfig& out,
                        const std::filesystem::path& base_dir);

}  // namespace callrelay::config::detail
