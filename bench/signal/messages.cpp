#include "bench/signal/messages.hpp"

#include <nlohmann/json.hpp>

namespace callrelay::bench::signal {
namespace {

using nlohmann::json;

/// A one-audio-section SDP of the shape browsers send (RFC 8866 section 5; RFC 8829).
std::string fake_sdp(bool offer) {
  return std::string("v=0\r\n") +
         "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
         "s=-\r\n"
         "t=0 0\r\n"
         "a=group:BUNDLE 0\r\n"
         "a=msid-semantic: WMS\r\n"
         "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
         "c=IN IP4 0.0.0.0\r\n"
         "a=rtcp:9 IN IP4 0.0.0.0\r\n"
         "a=ice-ufrag:" +
         (offer ? "Of1c" : "An5w") +
         "\r\n"
         "a=ice-pwd:bench0signal0password00\r\n"
         "a=ice-options:trickle\r\n"
         "a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:"
         "3F:1B:72:C8:2B:6F:90:38:F4:B1:3C:2E\r\n"
         "a=setup:" +
         (offer ? "actpass" : "active") +
         "\r\n"
         "a=mid:0\r\n"
         "a=sendrecv\r\n"
         "a=rtcp-mux\r\n"
         "a=rtpmap:111 opus/48000/2\r\n"
         "a=fmtp:111 minptime=10;useinbandfec=1\r\n";
}

std::string with_call(const char* type, uint64_t seq, std::string_view call, json payload) {
  json m = {{"type", type}, {"seq", seq}, {"call", call}};
  if (!payload.is_null()) m["payload"] = std::move(payload);
  return m.dump();
}

json audio_only() { return {{"audio", true}, {"video", false}}; }

}  // namespace

std::string invite_message(uint64_t seq, std::string_view to) {
  return json{{"type", "invite"}, {"seq", seq}, {"payload", {{"to", to}, {"media", audio_only()}}}}
      .dump();
}

std::string ringing_message(uint64_t seq, std::string_view call) {
  return with_call("ringing", seq, call, nullptr);
}

std::string accept_message(uint64_t seq, std::string_view call) {
  return with_call("accept", seq, call, {{"media", audio_only()}});
}

std::string offer_message(uint64_t seq, std::string_view call) {
  return with_call("offer", seq, call, {{"sdp", fake_sdp(true)}});
}

std::string answer_message(uint64_t seq, std::string_view call) {
  return with_call("answer", seq, call, {{"sdp", fake_sdp(false)}});
}

std::string connected_message(uint64_t seq, std::string_view call) {
  return with_call("connected", seq, call, nullptr);
}

std::string hangup_message(uint64_t seq, std::string_view call) {
  return with_call("hangup", seq, call, {{"reason", "user-hangup"}});
}

CandidateMaker::CandidateMaker(std::string_view call, bool caller)
    : call_json_(json(call).dump()), caller_(caller) {}

std::string CandidateMaker::make(uint64_t seq) const {
  // A host candidate (RFC 8839 section 5.1) whose port changes with seq, as a gathering
  // browser's would; 192.0.2.0/24 and 198.51.100.0/24 are documentation blocks (RFC 5737).
  const std::string port = std::to_string(40000 + seq % 20000);
  std::string m;
  m.reserve(256);
  m.append(R"({"type":"candidate","seq":)").append(std::to_string(seq));
  m.append(R"(,"call":)").append(call_json_);
  m.append(R"(,"payload":{"candidate":"candidate:)").append(caller_ ? "1" : "2");
  m.append(" 1 udp 2122260223 ").append(caller_ ? "192.0.2.10 " : "198.51.100.20 ");
  m.append(port).append(R"( typ host generation 0 ufrag )").append(caller_ ? "Of1c" : "An5w");
  m.append(R"(","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":")");
  m.append(caller_ ? "Of1c" : "An5w").append(R"("}})");
  return m;
}

}  // namespace callrelay::bench::signal
