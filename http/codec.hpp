// Text codecs for the HTTP API, pure functions: percent-decoding and form/query parsing
// (application/x-www-form-urlencoded), request parameters from the query and a form or flat
// JSON body, and JSON response bodies. JSON is read and written by nlohmann-json, without
// exceptions: bad input is a value (nullopt), never a throw.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/message.hpp"

namespace callrelay::http {

/// Name/value pairs in the order they came.
using Params = std::vector<std::pair<std::string, std::string>>;

/// Decodes %XX escapes and '+' (space). nullopt on a bad escape or a decoded NUL byte.
std::optional<std::string> percent_decode(std::string_view text);

/// Parses "a=1&b=two" (a query string or a form body). nullopt if any part fails to decode.
/// Empty parts ("a=1&&b=2") are skipped; a name without '=' has an empty value.
std::optional<Params> parse_form(std::string_view text);

/// Parses a JSON object (RFC 8259) whose values are strings, numbers, booleans or null
/// (numbers and booleans are kept as their JSON text, null as ""). nullopt for anything else:
/// nested values, trailing garbage, bad escapes or UTF-8, lone UTF-16 surrogates, NUL bytes.
std::optional<Params> parse_flat_json(std::string_view text);

/// Request parameters: the query string, then the form or JSON body (chosen by Content-Type;
/// none means a form), body values last so that they win with find_param. A 400 or 415
/// response naming the problem when something does not parse.
std::optional<Response> read_params(const Request& req, Params& out);

/// The last value of `name`, if present.
std::optional<std::string> find_param(const Params& params, std::string_view name);

/// `value` as compact JSON text plus a newline (friendly to curl). Bytes that are not UTF-8
/// become U+FFFD instead of throwing: error messages may echo what a client sent.
std::string json_text(const nlohmann::json& value);
std::string json_text(const nlohmann::ordered_json& value);

/// A JSON response (application/json) with `status` and `body`, keys in the order given.
Response json_response(int status, const nlohmann::ordered_json& body);

}  // namespace callrelay::http
