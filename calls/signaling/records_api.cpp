#include "calls/signaling/records_api.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "base/log.hpp"
#include "calls/core/messages.hpp"
#include "calls/signaling/token.hpp"
#include "calls/store/record_json.hpp"
#include "http/codec.hpp"

namespace callrelay::calls {
namespace {

constexpr const char* kMethods = "GET, OPTIONS";
constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxUserIdBytes = 256;
constexpr size_t kMaxCursorBytes = 512;
constexpr size_t kMaxUnixMsDigits = 15;  // beyond year 33000: a typo, not a time
constexpr size_t kRfc3339Seconds = 19;   // "YYYY-MM-DDTHH:MM:SS"
constexpr const char* kKnownParams[] = {"user",  "tenant", "outcome", "since", "until",
                                        "limit", "cursor", "key",     "api"};

std::optional<int64_t> parse_digits(std::string_view text, size_t max_digits) {
  int64_t v = 0;
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

std::string outcome_names() {
  std::string out;
  for (const Outcome o : kAllOutcomes) out += std::string(out.empty() ? "" : ", ") + to_string(o);
  return out;
}

}  // namespace

std::optional<TimeMs> parse_time_param(std::string_view text) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return parse_digits(text, kMaxUnixMsDigits);
  // RFC 3339 section 5.6 in UTC: the seconds, an optional fraction, then "Z". The fraction is
  // cut or padded to milliseconds, the form parse_iso8601_ms reads.
  if (text.size() < kRfc3339Seconds + 1 || text.back() != 'Z') return std::nullopt;
  std::string fraction(text.substr(kRfc3339Seconds, text.size() - kRfc3339Seconds - 1));
  if (!fraction.empty()) {
    if (fraction.size() < 2 || fraction[0] != '.') return std::nullopt;
    fraction.erase(0, 1);
    if (!std::all_of(fraction.begin(), fraction.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
  }
  fraction.resize(3, '0');
  return parse_iso8601_ms(std::string(text.substr(0, kRfc3339Seconds)) + "." + fraction + "Z");
}

RecordsApi::RecordsApi(RecordStore& store, http::ApiKeys& keys) : store_(store), keys_(keys) {}

http::Response RecordsApi::handle(const http::Request& req, int64_t now_ms) {
  const std::string prefix = std::string(kPath) + "/";
  const bool is_list = req.path == kPath;
  if (!is_list && req.path.rfind(prefix, 0) != 0)
    return http::json_error(404, "no such path '" + req.path.substr(0, 100) + "'");
  if (req.method == "OPTIONS") return keys_.preflight(req, kMethods);
  if (req.method != "GET") {
    http::Response r =
        http::json_error(405, "method " + req.method.substr(0, 16) + " not allowed here (use GET)");
    r.headers.emplace_back("Allow", kMethods);
    return keys_.with_cors(std::move(r), req, nullptr);
  }
  http::Params params;
  if (auto bad = http::read_params(req, params)) return keys_.with_cors(*bad, req, nullptr);
  auto checked = keys_.authorize(req, params, now_ms);
  if (auto* denied = std::get_if<http::Response>(&checked)) return std::move(*denied);
  const http::ApiKey* key = std::get<const http::ApiKey*>(checked);
  http::Response r = is_list ? list(params) : one(req.path.substr(prefix.size()));
  if (r.status == 200) r.headers.emplace_back("Cache-Control", "no-store");
  return keys_.with_cors(std::move(r), req, key);
}

std::variant<RecordQuery, http::Response> RecordsApi::read_query(const http::Params& params) const {
  const auto bad = [](const std::string& message) { return http::json_error(400, message); };
  for (const auto& [name, value] : params) {
    if (std::find(std::begin(kKnownParams), std::end(kKnownParams), name) == std::end(kKnownParams))
      return bad("unknown parameter '" + name.substr(0, 64) +
                 "' (use user, tenant, outcome, since, until, limit, cursor)");
  }
  RecordQuery q;
  q.limit = kDefaultLimit;
  if (auto user = http::find_param(params, "user")) {
    if (!valid_user_id(*user, kMaxUserIdBytes))
      return bad(
          "parameter 'user' must be a user id (1 to 256 bytes, no control characters, "
          "no ':')");
    q.user = std::move(*user);
  }
  if (auto tenant = http::find_param(params, "tenant")) {
    if (!valid_tenant(*tenant))
      return bad("parameter 'tenant' must be 1 to 64 characters of [A-Za-z0-9._-]");
    q.tenant = std::move(*tenant);
  }
  if (auto outcome = http::find_param(params, "outcome")) {
    q.outcome = parse_outcome(*outcome);
    if (!q.outcome) return bad("parameter 'outcome' must be one of " + outcome_names());
  }
  for (const char* name : {"since", "until"}) {
    const auto text = http::find_param(params, name);
    if (!text) continue;
    const auto t = parse_time_param(*text);
    if (!t)
      return bad(std::string("parameter '") + name +
                 "' must be an RFC 3339 UTC time like 2026-12-02T18:45:06Z or Unix milliseconds");
    (std::string_view(name) == "since" ? q.since : q.until) = *t;
  }
  if (q.since && q.until && *q.since > *q.until) return bad("parameter 'since' is after 'until'");
  if (auto limit = http::find_param(params, "limit")) {
    const auto n = parse_digits(*limit, 4);
    if (!n || *n < 1 || static_cast<size_t>(*n) > kMaxLimit)
      return bad("parameter 'limit' must be an integer from 1 to " + std::to_string(kMaxLimit));
    q.limit = static_cast<size_t>(*n);
  }
  if (auto cursor = http::find_param(params, "cursor")) {
    if (cursor->size() > kMaxCursorBytes)
      return bad("parameter 'cursor' is malformed: pass next_cursor of the previous page");
    q.cursor = std::move(*cursor);
  }
  return q;
}

http::Response RecordsApi::list(const http::Params& params) {
  auto query = read_query(params);
  if (auto* bad = std::get_if<http::Response>(&query)) return std::move(*bad);
  RecordPage page;
  try {
    page = store_.query(std::get<RecordQuery>(query));
  } catch (const std::invalid_argument&) {
    return http::json_error(
        400, "parameter 'cursor' is malformed: pass next_cursor of the previous page");
  } catch (const std::exception& e) {
    log::error("call_records.read_failed", {{"error", e.what()}},
               "records API: cannot read call records: ", e.what());
    return http::json_error(500, "cannot read call records");
  }
  nlohmann::json calls = nlohmann::json::array();
  for (const CallRecord& rec : page.records) calls.push_back(to_json(rec));
  nlohmann::json body = {{"calls", std::move(calls)}, {"next_cursor", nullptr}};
  if (!page.next_cursor.empty()) body["next_cursor"] = page.next_cursor;
  http::Response r;
  r.body = http::json_text(body);
  return r;
}

http::Response RecordsApi::one(const std::string& id) {
  if (!valid_call_id(id))
    return http::json_error(400, "malformed call id: expected 'c_' and 22 base64url characters");
  std::optional<CallRecord> rec;
  try {
    rec = store_.get(id);
  } catch (const std::exception& e) {
    log::error("call_records.read_failed", {{"call_id", id}, {"error", e.what()}},
               "records API: cannot read call record: ", e.what());
    return http::json_error(500, "cannot read call records");
  }
  if (!rec) return http::json_error(404, "no call '" + id + "'");
  http::Response r;
  r.body = http::json_text(to_json(*rec));
  return r;
}

}  // namespace callrelay::calls
