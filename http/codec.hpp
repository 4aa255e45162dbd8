// Text codecs for the HTTP API, pure functions: percent-decoding and form/query parsing
// (application/x-www-form-urlencoded), JSON string quoting, and a strict reader for the flat
// JSON objects API clients POST.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callrelay::http {

/// Name/value pairs in the order they came.
using Params = std::vector<std::pair<std::string, std::string>>;

/// Decodes %XX escapes and '+' (space). nullopt on a bad escape or a decoded NUL byte.
std::optional<std::string> percent_decode(std::string_view text);

/// Parses "a=1&b=two" (a query string or a form body). nullopt if any part fails to decode.
/// Empty parts ("a=1&&b=2") are skipped; a name without '=' has an empty value.
std::optional<Params> parse_form(std::string_view text);

/// Parses a JSON object whose values are strings, numbers, booleans or null (numbers and
/// booleans are kept as their text, null as ""). nullopt for anything else (nested values,
/// trailing garbage, bad escapes, invalid UTF-16 surrogates).
std::optional<Params> parse_flat_json(std::string_view text);

/// `text` as a JSON string literal, quotes included (control characters escaped).
std::string json_quote(std::string_view text);

/// The last value of `name`, if present.
std::optional<std::string> find_param(const Params& params, std::string_view name);

}  // namespace callrelay::http
