// The `bandwidth:` section of the schema (caps per allocation, per user and for the server),
// kept apart from config.cpp; called from its Loader. Private to config/.
#pragma once

#include <cstdint>
#include <optional>

#include "config/yaml_reader.hpp"
#include "relay/core/bandwidth.hpp"

namespace callrelay::config::detail {

/// Reads `bandwidth:` into `out`. Rates are bits per second, as an integer or with a decimal
/// suffix ("64k", "2.5M", "1G"); 0 turns a cap off.
void read_bandwidth_section(Reader& reader, const Field& f, core::BandwidthConfig& out);

/// A rate such as "2.5M" in bits per second, or nullopt (error recorded).
std::optional<uint64_t> parse_bps(Reader& reader, const Field& f);

}  // namespace callrelay::config::detail
