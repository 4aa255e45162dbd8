// The coturn import's entry point and coturn's line syntax (mainrelay.c read_config_file and
// parse_arg_string in coturn 4.6).
#include "config/coturn_import.hpp"

#include "config/coturn_import_draft.hpp"

namespace callrelay::config {
namespace coturn {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
bool is_separator(char c) { return c == ' ' || c == '\t' || c == '='; }

/// One line split as coturn does: leading blanks skipped, trailing white space cut, the name
/// ends at the first space, tab or '=', the value starts after that run of separators.
std::optional<Line> split_line(std::string_view s, int number) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  if (s.empty() || s.front() == '#') return std::nullopt;
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  Line l;
  l.number = number;
  size_t i = 0;
  while (i < s.size() && !is_separator(s[i])) ++i;
  l.name = std::string(s.substr(0, i));
  while (i < s.size() && is_separator(s[i])) ++i;
  std::string_view value = s.substr(i);
  if (!value.empty() && value.front() == '"') {
    value.remove_prefix(1);
    while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
    if (!value.empty() && value.back() == '"') value.remove_suffix(1);
  }
  l.value = std::string(value);
  return l;
}

}  // namespace

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  int number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    ++number;
    if (auto l = split_line(line, number)) lines.push_back(std::move(*l));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::string printable(std::string_view text) {
  constexpr size_t kMax = 80;
  std::string out;
  for (const char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7F ? '?' : c);
  }
  if (text.size() > kMax) out += "...";
  return out;
}

}  // namespace coturn

CoturnImport import_coturn(std::string_view conf_text, const CoturnImportOptions& options) {
  coturn::Draft draft;
  coturn::Report report;
  for (const coturn::Line& line : coturn::split_lines(conf_text))
    coturn::apply(line, draft, report);
  CoturnImport out;
  out.yaml = coturn::write_yaml(draft, options, report);
  out.not_imported = std::move(report.not_imported);
  out.notes = std::move(report.notes);
  return out;
}

std::string describe(const CoturnSkipped& skipped) {
  std::string text = skipped.option + ": " + skipped.reason;
  if (skipped.line > 0) text += " (line " + std::to_string(skipped.line) + ")";
  return text;
}

}  // namespace callrelay::config
