#include "calls/store/record_json.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>

namespace callrelay::calls {

namespace {

using Json = nlohmann::json;

Json time_or_null(TimeMs t) { return t == 0 ? Json(nullptr) : Json(format_iso8601_ms(t)); }
Json string_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::optional<Party> parse_party(std::string_view text) {
  for (Party p : {Party::kCaller, Party::kCallee, Party::kServer}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}

/// Reads `digits` decimal digits at `pos` of `text`; nullopt if any is not a digit.
std::optional<int> digits_at(std::string_view text, size_t pos, size_t digits) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data() + pos, text.data() + pos + digits, value);
  if (ec != std::errc() || end != text.data() + pos + digits) return std::nullopt;
  for (size_t i = pos; i < pos + digits; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;  // from_chars accepts '-'
  }
  return value;
}

// Field readers for from_json: each returns false, leaving `out` alone, when the key is missing
// or holds the wrong type, so a hostile body can never make from_json throw.

bool read(const Json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

bool read_nullable(const Json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it != j.end() && it->is_null()) {
    out.clear();
    return true;
  }
  return read(j, key, out);
}

bool read(const Json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) return false;
  out = it->get<bool>();
  return true;
}

template <typename Int>
bool read(const Json& j, const char* key, Int& out) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max())) return false;
    out = static_cast<Int>(v);
    return true;
  }
  if (!it->is_number_integer()) return false;
  auto v = it->get<int64_t>();
  if (v < 0 && !std::numeric_limits<Int>::is_signed) return false;
  out = static_cast<Int>(v);
  return true;
}

bool read_time(const Json& j, const char* key, TimeMs& out) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if (it->is_null()) {
    out = 0;
    return true;
  }
  if (!it->is_string()) return false;
  auto t = parse_iso8601_ms(it->get_ref<const std::string&>());
  if (!t) return false;
  out = *t;
  return true;
}

}  // namespace

std::string format_iso8601_ms(TimeMs unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds{unix_ms}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()),
                int(hms.subseconds().count()));
  return buf;
}

std::optional<TimeMs> parse_iso8601_ms(std::string_view text) {
  // Exactly YYYY-MM-DDTHH:MM:SS.mmmZ (RFC 3339 section 5.6 with three fraction digits).
  static constexpr std::string_view kShape = "0000-00-00T00:00:00.000Z";
  if (text.size() != kShape.size()) return std::nullopt;
  for (size_t i = 0; i < kShape.size(); ++i) {
    if (kShape[i] != '0' && text[i] != kShape[i]) return std::nullopt;
  }
  auto y = digits_at(text, 0, 4), mo = digits_at(text, 5, 2), d = digits_at(text, 8, 2);
  auto h = digits_at(text, 11, 2), mi = digits_at(text, 14, 2), s = digits_at(text, 17, 2);
  auto ms = digits_at(text, 20, 3);
  if (!y || !mo || !d || !h || !mi || !s || !ms) return std::nullopt;
  if (*h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{*y}, month{unsigned(*mo)}, day{unsigned(*d)}};
  if (!ymd.ok()) return std::nullopt;
  const auto t = sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*s} + milliseconds{*ms};
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

nlohmann::json to_json(const CallRecord& r) {
  Json j;
  j["id"] = r.id;
  j["caller"] = r.caller;
  j["callee"] = r.callee;
  j["tenant"] = string_or_null(r.tenant);
  j["caller_device"] = r.caller_device;
  j["answered_device"] = string_or_null(r.answered_device);
  j["media"] = {{"audio", r.media.audio}, {"video", r.media.video}};
  j["created"] = time_or_null(r.created);
  j["answered"] = time_or_null(r.answered);
  j["connected"] = time_or_null(r.connected);
  j["ended"] = time_or_null(r.ended);
  j["outcome"] = to_string(r.outcome);
  j["end_reason"] = r.end_reason;
  j["ended_by"] = to_string(r.ended_by);
  j["setup_ms"] = r.setup_ms < 0 ? Json(nullptr) : Json(r.setup_ms);
  const bool has_duration = r.connected != 0 && r.ended != 0;
  j["duration_ms"] = has_duration ? Json(r.ended - r.connected) : Json(nullptr);
  j["ice_restarts"] = r.ice_restarts;
  j["reconnects"] = r.reconnects;
  j["relay"] = {{"allocations", r.relay_allocations},
                {"bytes_caller_to_callee", r.bytes_caller_to_callee},
                {"bytes_callee_to_caller", r.bytes_callee_to_caller},
                {"relayed", r.relayed()}};
  j["quality"] = quality_to_json(r.quality);
  return j;
}

std::optional<CallRecord> from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  CallRecord r;
  std::string outcome, ended_by;
  bool ok = read(j, "id", r.id) && read(j, "caller", r.caller) && read(j, "callee", r.callee) &&
            read_nullable(j, "tenant", r.tenant) && read(j, "caller_device", r.caller_device) &&
            read_nullable(j, "answered_device", r.answered_device) &&
            read_time(j, "created", r.created) && read_time(j, "answered", r.answered) &&
            read_time(j, "connected", r.connected) && read_time(j, "ended", r.ended) &&
            read(j, "outcome", outcome) && read(j, "end_reason", r.end_reason) &&
            read(j, "ended_by", ended_by) && read(j, "ice_restarts", r.ice_restarts) &&
            read(j, "reconnects", r.reconnects);
  if (!ok) return std::nullopt;
  auto media = j.find("media");
  auto relay = j.find("relay");
  if (media == j.end() || !media->is_object() || relay == j.end() || !relay->is_object()) {
    return std::nullopt;
  }
  ok = read(*media, "audio", r.media.audio) && read(*media, "video", r.media.video) &&
       read(*relay, "allocations", r.relay_allocations) &&
       read(*relay, "bytes_caller_to_callee", r.bytes_caller_to_callee) &&
       read(*relay, "bytes_callee_to_caller", r.bytes_callee_to_caller);
  if (!ok) return std::nullopt;
  auto setup = j.find("setup_ms");
  if (setup == j.end()) return std::nullopt;
  if (setup->is_null()) {
    r.setup_ms = -1;
  } else if (!read(j, "setup_ms", r.setup_ms) || r.setup_ms < 0) {
    return std::nullopt;
  }
  auto o = parse_outcome(outcome);
  auto p = parse_party(ended_by);
  if (!o || !p) return std::nullopt;
  r.outcome = *o;
  r.ended_by = *p;
  if (auto q = j.find("quality"); q != j.end() && !q->is_null()) {
    auto quality = quality_from_json(*q);
    if (!quality) return std::nullopt;
    r.quality = std::move(*quality);
  }
  return r;
}

}  // namespace callrelay::calls
