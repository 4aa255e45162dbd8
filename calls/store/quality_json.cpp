// The record's "quality" object (README, section Call quality) and its inverse. Shared by the
// API, the webhook and SQLite's quality column, so one shape is written everywhere.
#include <cmath>
#include <limits>
#include <string>

#include "calls/store/record_json.hpp"

namespace callrelay::calls {

namespace {

using Json = nlohmann::json;

constexpr Direction kDirections[] = {Direction::kCallerToCallee, Direction::kCalleeToCaller};
constexpr MediaKind kKinds[] = {MediaKind::kAudio, MediaKind::kVideo};
constexpr QualityClass kClasses[] = {QualityClass::kExcellent, QualityClass::kGood,
                                     QualityClass::kFair, QualityClass::kPoor};

Json rtt_or_null(double ms) { return ms < 0 ? Json(nullptr) : Json(ms); }

Json summary_to_json(const QualitySummary& s) {
  if (s.intervals == 0) return nullptr;
  Json classes = Json::object();
  for (QualityClass c : kClasses) classes[to_string(c)] = s.ms_in_class[static_cast<size_t>(c)];
  const double loss =
      s.expected == 0 ? 0 : static_cast<double>(s.lost) / static_cast<double>(s.expected);
  return {{"intervals", s.intervals},
          {"mean_mos", s.mean_mos},
          {"worst_mos", s.worst_mos},
          {"loss_ratio", loss},
          {"worst_loss_ratio", s.worst_loss_ratio},
          {"packets_expected", s.expected},
          {"packets_lost", s.lost},
          {"mean_jitter_ms", s.mean_jitter_ms},
          {"worst_jitter_ms", s.worst_jitter_ms},
          {"mean_rtt_ms", rtt_or_null(s.mean_rtt_ms)},
          {"worst_rtt_ms", rtt_or_null(s.worst_rtt_ms)},
          {"ms_in_class", classes}};
}

// Readers: false when the key is missing or of the wrong type or range; never throw.

const Json* find(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

template <typename Int>
bool read_uint(const Json& j, const char* key, Int& out) {
  const Json* v = find(j, key);
  // Values written from signed fields (times, milliseconds) are integers, not unsigned ones.
  if (v == nullptr || !v->is_number_integer()) return false;
  if (!v->is_number_unsigned() && v->get<int64_t>() < 0) return false;
  const auto u = v->get<uint64_t>();
  if (u > static_cast<uint64_t>(std::numeric_limits<Int>::max())) return false;
  out = static_cast<Int>(u);
  return true;
}

/// A finite, non-negative number; null too (as -1) when `nullable`.
bool read_number(const Json& j, const char* key, double& out, bool nullable = false) {
  const Json* v = find(j, key);
  if (v == nullptr) return false;
  if (nullable && v->is_null()) {
    out = -1;
    return true;
  }
  if (!v->is_number()) return false;
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < 0) return false;
  out = d;
  return true;
}

bool summary_from_json(const Json* j, QualitySummary& s) {
  if (j == nullptr) return false;
  if (j->is_null()) {
    s = {};
    return true;
  }
  const Json* classes = find(*j, "ms_in_class");
  if (classes == nullptr || !classes->is_object()) return false;
  for (QualityClass c : kClasses) {
    if (!read_uint(*classes, to_string(c), s.ms_in_class[static_cast<size_t>(c)])) return false;
  }
  // loss_ratio is derived from the packet totals and not read.
  return read_uint(*j, "intervals", s.intervals) && s.intervals > 0 &&
         read_number(*j, "mean_mos", s.mean_mos) && read_number(*j, "worst_mos", s.worst_mos) &&
         read_number(*j, "worst_loss_ratio", s.worst_loss_ratio) &&
         read_uint(*j, "packets_expected", s.expected) && read_uint(*j, "packets_lost", s.lost) &&
         read_number(*j, "mean_jitter_ms", s.mean_jitter_ms) &&
         read_number(*j, "worst_jitter_ms", s.worst_jitter_ms) &&
         read_number(*j, "mean_rtt_ms", s.mean_rtt_ms, true) &&
         read_number(*j, "worst_rtt_ms", s.worst_rtt_ms, true);
}

bool fallback_from_json(const Json& j, VideoFallback& f) {
  const Json* party = find(j, "party");
  if (party == nullptr || !party->is_string()) return false;
  if (*party == "caller") {
    f.party = Party::kCaller;
  } else if (*party == "callee") {
    f.party = Party::kCallee;
  } else {
    return false;
  }
  return read_uint(j, "at", f.at) && read_uint(j, "restored", f.restored);
}

}  // namespace

nlohmann::json quality_to_json(const CallQuality& q) {
  Json j = Json::object();
  for (Direction d : kDirections) {
    Json& by_kind = j[to_string(d)] = Json::object();
    for (MediaKind k : kKinds) {
      const SourcePair& p = q.streams[static_cast<size_t>(d)][static_cast<size_t>(k)];
      by_kind[to_string(k)] = {{"relay", summary_to_json(p.relay)},
                               {"client", summary_to_json(p.client)}};
    }
  }
  j["client_underreports"] = q.client_underreports;
  j["loss_after_relay"] = q.loss_after_relay;
  Json& fallbacks = j["video_fallbacks"] = Json::array();
  for (const VideoFallback& f : q.video_fallbacks) {
    fallbacks.push_back({{"party", to_string(f.party)}, {"at", f.at}, {"restored", f.restored}});
  }
  return j;
}

std::optional<CallQuality> quality_from_json(const nlohmann::json& j) {
  CallQuality q;
  if (!j.is_object()) return std::nullopt;
  for (Direction d : kDirections) {
    const Json* by_kind = find(j, to_string(d));
    for (MediaKind k : kKinds) {
      const Json* pair = by_kind ? find(*by_kind, to_string(k)) : nullptr;
      SourcePair& p = q.streams[static_cast<size_t>(d)][static_cast<size_t>(k)];
      if (pair == nullptr || !summary_from_json(find(*pair, "relay"), p.relay) ||
          !summary_from_json(find(*pair, "client"), p.client)) {
        return std::nullopt;
      }
    }
  }
  if (!read_uint(j, "client_underreports", q.client_underreports) ||
      !read_uint(j, "loss_after_relay", q.loss_after_relay)) {
    return std::nullopt;
  }
  const Json* fallbacks = find(j, "video_fallbacks");
  if (fallbacks == nullptr || !fallbacks->is_array() || fallbacks->size() > kMaxVideoFallbacks) {
    return std::nullopt;
  }
  for (const Json& f : *fallbacks) {
    if (!fallback_from_json(f, q.video_fallbacks.emplace_back())) return std::nullopt;
  }
  return q;
}

}  // namespace callrelay::calls
