// Label tables for the bounded label sets.
#include "telemetry/metric_labels.hpp"

#include <algorithm>

namespace callrelay::telemetry {
namespace {

constexpr std::array<stun::Method, kMethods - 1> kKnownMethods = {
    stun::Method::kBinding,        stun::Method::kAllocate,
    stun::Method::kRefresh,        stun::Method::kSend,
    stun::Method::kData,           stun::Method::kCreatePermission,
    stun::Method::kChannelBind,    stun::Method::kConnect,
    stun::Method::kConnectionBind, stun::Method::kConnectionAttempt};
constexpr std::array<std::string_view, kMethods> kMethodLabels = {"binding",
                                                                  "allocate",
                                                                  "refresh",
                                                                  "send",
                                                                  "data",
                                                                  "create_permission",
                                                                  "channel_bind",
                                                                  "connect",
                                                                  "connection_bind",
                                                                  "connection_attempt",
                                                                  "other"};

/// Every error code RFC 8489, RFC 8656 and RFC 6062 define; slot 0 is success, the last "other".
constexpr std::array<uint16_t, kCodes - 2> kKnownCodes = {300, 400, 401, 403, 420, 437, 438, 440,
                                                          441, 442, 443, 446, 447, 486, 500, 508};
constexpr std::array<std::string_view, kCodes> kCodeLabels = {
    "success", "300", "400", "401", "403", "420", "437", "438", "440",
    "441",     "442", "443", "446", "447", "486", "500", "508", "other"};

constexpr std::array<std::string_view, kSecretSlots> kSecretLabels = {
    "0", "1", "2", "3", "4", "5", "6", "7", "other", "static"};

template <size_t N>
std::string_view at(const std::array<std::string_view, N>& table, size_t i) {
  return i < N ? table[i] : std::string_view("other");
}

/// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629 section 4), or 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

size_t transport_index(core::Transport t) {
  const auto i = static_cast<size_t>(t);
  return i < kTransports ? i : 0;
}

size_t family_index(stun::Family f) { return f == stun::Family::kIPv6 ? 1 : 0; }

size_t family_index(const core::AllocationInfo& a) {
  return a.relayed_additional ? 2 : family_index(a.relayed.family);
}

size_t method_index(stun::Method m) {
  for (size_t i = 0; i < kKnownMethods.size(); ++i) {
    if (kKnownMethods[i] == m) return i;
  }
  return kMethods - 1;
}

size_t code_index(uint16_t code) {
  if (code == 0) return 0;
  for (size_t i = 0; i < kKnownCodes.size(); ++i) {
    if (kKnownCodes[i] == code) return i + 1;
  }
  return kCodes - 1;
}

size_t secret_index(int index) {
  if (index < 0) return kSecretSlots - 1;
  if (index < static_cast<int>(kSecretSlots) - 2) return static_cast<size_t>(index);
  return kSecretSlots - 2;
}

std::string_view transport_label(size_t i) {
  return core::to_string(static_cast<core::Transport>(i < kTransports ? i : 0));
}
std::string_view family_label(size_t i) {
  if (i == 2) return "dual";
  return i == 1 ? "ipv6" : "ipv4";
}
std::string_view direction_label(size_t i) { return i == 0 ? "client_to_peer" : "peer_to_client"; }
std::string_view method_label(size_t i) { return at(kMethodLabels, i); }
std::string_view code_label(size_t i) { return at(kCodeLabels, i); }
std::string_view secret_label(size_t i) { return at(kSecretLabels, i); }
std::string_view end_reason_label(size_t i) {
  return core::to_string(static_cast<core::EndReason>(i));
}
std::string_view auth_failure_label(size_t i) {
  return core::to_string(static_cast<core::AuthFailure>(i));
}
std::string_view deny_reason_label(size_t i) {
  return core::to_string(static_cast<core::PeerDenyReason>(i));
}
std::string_view drop_reason_label(size_t i) {
  return core::to_string(static_cast<core::DropReason>(i));
}

std::string sanitize_label(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::string_view piece;
    size_t advance = 1;
    if (c < 0x80) {
      piece = (c < 0x20 || c == 0x7F) ? std::string_view("?") : s.substr(i, 1);
    } else if (const size_t n = utf8_sequence(s, i); n != 0) {
      piece = s.substr(i, n);
      advance = n;
    } else {
      piece = kReplacement;
    }
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    i += advance;
  }
  return out;
}

}  // namespace callrelay::telemetry
