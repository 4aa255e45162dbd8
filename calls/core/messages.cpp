// Client messages of the signaling protocol (the README, section Calls): one JSON object per
// WebSocket text message. Checks run in a fixed order (size, JSON, object, type, seq, call,
// payload) and the first failure is reported with the dotted path of its field. Unknown fields,
// top-level or in a payload, are ignored so that newer clients still talk to this server; the
// quality payloads (stats, media: messages_quality.cpp) are the exception and refuse them.
#include "calls/core/messages.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "calls/core/messages_quality.hpp"

namespace callrelay::calls {

namespace {

using nlohmann::json;

/// Arrays and objects nested deeper than this are refused before parsing: a message needs
/// three levels (message, payload, media), the rest leaves room for fields of newer clients.
constexpr int kMaxDepth = 8;
/// seq is a JSON number that every client can represent exactly (RFC 8259 section 6).
constexpr uint64_t kMaxSeq = uint64_t{1} << 53;
constexpr size_t kMaxSdpMidBytes = 64;
constexpr size_t kMaxUfragBytes = 256;
/// m= sections a candidate may name (sdpMLineIndex); browsers bundle far fewer.
constexpr uint64_t kMaxMLineIndex = 63;
constexpr size_t kCallIdRandomChars = 22;

constexpr std::array<const char*, kClientTypeCount> kTypeNames = {
    "invite", "ringing", "accept",    "decline",     "cancel",   "hangup",
    "offer",  "answer",  "candidate", "ice-restart", "connected", "stats", "media"};
// A name missing at the end would leave a null in the array instead of failing to compile.
static_assert(kTypeNames.back() != nullptr, "a ClientType without a name");

constexpr std::array<const char*, 3> kHangupReasons = {"user-hangup", "ice-failed", "media-error"};

/// Records the first failure of a message; always returns false so checks read
/// `return fail(...)`.
bool fail(MessageError& e, std::string field, std::string reason) {
  e.field = std::move(field);
  e.reason = std::move(reason);
  return false;
}

/// Whether arrays and objects in `text` nest at most `limit` deep. Only brackets outside
/// strings count; for text that is not JSON the answer does not matter, parsing refuses it.
bool nesting_within(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      if (++depth > limit) return false;
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return true;
}

/// Length of the well-formed UTF-8 sequence at `s[i]` and its code point in `cp`; 0 when it is
/// ill-formed (RFC 3629 section 4: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i, uint32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  // Lead byte: sequence length, the smallest code point of that length, the payload bits.
  size_t len = 4;
  uint32_t min = 0x10000;
  cp = b0 & 0x07u;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    min = 0x80;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    min = 0x800;
    cp = b0 & 0x0Fu;
  } else if (b0 < 0xF0 || b0 > 0xF4) {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const uint8_t b = byte(i + k);
    if ((b & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

/// Unicode control characters (general category Cc): C0, DEL and C1.
bool is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

/// Whether `s` is well-formed UTF-8 without control characters (and without ':' when
/// `allow_colon` is false).
bool printable_utf8(std::string_view s, bool allow_colon) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const size_t len = utf8_sequence(s, i, cp);
    if (len == 0 || is_control(cp) || (!allow_colon && cp == ':')) return false;
    i += len;
  }
  return true;
}

/// Whether every byte of `s` is printable ASCII (0x20..0x7E).
bool printable_ascii(std::string_view s) {
  for (const char ch : s) {
    if (ch < 0x20 || ch > 0x7E) return false;
  }
  return true;
}

/// What is wrong with the shape of an SDP (RFC 8866 section 5), or "" when nothing is: it
/// starts with "v=0", every line is `<type>=<value>` ended by CRLF (LF tolerated) with a
/// lower-case letter as type and no control characters but tab in the value, and it has o=,
/// s= and at least one m= line.
std::string sdp_shape_error(std::string_view sdp) {
  if (!sdp.starts_with("v=0\r\n") && !sdp.starts_with("v=0\n")) {
    return "an SDP must start with the line \"v=0\" (RFC 8866 section 5.1)";
  }
  bool has_o = false, has_s = false, has_m = false;
  size_t line_no = 0;
  for (size_t pos = 0; pos < sdp.size();) {
    ++line_no;
    const size_t nl = sdp.find('\n', pos);
    const std::string at = "SDP line " + std::to_string(line_no);
    if (nl == std::string_view::npos) return at + " does not end with CRLF";
    std::string_view line = sdp.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 2 || line[0] < 'a' || line[0] > 'z' || line[1] != '=') {
      return at + " is not <letter>=<value> (RFC 8866 section 5)";
    }
    for (const char ch : line.substr(2)) {
      const auto u = static_cast<uint8_t>(ch);
      if ((u < 0x20 && u != '\t') || u == 0x7F) return at + " has a control character";
    }
    has_o = has_o || line[0] == 'o';
    has_s = has_s || line[0] == 's';
    has_m = has_m || line[0] == 'm';
  }
  if (!has_o) return "an SDP needs an o= line (RFC 8866 section 5.2)";
  if (!has_s) return "an SDP needs an s= line (RFC 8866 section 5.3)";
  if (!has_m) return "an SDP needs at least one m= line (RFC 8866 section 5.14)";
  return {};
}

std::string at_most(size_t bytes) { return "at most " + std::to_string(bytes) + " bytes"; }

/// The payload member `key`, or null when absent.
const json* member(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

/// `media` {audio, video}: both booleans, at least one true. Absent: audio only.
bool read_media(const json& payload, Media& media, MessageError& e) {
  const json* m = member(payload, "media");
  if (m == nullptr) return true;
  if (!m->is_object()) return fail(e, "payload.media", "must be an object {audio, video}");
  for (const char* key : {"audio", "video"}) {
    const json* v = member(*m, key);
    if (v == nullptr || !v->is_boolean()) {
      return fail(e, std::string("payload.media.") + key, "must be a boolean");
    }
  }
  media.audio = (*m)["audio"].get<bool>();
  media.video = (*m)["video"].get<bool>();
  if (!media.audio && !media.video) {
    return fail(e, "payload.media", "at least one of audio and video must be true");
  }
  return true;
}

bool read_invite(const json& p, const MessageLimits& lim, ClientMessage& m, MessageError& e) {
  const json* to = member(p, "to");
  if (to == nullptr || !to->is_string()) return fail(e, "payload.to", "must be a string (user id)");
  const auto& id = to->get_ref<const std::string&>();
  if (!valid_user_id(id, lim.max_user_id_bytes)) {
    return fail(e, "payload.to",
                "must be 1.." + std::to_string(lim.max_user_id_bytes) +
                    " bytes of UTF-8 without control characters or ':'");
  }
  m.to = id;
  return read_media(p, m.media, e);
}

bool read_decline(const json& p, const MessageLimits& lim, ClientMessage& m, MessageError& e) {
  const json* r = member(p, "reason");
  if (r == nullptr) return true;
  if (!r->is_string()) return fail(e, "payload.reason", "must be a string");
  const auto& reason = r->get_ref<const std::string&>();
  if (reason.size() > lim.max_reason_bytes) {
    return fail(e, "payload.reason", "must be " + at_most(lim.max_reason_bytes));
  }
  if (!printable_utf8(reason, true)) {
    return fail(e, "payload.reason", "must be UTF-8 text without control characters");
  }
  m.reason = reason;
  return true;
}

bool read_hangup(const json& p, ClientMessage& m, MessageError& e) {
  m.reason = kHangupReasons[0];
  const json* r = member(p, "reason");
  if (r == nullptr) return true;
  const std::string expected = "must be one of user-hangup, ice-failed, media-error";
  if (!r->is_string()) return fail(e, "payload.reason", expected);
  for (const char* known : kHangupReasons) {
    if (r->get_ref<const std::string&>() == known) {
      m.reason = known;
      return true;
    }
  }
  return fail(e, "payload.reason", expected);
}

bool read_sdp(const json& p, const MessageLimits& lim, ClientMessage& m, MessageError& e) {
  const json* sdp = member(p, "sdp");
  if (sdp == nullptr || !sdp->is_string()) return fail(e, "payload.sdp", "must be a string (SDP)");
  const auto& text = sdp->get_ref<const std::string&>();
  if (text.size() > lim.max_sdp_bytes) {
    return fail(e, "payload.sdp", "must be " + at_most(lim.max_sdp_bytes));
  }
  if (auto why = sdp_shape_error(text); !why.empty()) return fail(e, "payload.sdp", why);
  m.sdp = text;
  if (m.type != ClientType::kOffer) return true;
  const json* restart = member(p, "restart");
  if (restart == nullptr) return true;
  if (!restart->is_boolean()) return fail(e, "payload.restart", "must be a boolean");
  m.restart = restart->get<bool>();
  return true;
}

/// An optional string member that may also be null (RTCIceCandidateInit, W3C WebRTC 4.8.1).
bool read_nullable_string(const json& p, const char* key, size_t max,
                          std::optional<std::string>& out, MessageError& e) {
  const json* v = member(p, key);
  if (v == nullptr || v->is_null()) return true;
  const std::string field = std::string("payload.") + key;
  if (!v->is_string()) return fail(e, field, "must be a string or null");
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max) return fail(e, field, "must be " + at_most(max));
  if (!printable_utf8(s, true)) return fail(e, field, "must be text without control characters");
  out = s;
  return true;
}

bool read_mline_index(const json& p, std::optional<uint32_t>& out, MessageError& e) {
  const json* v = member(p, "sdpMLineIndex");
  if (v == nullptr || v->is_null()) return true;
  if (!v->is_number_unsigned() || v->get<uint64_t>() > kMaxMLineIndex) {
    return fail(e, "payload.sdpMLineIndex",
                "must be an integer 0.." + std::to_string(kMaxMLineIndex) + " or null");
  }
  out = static_cast<uint32_t>(v->get<uint64_t>());
  return true;
}

/// An RTCIceCandidateInit; "" as candidate is the end-of-candidates indication (RFC 8838
/// section 13).
bool read_candidate(const json& p, const MessageLimits& lim, ClientMessage& m, MessageError& e) {
  const json* c = member(p, "candidate");
  if (c == nullptr || !c->is_string()) return fail(e, "payload.candidate", "must be a string");
  const auto& text = c->get_ref<const std::string&>();
  if (text.size() > lim.max_candidate_bytes) {
    return fail(e, "payload.candidate", "must be " + at_most(lim.max_candidate_bytes));
  }
  if (!text.empty() && (!text.starts_with("candidate:") || !printable_ascii(text))) {
    return fail(e, "payload.candidate",
                "must be \"\" or printable ASCII starting with \"candidate:\" (RFC 8839 5.1)");
  }
  IceCandidate& ic = m.candidate;
  ic.candidate = text;
  if (!read_nullable_string(p, "sdpMid", kMaxSdpMidBytes, ic.sdp_mid, e)) return false;
  if (!read_mline_index(p, ic.sdp_mline_index, e)) return false;
  if (!read_nullable_string(p, "usernameFragment", kMaxUfragBytes, ic.username_fragment, e)) {
    return false;
  }
  if (!text.empty() && !ic.sdp_mid && !ic.sdp_mline_index) {
    return fail(e, "payload.sdpMid", "a candidate needs sdpMid or sdpMLineIndex");
  }
  return true;
}

/// Whether the type cannot be understood without a payload.
bool needs_payload(ClientType t) {
  return t == ClientType::kInvite || t == ClientType::kOffer || t == ClientType::kAnswer ||
         t == ClientType::kCandidate || t == ClientType::kStats || t == ClientType::kMedia;
}

bool read_payload(const json& j, const MessageLimits& lim, ClientMessage& m, MessageError& e) {
  static const json kEmpty = json::object();
  const json* p = member(j, "payload");
  if (p == nullptr && needs_payload(m.type)) {
    return fail(e, "payload", std::string("an object is required for ") + to_string(m.type));
  }
  if (p != nullptr && !p->is_object()) return fail(e, "payload", "must be an object");
  const json& payload = p == nullptr ? kEmpty : *p;
  switch (m.type) {
    case ClientType::kInvite:
      return read_invite(payload, lim, m, e);
    case ClientType::kAccept:
      return read_media(payload, m.media, e);
    case ClientType::kDecline:
      return read_decline(payload, lim, m, e);
    case ClientType::kHangup:
      return read_hangup(payload, m, e);
    case ClientType::kOffer:
    case ClientType::kAnswer:
      return read_sdp(payload, lim, m, e);
    case ClientType::kCandidate:
      return read_candidate(payload, lim, m, e);
    case ClientType::kStats:
      return detail::read_stats(payload, m.stats, e);
    case ClientType::kMedia:
      return detail::read_media_state(payload, m.media_state, e);
    case ClientType::kRinging:
    case ClientType::kCancel:
    case ClientType::kIceRestart:
    case ClientType::kConnected:
      return true;
  }
  return true;
}

std::optional<ClientType> read_type(const json& j) {
  const json* t = member(j, "type");
  if (t == nullptr || !t->is_string()) return std::nullopt;
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (t->get_ref<const std::string&>() == kTypeNames[i]) return static_cast<ClientType>(i);
  }
  return std::nullopt;
}

std::optional<uint64_t> read_seq(const json& j) {
  const json* s = member(j, "seq");
  if (s == nullptr || !s->is_number_unsigned()) return std::nullopt;
  const auto v = s->get<uint64_t>();
  if (v < 1 || v > kMaxSeq) return std::nullopt;
  return v;
}

/// The call id when the message carries a well-formed one (also for the error's echo).
std::optional<std::string> read_call(const json& j) {
  const json* c = member(j, "call");
  if (c == nullptr || !c->is_string() || !valid_call_id(c->get_ref<const std::string&>())) {
    return std::nullopt;
  }
  return c->get<std::string>();
}

/// type, seq and call of a parsed object; the payload follows.
bool read_envelope(const json& j, ClientMessage& m, MessageError& e) {
  const auto type = read_type(j);
  const auto seq = read_seq(j);
  const auto call = read_call(j);
  if (seq) e.seq = seq;
  if (call && type != ClientType::kInvite) e.call = *call;
  if (!type) {
    return fail(e, "type",
                "must be one of invite, ringing, accept, decline, cancel, hangup, offer, "
                "answer, candidate, ice-restart, connected, stats, media");
  }
  m.type = *type;
  if (!seq) return fail(e, "seq", "must be an integer 1..2^53");
  m.seq = *seq;
  if (m.type == ClientType::kInvite) return true;  // the server names the call it creates
  if (!call) {
    return fail(e, "call", "must be a call id (\"c_\" and 22 characters of A-Z a-z 0-9 _ -)");
  }
  m.call = *call;
  return true;
}

}  // namespace

const char* to_string(ClientType t) {
  const auto i = static_cast<size_t>(t);
  return i < kTypeNames.size() ? kTypeNames[i] : "unknown";
}

std::variant<ClientMessage, MessageError> parse_client_message(std::string_view text,
                                                               const MessageLimits& limits) {
  MessageError e;
  if (text.size() > limits.max_message_bytes) {
    e.code = "too-large";
    e.reason = "a message must be " + at_most(limits.max_message_bytes);
    return e;
  }
  if (!nesting_within(text, kMaxDepth)) {
    e.reason = "arrays and objects nest at most " + std::to_string(kMaxDepth) + " levels deep";
    return e;
  }
  const json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    e.reason = "not valid JSON (RFC 8259) in UTF-8";
    return e;
  }
  if (!j.is_object()) {
    e.reason = "a message must be a JSON object";
    return e;
  }
  ClientMessage m;
  if (!read_envelope(j, m, e) || !read_payload(j, limits, m, e)) return e;
  return m;
}

bool valid_user_id(std::string_view id, size_t max_bytes) {
  return !id.empty() && id.size() <= max_bytes && printable_utf8(id, false);
}

bool valid_call_id(std::string_view id) {
  if (id.size() != 2 + kCallIdRandomChars || !id.starts_with("c_")) return false;
  for (const char ch : id.substr(2)) {
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace callrelay::calls
