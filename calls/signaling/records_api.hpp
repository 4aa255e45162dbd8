// GET /api/v1/calls and GET /api/v1/calls/{id}: call records for an app backend holding an API
// key, filtered and paged (keyset cursor), in the one JSON shape of calls/store/record_json.hpp.
// Thread-safe as long as the RecordStore is (SqliteStore is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "calls/store/record_store.hpp"
#include "http/api_keys.hpp"
#include "http/message.hpp"

namespace callrelay::calls {

class RecordsApi {
 public:
  static constexpr const char* kPath = "/api/v1/calls";
  static constexpr size_t kMaxLimit = 1000;

  /// `store` and `keys` must outlive this object.
  RecordsApi(RecordStore& store, http::ApiKeys& keys);

  /// GET kPath: the records matching `user` (caller or callee), `tenant`, `outcome`, `since`
  /// and `until` (RFC 3339 UTC, "2026-12-02T18:45:06Z" with optional fraction, or Unix ms),
  /// newest first, `limit` (1..1000, default 100) per page from `cursor`:
  /// {"calls": [...], "next_cursor": "..." or null}. GET kPath/{id}: one record, 404 when
  /// unknown, 400 for a malformed id. API key required (401); a bad parameter is a 400 naming
  /// it. OPTIONS is the CORS preflight; other methods get 405; other paths 404.
  http::Response handle(const http::Request& req, int64_t now_ms);

 private:
  http::Response list(const http::Params& params);
  http::Response one(const std::string& id);
  /// The query from the parameters, or the 400 to send.
  std::variant<RecordQuery, http::Response> read_query(const http::Params& params) const;

  RecordStore& store_;
  http::ApiKeys& keys_;
};

/// Parses an RFC 3339 UTC time ("YYYY-MM-DDTHH:MM:SS[.fraction]Z", the fraction cut to
/// milliseconds) or Unix milliseconds (digits only); nullopt for anything else.
std::optional<TimeMs> parse_time_param(std::string_view text);

}  // namespace callrelay::calls
