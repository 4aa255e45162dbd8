// `stats` and `media` payloads (README, section Call quality). A `stats` report carries the
// figures of RTCStatsReport (W3C webrtc-stats) for one interval; every figure has a range, so a
// hostile or broken client cannot push a score or a histogram out of shape. Fields the server
// does not know are refused; a field sent as null counts as not reported (browsers lack some
// figures until RTCP arrives, and JSON.stringify writes NaN as null).
#include "calls/core/messages_quality.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

namespace callrelay::calls::detail {

namespace {

using nlohmann::json;

constexpr uint32_t kMinIntervalMs = 1000;
constexpr uint32_t kMaxIntervalMs = 60000;
constexpr size_t kMaxStreams = 2;  // one per kind
constexpr uint64_t kMaxCount = 10'000'000;
constexpr double kMaxMs = 60000;
constexpr double kMaxBitrate = 1e10;
/// Unknown field names longer than this are not repeated in the error.
constexpr size_t kMaxEchoedKeyBytes = 32;

constexpr std::array<const char*, 4> kCandidateTypes = {"host", "srflx", "prflx", "relay"};
constexpr std::array<const char*, 3> kProtocols = {"udp", "tcp", "tls"};
constexpr std::array<const char*, 3> kMediaReasons = {"user", "poor-quality", "quality-restored"};

bool fail(MessageError& e, std::string field, std::string reason) {
  e.field = std::move(field);
  e.reason = std::move(reason);
  return false;
}

/// One JSON object of the payload and its dotted path, for reading its fields.
struct Obj {
  const json& j;
  std::string path;

  std::string field(const char* key) const { return path + "." + key; }

  /// The member `key`, or null when it is absent or JSON null.
  const json* get(const char* key) const {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }

  /// Refuses any member not in `known`. The error names the member when its name is short
  /// printable ASCII; any other name is not echoed back to the client.
  bool only(std::initializer_list<const char*> known, MessageError& e) const {
    for (const auto& [key, value] : j.items()) {
      bool ok = false;
      std::string expected;
      for (const char* k : known) {
        ok = ok || key == k;
        expected += std::string(expected.empty() ? "" : ", ") + k;
      }
      if (ok) continue;
      const bool echo = !key.empty() && key.size() <= kMaxEchoedKeyBytes &&
                        std::all_of(key.begin(), key.end(),
                                    [](char c) { return c >= 0x21 && c <= 0x7E && c != '.'; });
      return echo ? fail(e, path + "." + key, "is not a field of " + path + " (" + expected + ")")
                  : fail(e, path, "has a field that is not one of " + expected);
    }
    return true;
  }

  bool count(const char* key, std::optional<uint64_t>& out, MessageError& e) const {
    const json* v = get(key);
    if (v == nullptr) return true;
    if (!v->is_number_unsigned() || v->get<uint64_t>() > kMaxCount) {
      return fail(e, field(key), "must be an integer 0..10000000");
    }
    out = v->get<uint64_t>();
    return true;
  }

  bool number(const char* key, double max, std::optional<double>& out, MessageError& e) const {
    const json* v = get(key);
    if (v == nullptr) return true;
    const double d = v->is_number() ? v->get<double>() : -1;
    if (!std::isfinite(d) || d < 0 || d > max) {
      char range[32];
      std::snprintf(range, sizeof range, "0..%.0f", max);
      return fail(e, field(key), std::string("must be a number ") + range);
    }
    out = d;
    return true;
  }

  /// A string among `names`: its index.
  template <size_t N>
  bool one_of(const char* key, const std::array<const char*, N>& names, std::optional<size_t>& out,
              MessageError& e) const {
    const json* v = get(key);
    if (v == nullptr) return true;
    std::string expected = "must be one of";
    for (size_t i = 0; i < N; ++i) {
      if (v->is_string() && v->get_ref<const std::string&>() == names[i]) {
        out = i;
        return true;
      }
      expected += std::string(i == 0 ? " " : ", ") + names[i];
    }
    return fail(e, field(key), expected);
  }
};

template <typename Enum, size_t N>
bool read_enum(const Obj& o, const char* key, const std::array<const char*, N>& names,
               std::optional<Enum>& out, MessageError& e) {
  std::optional<size_t> i;
  if (!o.one_of(key, names, i, e)) return false;
  if (i) out = static_cast<Enum>(*i);
  return true;
}

bool read_kind(const Obj& o, MediaKind& out, MessageError& e) {
  static constexpr std::array<const char*, 2> kKinds = {"audio", "video"};
  std::optional<MediaKind> kind;
  if (!read_enum(o, "kind", kKinds, kind, e)) return false;
  if (!kind) return fail(e, o.field("kind"), "is required: audio or video");
  out = *kind;
  return true;
}

bool read_inbound(const Obj& o, InboundStats& s, MessageError& e) {
  return o.only({"kind", "packets_received", "packets_lost", "jitter_ms", "bitrate_bps",
                 "frames_decoded", "frames_dropped"},
                e) &&
         read_kind(o, s.kind, e) && o.count("packets_received", s.packets_received, e) &&
         o.count("packets_lost", s.packets_lost, e) &&
         o.number("jitter_ms", kMaxMs, s.jitter_ms, e) &&
         o.number("bitrate_bps", kMaxBitrate, s.bitrate_bps, e) &&
         o.count("frames_decoded", s.frames_decoded, e) &&
         o.count("frames_dropped", s.frames_dropped, e);
}

bool read_outbound(const Obj& o, OutboundStats& s, MessageError& e) {
  return o.only({"kind", "packets_sent", "bitrate_bps", "rtt_ms", "remote_packets_lost",
                 "remote_jitter_ms"},
                e) &&
         read_kind(o, s.kind, e) && o.count("packets_sent", s.packets_sent, e) &&
         o.number("bitrate_bps", kMaxBitrate, s.bitrate_bps, e) &&
         o.number("rtt_ms", kMaxMs, s.rtt_ms, e) &&
         o.count("remote_packets_lost", s.remote_packets_lost, e) &&
         o.number("remote_jitter_ms", kMaxMs, s.remote_jitter_ms, e);
}

/// payload.inbound or payload.outbound: at most one entry per kind.
template <typename Stats, typename ReadOne>
bool read_streams(const Obj& payload, const char* key, std::vector<Stats>& out, ReadOne read_one,
                  MessageError& e) {
  const json* a = payload.get(key);
  if (a == nullptr) return true;
  const std::string field = payload.field(key);
  if (!a->is_array() || a->size() > kMaxStreams) {
    return fail(e, field, "must be an array of at most 2 entries (one per kind)");
  }
  for (size_t i = 0; i < a->size(); ++i) {
    const Obj entry{(*a)[i], field + "[" + std::to_string(i) + "]"};
    if (!entry.j.is_object()) return fail(e, entry.path, "must be an object");
    Stats s;
    if (!read_one(entry, s, e)) return false;
    for (const Stats& before : out) {
      if (before.kind == s.kind) return fail(e, entry.field("kind"), "appears twice");
    }
    out.push_back(s);
  }
  return true;
}

bool read_pair(const Obj& payload, std::optional<PairStats>& out, MessageError& e) {
  const json* p = payload.get("pair");
  if (p == nullptr) return true;
  const Obj o{*p, payload.field("pair")};
  if (!p->is_object()) return fail(e, o.path, "must be an object");
  PairStats s;
  const bool ok =
      o.only({"local_type", "remote_type", "protocol", "relay_protocol", "rtt_ms"}, e) &&
      read_enum(o, "local_type", kCandidateTypes, s.local_type, e) &&
      read_enum(o, "remote_type", kCandidateTypes, s.remote_type, e) &&
      read_enum(o, "protocol", kProtocols, s.protocol, e) &&
      read_enum(o, "relay_protocol", kProtocols, s.relay_protocol, e) &&
      o.number("rtt_ms", kMaxMs, s.rtt_ms, e);
  if (ok) out = s;
  return ok;
}

}  // namespace

bool read_stats(const json& payload, StatsReport& out, MessageError& e) {
  const Obj o{payload, "payload"};
  if (!o.only({"interval_ms", "inbound", "outbound", "pair"}, e)) return false;
  const json* iv = o.get("interval_ms");
  if (iv == nullptr || !iv->is_number_unsigned() || iv->get<uint64_t>() < kMinIntervalMs ||
      iv->get<uint64_t>() > kMaxIntervalMs) {
    return fail(e, o.field("interval_ms"), "is required: an integer 1000..60000");
  }
  out.interval_ms = static_cast<uint32_t>(iv->get<uint64_t>());
  return read_streams(o, "inbound", out.inbound, read_inbound, e) &&
         read_streams(o, "outbound", out.outbound, read_outbound, e) && read_pair(o, out.pair, e);
}

bool read_media_state(const json& payload, MediaState& out, MessageError& e) {
  const Obj o{payload, "payload"};
  if (!o.only({"audio", "video", "reason"}, e)) return false;
  for (auto [key, slot] : {std::pair{"audio", &out.audio}, std::pair{"video", &out.video}}) {
    const auto it = payload.find(key);
    if (it == payload.end()) continue;
    if (!it->is_boolean()) return fail(e, o.field(key), "must be a boolean");
    *slot = it->get<bool>();
  }
  if (!out.audio && !out.video) {
    return fail(e, "payload", "needs audio or video (booleans: what this side now sends)");
  }
  std::optional<MediaReason> reason;
  if (!read_enum(o, "reason", kMediaReasons, reason, e)) return false;
  if (!reason) {
    return fail(e, o.field("reason"), "is required: user, poor-quality or quality-restored");
  }
  out.reason = *reason;
  return true;
}

}  // namespace callrelay::calls::detail

namespace callrelay::calls {

namespace {

template <size_t N>
const char* name_at(const std::array<const char*, N>& names, size_t i) {
  return i < N ? names[i] : "unknown";
}

}  // namespace

const char* to_string(MediaReason r) {
  return name_at(detail::kMediaReasons, static_cast<size_t>(r));
}
const char* to_string(CandidateType t) {
  return name_at(detail::kCandidateTypes, static_cast<size_t>(t));
}
const char* to_string(PairProtocol p) {
  return name_at(detail::kProtocols, static_cast<size_t>(p));
}

}  // namespace callrelay::calls
