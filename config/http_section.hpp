// The `http:` and `api:` sections of the schema (the HTTP listener and the credential API),
// kept apart from config.cpp; called from its Loader. Private to config/.
#pragma once

#include <filesystem>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace callrelay::config::detail {

/// Reads `http:`. Relative TLS file paths are resolved against `base_dir`; the files must
/// be readable.
void read_http_section(Reader& reader, const Field& f, http::HttpConfig& out,
                       const std::filesystem::path& base_dir);
/// Reads `api:`. A key's key_file (relative to `base_dir`) is read now: its first non-blank
/// line is the key.
void read_api_section(Reader& reader, const Field& f, http::ApiConfig& out,
                      const std::filesystem::path& base_dir);
/// Checks across sections once the whole document is read (API keys need a TURN URI).
void check_http_sections(Reader& reader, const Config& cfg);

}  // namespace callrelay::config::detail
