// The pieces of a JSON log line (RFC 8259): string escaping that always yields valid JSON, even
// for bytes an attacker chose, and the RFC 3339 UTC timestamp every line carries. Pure
// functions, exposed for the logger and its tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace callrelay::log {

/// Appends `s` to `out` as a JSON string literal, quotes included. '"', '\\' and control
/// characters are escaped (RFC 8259 section 7); bytes that are not well-formed UTF-8 become
/// U+FFFD, so the line stays valid JSON whatever a client sent.
void append_json_string(std::string& out, std::string_view s);

/// Appends a finite double as a JSON number; NaN and infinities (not JSON numbers) as null.
void append_json_number(std::string& out, double v);

/// "2026-12-03T08:00:00.123Z": RFC 3339 in UTC with milliseconds, for `unix_ms` milliseconds
/// since 1970 (times before 1970 round down, as the calendar does).
std::string rfc3339_ms(int64_t unix_ms);

/// Whether `text` holds exactly one JSON object, nothing but whitespace around it: the check
/// applied to records a producer hands over already encoded. Strict on structure, lenient on
/// nothing: an unterminated string or a trailing comma is not an object.
bool is_json_object(std::string_view text);

}  // namespace callrelay::log
