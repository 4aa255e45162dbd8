// libFuzzer target: parse_client_message on arbitrary text, with the default limits and with
// tiny ones. Whatever parses must hold the parser's promises (type in range, a well-formed call
// id where one is required, every size within its limit), and every result, message or error,
// must serialize to JSON, as the signaling service forwards it. The input is also tried as a
// user id, on which the UTF-8 check must agree with nlohmann's.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "calls/core/messages.hpp"

namespace {

using namespace callrelay::calls;

constexpr uint64_t kMaxSeq = uint64_t{1} << 53;

void require(bool condition) {
  if (!condition) std::abort();
}

void check_error(std::string_view text, const MessageLimits& lim, const MessageError& e) {
  require(e.code == "invalid" || e.code == "too-large");
  require((e.code == "too-large") == (text.size() > lim.max_message_bytes));
  require(!e.reason.empty());
  require(!e.seq || (*e.seq >= 1 && *e.seq <= kMaxSeq));
  require(e.call.empty() || valid_call_id(e.call));
  // The error reply; dump() throws (and so aborts here) on anything but UTF-8.
  nlohmann::json reply = {{"type", "error"},
                          {"code", e.code},
                          {"field", e.field},
                          {"reason", e.reason},
                          {"call", e.call}};
  require(!reply.dump().empty());
}

void check_candidate(const MessageLimits& lim, const IceCandidate& c) {
  require(c.candidate.size() <= lim.max_candidate_bytes);
  require(c.candidate.empty() || c.candidate.starts_with("candidate:"));
  require(c.candidate.empty() || c.sdp_mid || c.sdp_mline_index);
  require(!c.sdp_mline_index || *c.sdp_mline_index <= 63);
  require(!c.sdp_mid || c.sdp_mid->size() <= 64);
  require(!c.username_fragment || c.username_fragment->size() <= 256);
}

void check_message(std::string_view text, const MessageLimits& lim, const ClientMessage& m) {
  require(text.size() <= lim.max_message_bytes);
  require(static_cast<size_t>(m.type) < kClientTypeCount);
  require(m.seq >= 1 && m.seq <= kMaxSeq);
  if (m.type == ClientType::kInvite) {
    require(m.call.empty() && valid_user_id(m.to, lim.max_user_id_bytes));
  } else {
    require(valid_call_id(m.call) && m.to.empty());
  }
  require(m.media.audio || m.media.video);
  const bool has_sdp = m.type == ClientType::kOffer || m.type == ClientType::kAnswer;
  require(has_sdp ? m.sdp.size() <= lim.max_sdp_bytes && m.sdp.starts_with("v=0") : m.sdp.empty());
  require(!m.restart || m.type == ClientType::kOffer);
  if (m.type == ClientType::kHangup) {
    require(m.reason == "user-hangup" || m.reason == "ice-failed" || m.reason == "media-error");
  } else {
    require(m.reason.size() <= lim.max_reason_bytes);
    require(m.type == ClientType::kDecline || m.reason.empty());
  }
  check_candidate(lim, m.candidate);
  // What the engine forwards to the other device.
  nlohmann::json fwd = {{"type", to_string(m.type)},
                        {"call", m.call},
                        {"to", m.to},
                        {"sdp", m.sdp},
                        {"reason", m.reason},
                        {"candidate", m.candidate.candidate}};
  if (m.candidate.sdp_mid) fwd["sdpMid"] = *m.candidate.sdp_mid;
  if (m.candidate.username_fragment) fwd["usernameFragment"] = *m.candidate.username_fragment;
  require(!fwd.dump().empty());
}

void check(std::string_view text, const MessageLimits& lim) {
  const auto r = parse_client_message(text, lim);
  if (const auto* e = std::get_if<MessageError>(&r)) {
    check_error(text, lim, *e);
  } else {
    check_message(text, lim, std::get<ClientMessage>(r));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const MessageLimits kDefault{};
  static const MessageLimits kTiny{.max_message_bytes = 512,
                                   .max_sdp_bytes = 96,
                                   .max_candidate_bytes = 40,
                                   .max_user_id_bytes = 4,
                                   .max_reason_bytes = 8};
  check(text, kDefault);
  check(text, kTiny);
  // The raw bytes as a user id (tokens carry them unparsed): what passes must be UTF-8, which
  // nlohmann checks again when it serializes (and throws, so aborts, when it is not).
  if (valid_user_id(text, text.size())) {
    require(text.find(':') == std::string_view::npos);
    require(!nlohmann::json(std::string(text)).dump().empty());
  }
  return 0;
}
