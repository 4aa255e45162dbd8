// What `callrelay ctl` prints by default: the admin API's JSON answers as aligned tables and
// short lines. Pure functions of the JSON; a field that is missing or of another type prints
// as "-" (never an exception), and text from the relay is printed with control characters
// escaped, so that a client's user name cannot drive the operator's terminal.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace callrelay::app {

/// Columns padded to their widest cell, two spaces apart, the first row the header. Columns
/// whose `right[i]` is true are right-aligned (numbers).
std::string render_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& right = {});

/// `text` with every control character (and DEL) written as \xNN.
std::string printable(const std::string& text);

/// Human units: "950 B", "1.2 kB", "3.4 MB" (SI); a rate in bytes/s as bits: "800 kbit/s";
/// an age in seconds: "12s", "5m03s", "2h04m", "3d02h".
std::string human_bytes(double bytes);
std::string human_rate(double bytes_per_s);
std::string human_age(double seconds);

/// GET /api/v1/admin/status as "name  value" lines, then the recent errors as a table.
std::string format_status(const nlohmann::json& status);
/// GET /api/v1/admin/allocations as a table (one row per allocation), or "no live allocations".
std::string format_allocations(const nlohmann::json& answer);
/// GET /api/v1/admin/calls as a table, or "no live calls".
std::string format_calls(const nlohmann::json& answer);
/// GET /api/v1/admin/config as "dotted.key  value" lines, in the answer's order.
std::string format_config(const nlohmann::json& config);

}  // namespace callrelay::app
