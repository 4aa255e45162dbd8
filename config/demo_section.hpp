// The `demo:` section of the schema (the page at /demo/ and its token endpoint), kept apart
// from config.cpp; called from its Loader. Private to config/.
#pragma once

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace callrelay::config::detail {

/// Reads `demo:`; `enabled_at` gets the field of demo.enabled (for errors found later).
void read_demo_section(Reader& reader, const Field& f, DemoConfig& out, Field& enabled_at);
/// Checks across sections once the whole document is read: the demo makes calls, so it needs
/// calls.enabled and http.enabled.
void check_demo_section(Reader& reader, const Config& cfg, const Field& enabled_at);

}  // namespace callrelay::config::detail
