#include "http/codec.hpp"

#include <algorithm>
#include <cstdint>

namespace callrelay::http {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_digit(text[i + 1]);
      const int lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
      out.push_back(static_cast<char>((hi << 4) | lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<Params> parse_form(std::string_view text) {
  Params out;
  while (!text.empty()) {
    const size_t amp = text.find('&');
    const std::string_view part = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    auto name = percent_decode(part.substr(0, eq));
    auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1));
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

namespace {

/// Whether a parsed name or value holds a NUL byte ("\u0000"): it would cut a user id short
/// in C strings downstream, so it is refused like a %00 in a form.
bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

std::string media_type(std::string_view content_type) {
  std::string out(content_type.substr(0, content_type.find(';')));
  while (!out.empty() && out.back() == ' ') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
  return out;
}

}  // namespace

std::optional<Params> parse_flat_json(std::string_view text) {
  const auto doc = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  Params out;
  for (const auto& item : doc.items()) {
    const auto& value = item.value();
    std::string text_value;
    if (value.is_string()) {
      text_value = value.get_ref<const std::string&>();
    } else if (value.is_number() || value.is_boolean()) {
      text_value = value.dump();
    } else if (!value.is_null()) {
      return std::nullopt;  // nested objects and arrays
    }
    if (has_nul(item.key()) || has_nul(text_value)) return std::nullopt;
    out.emplace_back(item.key(), std::move(text_value));
  }
  return out;
}

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string json_text(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Response json_response(int status, const nlohmann::ordered_json& body) {
  Response r;
  r.status = status;
  r.body = json_text(body);
  return r;
}

Response json_error(int status, std::string_view message) {
  return json_response(status, {{"error", message}});
}

std::optional<Response> read_params(const Request& req, Params& out) {
  auto query = parse_form(req.query);
  if (!query) return json_error(400, "malformed query string (bad percent-encoding)");
  out = std::move(*query);
  if (req.body.empty()) return std::nullopt;
  const std::string type = media_type(req.content_type);
  std::optional<Params> body;
  if (type == "application/json") {
    body = parse_flat_json(req.body);
    if (!body) return json_error(400, "malformed JSON body: expected one flat JSON object");
  } else if (type.empty() || type == "application/x-www-form-urlencoded") {
    body = parse_form(req.body);
    if (!body) return json_error(400, "malformed form body (bad percent-encoding)");
  } else {
    return json_error(415, "unsupported Content-Type '" + type +
                               "': send application/x-www-form-urlencoded or application/json");
  }
  out.insert(out.end(), body->begin(), body->end());
  return std::nullopt;
}

std::optional<std::string> find_param(const Params& params, std::string_view name) {
  std::optional<std::string> found;
  for (const auto& [n, v] : params) {
    if (n == name) found = v;
  }
  return found;
}

}  // namespace callrelay::http
