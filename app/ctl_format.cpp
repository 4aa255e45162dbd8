#include "app/ctl_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <optional>
#include <utility>

namespace callrelay::app {
namespace {

using nlohmann::json;

/// `j[key]` when `j` is an object holding it, else null.
const json& field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

/// A scalar as text: strings as they are (escaped), numbers and booleans as JSON, else "-".
std::string text(const json& v) {
  if (v.is_string()) return printable(v.get<std::string>());
  if (v.is_number() || v.is_boolean()) return v.dump();
  return "-";
}

std::string text(const json& j, const char* key) { return text(field(j, key)); }

std::optional<double> number(const json& v) {
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// A unit-scaled number: 950 -> "950", 1234 -> "1.2 k", with `unit` appended.
std::string scaled(double v, const char* unit) {
  static constexpr const char* kPrefixes[] = {"", "k", "M", "G", "T", "P"};
  size_t i = 0;
  while (std::fabs(v) >= 1000.0 && i + 1 < std::size(kPrefixes)) {
    v /= 1000.0;
    ++i;
  }
  return (i == 0 ? fixed(v, 0) : fixed(v, 1)) + " " + kPrefixes[i] + unit;
}

std::string bytes_of(const json& v) {
  const auto n = number(v);
  return n ? human_bytes(*n) : "-";
}

std::string rate_of(const json& v) {
  const auto n = number(v);
  return n ? human_rate(*n) : "-";
}

std::string percent_of(const json& ratio) {
  const auto n = number(ratio);
  return n ? fixed(*n * 100.0, 1) + "%" : "-";
}

std::string ms_of(const json& v) {
  const auto n = number(v);
  return n ? fixed(*n, 1) + " ms" : "-";
}

std::string yes_no(const json& v) {
  if (!v.is_boolean()) return "-";
  return v.get<bool>() ? "yes" : "no";
}

/// Every string of an array joined by ", "; "-" for none.
std::string joined(const json& v) {
  if (!v.is_array() || v.empty()) return text(v);
  std::string out;
  for (const auto& item : v) out += (out.empty() ? "" : ", ") + text(item);
  return out;
}

std::string name_value_lines(const std::vector<std::pair<std::string, std::string>>& lines) {
  size_t width = 0;
  for (const auto& [name, value] : lines) width = std::max(width, name.size());
  std::string out;
  for (const auto& [name, value] : lines)
    out += name + std::string(width - name.size() + 2, ' ') + value + "\n";
  return out;
}

std::string draining_text(const json& s) {
  const json& draining = field(s, "draining");
  if (!draining.is_boolean() || !draining.get<bool>()) return yes_no(draining);
  const auto deadline = number(field(s, "drain_deadline_s"));
  return deadline ? "yes (allocations end within " + human_age(*deadline) + ")" : "yes";
}

std::string allocations_text(const json& s) {
  const json& a = field(s, "allocations");
  const json& by = field(a, "by_transport");
  return text(a, "total") + " (udp " + text(by, "udp") + ", tcp " + text(by, "tcp") + ", tls " +
         text(by, "tls") + ")";
}

std::string calls_text(const json& s) {
  const json& c = field(s, "calls");
  return text(c, "active") + " active, " + text(c, "connecting") + " connecting, " +
         text(c, "ringing") + " ringing";
}

std::string errors_table(const json& errors) {
  if (!errors.is_array() || errors.empty()) return "recent errors: none\n";
  std::vector<std::vector<std::string>> rows = {{"TIME", "LEVEL", "EVENT", "MESSAGE"}};
  for (const auto& e : errors)
    rows.push_back({text(e, "time"), text(e, "level"), text(e, "event"), text(e, "message")});
  return "recent errors:\n" + render_table(rows);
}

void flatten(const json& v, const std::string& path,
             std::vector<std::pair<std::string, std::string>>& out) {
  if (v.is_object() && !v.empty()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      flatten(it.value(), path.empty() ? it.key() : path + "." + it.key(), out);
    return;
  }
  std::string value;
  if (v.is_object()) {
    value = "{}";
  } else if (v.is_array()) {
    bool scalars = true;
    for (const auto& item : v) scalars = scalars && !item.is_structured();
    value = v.empty() ? "[]" : scalars ? joined(v) : printable(v.dump());
  } else {
    value = v.is_null() ? "null" : text(v);
  }
  out.emplace_back(printable(path), value);
}

}  // namespace

std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_table(const std::vector<std::vector<std::string>>& rows,
                         const std::vector<bool>& right) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - row[i].size(), ' ');
      const bool last = i + 1 == row.size();
      if (i < right.size() && right[i]) {
        line += pad + row[i];
      } else {
        line += row[i] + (last ? "" : pad);
      }
      if (!last) line += "  ";
    }
    out += line + "\n";
  }
  return out;
}

std::string human_bytes(double bytes) { return scaled(bytes, "B"); }

std::string human_rate(double bytes_per_s) { return scaled(bytes_per_s * 8.0, "bit/s"); }

std::string human_age(double seconds) {
  if (!(seconds >= 0)) return "-";
  const auto s = static_cast<long long>(seconds);
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  }
  return buf;
}

std::string format_status(const json& s) {
  const json& ports = field(s, "relay_ports");
  const auto uptime = number(field(s, "uptime_s"));
  std::string out = name_value_lines({
      {"version", text(s, "version")},
      {"uptime", uptime ? human_age(*uptime) : "-"},
      {"workers", text(s, "workers")},
      {"draining", draining_text(s)},
      {"allocations", allocations_text(s)},
      {"calls", calls_text(s)},
      {"signaling", text(s, "signaling_connections") + " connection(s)"},
      {"relay ports", text(ports, "in_use") + " of " + text(ports, "total") + " in use"},
  });
  return out + errors_table(field(s, "recent_errors"));
}

std::string format_allocations(const json& answer) {
  const json& list = field(answer, "allocations");
  if (!list.is_array() || list.empty()) return "no live allocations\n";
  std::vector<std::vector<std::string>> rows = {{"ID", "USER", "TRANSPORT", "CLIENT", "RELAYED",
                                                 "AGE", "TO PEER", "FROM PEER", "RATE OUT",
                                                 "RATE IN", "LOSS", "JITTER", "CALL"}};
  for (const auto& a : list) {
    const json& bytes = field(a, "bytes");
    const json& rate = field(a, "rate_bytes_per_s");
    const json& quality = field(a, "quality");
    const auto age = number(field(a, "age_s"));
    rows.push_back({text(a, "id"), text(a, "user"), text(a, "transport") + "/" + text(a, "family"),
                    text(a, "client"), joined(field(a, "relayed")), age ? human_age(*age) : "-",
                    bytes_of(field(bytes, "client_to_peer")),
                    bytes_of(field(bytes, "peer_to_client")),
                    rate_of(field(rate, "client_to_peer")), rate_of(field(rate, "peer_to_client")),
                    percent_of(field(quality, "loss_ratio")), ms_of(field(quality, "jitter_ms")),
                    text(a, "call_id")});
  }
  return render_table(
      rows, {false, false, false, false, false, true, true, true, true, true, true, true, false});
}

std::string format_calls(const json& answer) {
  const json& list = field(answer, "calls");
  if (!list.is_array() || list.empty()) return "no live calls\n";
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "CALLER", "CALLEE", "AGE", "ALLOCATIONS", "MOS", "LOSS", "JITTER", "RTT"}};
  for (const auto& c : list) {
    const json& q = field(c, "quality");
    const auto age = number(field(c, "age_s"));
    const auto mos = number(field(q, "mos"));
    rows.push_back({text(c, "id"), text(c, "state"), text(c, "caller"), text(c, "callee"),
                    age ? human_age(*age) : "-", text(c, "allocations"), mos ? fixed(*mos, 1) : "-",
                    percent_of(field(q, "loss_ratio")), ms_of(field(q, "jitter_ms")),
                    ms_of(field(q, "rtt_ms"))});
  }
  return render_table(rows, {false, false, false, false, true, true, true, true, true, true});
}

std::string format_config(const json& config) {
  std::vector<std::pair<std::string, std::string>> lines;
  flatten(config, "", lines);
  return name_value_lines(lines);
}

}  // namespace callrelay::app
