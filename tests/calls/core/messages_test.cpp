// parse_client_message: every type's happy path, every field's failure (with the field's name),
// the envelope (size, JSON, object, type, seq, call) and the SDP shape of RFC 8866 section 5.
#include "calls/core/messages.hpp"

#include "tests/calls/core/sdp_samples.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

namespace callrelay::calls {
namespace {

using nlohmann::json;
using test::crlf;
using test::kChromiumOffer;

constexpr const char* kCall = "c_Yq3vT0bE-x_9kLmNoPqRsT";  // "c_" + 22 base64url characters

const std::string kMinimalSdp =
    crlf({"v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "m=audio 9 UDP/TLS/RTP/SAVPF 111"});

std::variant<ClientMessage, MessageError> parse(const std::string& text,
                                                const MessageLimits& limits = {}) {
  return parse_client_message(text, limits);
}

/// The message `j` parses; a failure prints the error.
ClientMessage ok(const json& j, const MessageLimits& limits = {}) {
  auto r = parse(j.dump(), limits);
  if (const auto* e = std::get_if<MessageError>(&r)) {
    ADD_FAILURE() << j.dump() << " refused: " << e->field << ": " << e->reason;
    return {};
  }
  return std::get<ClientMessage>(r);
}

MessageError refused(const std::string& text, const MessageLimits& limits = {}) {
  auto r = parse(text, limits);
  if (!std::holds_alternative<MessageError>(r)) {
    ADD_FAILURE() << text.substr(0, 200) << " parsed";
    return {};
  }
  return std::get<MessageError>(r);
}

/// `j` is refused as invalid, naming `field`, with a reason that says something.
MessageError refused_at(const json& j, const std::string& field, const MessageLimits& limits = {}) {
  MessageError e = refused(j.dump(), limits);
  EXPECT_EQ(e.code, "invalid") << j.dump();
  EXPECT_EQ(e.field, field) << j.dump() << " -> " << e.reason;
  EXPECT_FALSE(e.reason.empty());
  return e;
}

json msg(const char* type, json payload = nullptr, uint64_t seq = 7) {
  json j = {{"type", type}, {"seq", seq}, {"call", kCall}};
  if (!payload.is_null()) j["payload"] = std::move(payload);
  return j;
}

json invite(json payload) { return {{"type", "invite"}, {"seq", 1}, {"payload", payload}}; }

json offer(const std::string& sdp) { return msg("offer", {{"sdp", sdp}}); }

json candidate(json extra) {
  json p = {{"candidate",
             "candidate:842163049 1 udp 1677729535 203.0.113.7 51234 typ srflx "
             "raddr 0.0.0.0 rport 0 generation 0 ufrag Hk8s network-cost 999"}};
  p.update(extra);
  return msg("candidate", p);
}

// --- happy paths --------------------------------------------------------------------------

TEST(Messages, InviteWithMedia) {
  const auto m = ok(invite({{"to", "bob"}, {"media", {{"audio", true}, {"video", true}}}}));
  EXPECT_EQ(m.type, ClientType::kInvite);
  EXPECT_EQ(m.seq, 1u);
  EXPECT_EQ(m.to, "bob");
  EXPECT_EQ(m.media, (Media{true, true}));
  EXPECT_TRUE(m.call.empty());
}

TEST(Messages, InviteWithoutMediaIsAudioOnly) {
  const auto m = ok(invite({{"to", "Zoë 🙂"}}));
  EXPECT_EQ(m.to, "Zoë 🙂");
  EXPECT_EQ(m.media, (Media{true, false}));
}

TEST(Messages, InviteIgnoresACallIdAndAnyUnknownField) {
  json j = invite({{"to", "bob"}, {"media", {{"audio", false}, {"video", true}}}, {"x", 1}});
  j["call"] = "not a call id";
  j["future"] = {{"nested", {1, 2, 3}}};
  const auto m = ok(j);
  EXPECT_TRUE(m.call.empty());
  EXPECT_EQ(m.media, (Media{false, true}));
}

TEST(Messages, TypesWithoutPayload) {
  for (const auto& [name, type] : {std::pair{"ringing", ClientType::kRinging},
                                   {"cancel", ClientType::kCancel},
                                   {"ice-restart", ClientType::kIceRestart},
                                   {"connected", ClientType::kConnected}}) {
    const auto m = ok(msg(name));
    EXPECT_EQ(m.type, type) << name;
    EXPECT_EQ(m.call, kCall);
    EXPECT_EQ(m.seq, 7u);
    EXPECT_EQ(ok(msg(name, json::object())).type, type) << name;
    EXPECT_STREQ(to_string(type), name);
  }
}

TEST(Messages, Accept) {
  EXPECT_EQ(ok(msg("accept")).media, (Media{true, false}));
  const auto m = ok(msg("accept", {{"media", {{"audio", true}, {"video", true}}}}));
  EXPECT_EQ(m.type, ClientType::kAccept);
  EXPECT_EQ(m.media, (Media{true, true}));
}

TEST(Messages, Decline) {
  EXPECT_EQ(ok(msg("decline")).reason, "");
  const auto m = ok(msg("decline", {{"reason", "In a meeting – später"}}));
  EXPECT_EQ(m.type, ClientType::kDecline);
  EXPECT_EQ(m.reason, "In a meeting – später");
}

TEST(Messages, HangupReasons) {
  EXPECT_EQ(ok(msg("hangup")).reason, "user-hangup");
  for (const char* r : {"user-hangup", "ice-failed", "media-error"}) {
    const auto m = ok(msg("hangup", {{"reason", r}}));
    EXPECT_EQ(m.type, ClientType::kHangup);
    EXPECT_EQ(m.reason, r);
  }
}

TEST(Messages, OfferAndAnswer) {
  auto m = ok(offer(kMinimalSdp));
  EXPECT_EQ(m.type, ClientType::kOffer);
  EXPECT_EQ(m.sdp, kMinimalSdp);
  EXPECT_FALSE(m.restart);
  EXPECT_TRUE(ok(msg("offer", {{"sdp", kMinimalSdp}, {"restart", true}})).restart);
  m = ok(msg("answer", {{"sdp", kMinimalSdp}, {"restart", "ignored on an answer"}}));
  EXPECT_EQ(m.type, ClientType::kAnswer);
  EXPECT_FALSE(m.restart);
}

TEST(Messages, RealChromiumOffer) {
  ASSERT_GT(kChromiumOffer.size(), 3500u);
  EXPECT_EQ(ok(offer(kChromiumOffer)).sdp, kChromiumOffer);
  std::string lf = kChromiumOffer;  // line ends of LF only are tolerated
  for (size_t at; (at = lf.find('\r')) != std::string::npos;) lf.erase(at, 1);
  EXPECT_EQ(ok(offer(lf)).sdp, lf);
}

TEST(Messages, Candidate) {
  auto m = ok(candidate({{"sdpMid", "0"}, {"sdpMLineIndex", 0}, {"usernameFragment", "Hk8s"}}));
  EXPECT_EQ(m.type, ClientType::kCandidate);
  EXPECT_TRUE(m.candidate.candidate.starts_with("candidate:842163049 1 udp"));
  EXPECT_EQ(m.candidate.sdp_mid, "0");
  EXPECT_EQ(m.candidate.sdp_mline_index, 0u);
  EXPECT_EQ(m.candidate.username_fragment, "Hk8s");

  m = ok(candidate({{"sdpMid", nullptr}, {"sdpMLineIndex", 63}, {"usernameFragment", nullptr}}));
  EXPECT_FALSE(m.candidate.sdp_mid);
  EXPECT_EQ(m.candidate.sdp_mline_index, 63u);
  EXPECT_FALSE(m.candidate.username_fragment);

  m = ok(msg("candidate", {{"candidate", ""}}));  // end of candidates needs no m-line
  EXPECT_EQ(m.candidate.candidate, "");
  EXPECT_FALSE(m.candidate.sdp_mid);
  EXPECT_FALSE(m.candidate.sdp_mline_index);
}

TEST(Messages, DuplicateKeysTakeTheLast) {
  auto r = parse(std::string(R"({"type":"decline","seq":1,"seq":3,"call":")") + kCall + "\"}");
  ASSERT_TRUE(std::holds_alternative<ClientMessage>(r));
  EXPECT_EQ(std::get<ClientMessage>(r).seq, 3u);
}

// --- the envelope -------------------------------------------------------------------------

TEST(Messages, SizeLimitComesFirst) {
  MessageLimits tiny;
  tiny.max_message_bytes = 40;
  const std::string text = msg("ringing").dump();
  ASSERT_GT(text.size(), 40u);
  const MessageError e = refused(text, tiny);
  EXPECT_EQ(e.code, "too-large");
  EXPECT_EQ(e.field, "");
  EXPECT_NE(e.reason.find("40"), std::string::npos) << e.reason;
  EXPECT_EQ(refused(std::string(41, '{'), tiny).code, "too-large");  // before any parsing
  tiny.max_message_bytes = text.size();
  EXPECT_EQ(ok(msg("ringing"), tiny).type, ClientType::kRinging);  // the limit is inclusive
}

TEST(Messages, NotJsonOrNotAnObject) {
  for (const char* text : {"", "{", "{\"type\":}", "nul", "{\"a\":1}x", "\xff\xfe",
                           "{\"type\":\"ringing\\u\"}", "{'type':'ringing'}"}) {
    const MessageError e = refused(text);
    EXPECT_EQ(e.code, "invalid") << text;
    EXPECT_EQ(e.field, "") << text;
    EXPECT_NE(e.reason.find("JSON"), std::string::npos) << text;
  }
  for (const char* text : {"[]", "[{\"type\":\"ringing\"}]", "\"ringing\"", "1", "null", "true"}) {
    const MessageError e = refused(text);
    EXPECT_EQ(e.field, "") << text;
    EXPECT_NE(e.reason.find("object"), std::string::npos) << text;
  }
}

TEST(Messages, DeepNestingIsRefused) {
  std::string deep = "{\"type\":\"ringing\",\"x\":";
  for (int i = 0; i < 60000; ++i) deep += '[';
  const MessageError e = refused(deep);  // refused before parsing, not by running out of stack
  EXPECT_EQ(e.code, "invalid");
  EXPECT_NE(e.reason.find("nest"), std::string::npos) << e.reason;

  json j = msg("ringing");  // brackets inside strings do not count
  j["note"] = std::string(50, '[') + std::string(50, '{');
  ok(j);
  j["x"] = {{"a", {{"b", {{"c", {{"d", {{"e", {{"f", {1}}}}}}}}}}}}};  // 8 levels: fine
  ok(j);
  j["x"]["a"]["b"]["c"]["d"]["e"]["f"] = {{"g", {1}}};  // 9 levels
  EXPECT_NE(refused(j.dump()).reason.find("nest"), std::string::npos);
}

TEST(Messages, Type) {
  for (const json& t : {json("INVITE"), json("hello"), json(""), json(1), json(nullptr),
                        json::array({"invite"}), json("ack"), json("error")}) {
    json j = msg("ringing");
    j["type"] = t;
    const MessageError e = refused_at(j, "type");
    EXPECT_EQ(e.seq, 7u);  // seq and call are echoed when they parsed
    EXPECT_EQ(e.call, kCall);
  }
  json j = msg("ringing");
  j.erase("type");
  refused_at(j, "type");
  EXPECT_STREQ(to_string(static_cast<ClientType>(200)), "unknown");
}

TEST(Messages, SeqBounds) {
  const uint64_t max = uint64_t{1} << 53;
  EXPECT_EQ(ok(msg("ringing", nullptr, 1)).seq, 1u);
  EXPECT_EQ(ok(msg("ringing", nullptr, max)).seq, max);
  for (const json& seq : {json(0), json(max + 1), json(1.5), json(1.0), json("1"), json(-1),
                          json(nullptr), json(true), json(UINT64_MAX)}) {
    json j = msg("ringing");
    j["seq"] = seq;
    const MessageError e = refused_at(j, "seq");
    EXPECT_FALSE(e.seq.has_value()) << seq;
    EXPECT_EQ(e.call, kCall);
  }
  for (const char* seq : {"1e3", "18446744073709551616", "1E0"}) {  // floats in JSON terms
    const std::string text =
        std::string(R"({"type":"cancel","seq":)") + seq + R"(,"call":")" + kCall + "\"}";
    EXPECT_EQ(refused(text).field, "seq") << text;
  }
  json j = msg("ringing");
  j.erase("seq");
  refused_at(j, "seq");
}

TEST(Messages, CallIsRequiredButOnInvites) {
  for (const json& call : {json("c_short"), json("c_Yq3vT0bE-x_9kLmNoPqRsTU"),
                           json("d_Yq3vT0bE-x_9kLmNoPqRsT"), json("c_Yq3vT0bE+x_9kLmNoPqRsT"),
                           json("c_Yq3vT0bE x_9kLmNoPqRsT"), json(""), json(5), json(nullptr)}) {
    json j = msg("hangup");
    j["call"] = call;
    const MessageError e = refused_at(j, "call");
    EXPECT_EQ(e.seq, 7u);
    EXPECT_EQ(e.call, "");  // not echoed: it did not parse
  }
  json j = msg("connected");
  j.erase("call");
  refused_at(j, "call");
  EXPECT_TRUE(valid_call_id(kCall));
  EXPECT_TRUE(valid_call_id("c_----------------------"));
  EXPECT_FALSE(valid_call_id(std::string_view("c_Yq3vT0bE-x_9kLmNoPqRs\0", 24)));
}

TEST(Messages, Payload) {
  for (const char* type : {"invite", "offer", "answer", "candidate"}) {  // needed
    json j = msg(type);
    const MessageError e = refused_at(j, "payload");
    EXPECT_NE(e.reason.find(type), std::string::npos) << e.reason;
  }
  for (const char* type : {"invite", "ringing", "accept", "decline", "cancel", "hangup", "offer",
                           "answer", "candidate", "ice-restart", "connected"}) {
    for (const json& p : {json(nullptr), json("x"), json::array(), json(3)}) {
      json j = msg(type);
      j["payload"] = p;
      refused_at(j, "payload");
    }
  }
}

// --- payload fields -----------------------------------------------------------------------

TEST(Messages, InviteTo) {
  refused_at(invite({{"media", {{"audio", true}, {"video", false}}}}), "payload.to");
  for (const json& to : {json(""), json(42), json(nullptr), json::array({"bob"}), json("bob:2"),
                         json("bo\nb"), json(std::string("b\0b", 3)), json("b\x7f"),
                         json("b\u0085"), json(std::string(257, 'a'))}) {
    const MessageError e = refused_at(invite({{"to", to}}), "payload.to");
    EXPECT_EQ(e.seq, 1u);
  }
  EXPECT_EQ(ok(invite({{"to", std::string(256, 'a')}})).to.size(), 256u);
  MessageLimits lim;
  lim.max_user_id_bytes = 3;
  ok(invite({{"to", "bob"}}), lim);
  EXPECT_NE(refused_at(invite({{"to", "bobby"}}), "payload.to", lim).reason.find("1..3"),
            std::string::npos);
}

TEST(Messages, UserIdsAreWellFormedUtf8) {
  EXPECT_TRUE(valid_user_id("alice", 256));
  EXPECT_TRUE(valid_user_id("Zoë", 256));
  EXPECT_TRUE(valid_user_id("\xe4\xb8\xad\xf0\x9f\x99\x82", 256));  // CJK and an emoji
  EXPECT_FALSE(valid_user_id("", 256));
  EXPECT_FALSE(valid_user_id("alice", 4));
  for (const char* bad : {"\xc0\xaf",                            // overlong '/'
                          "\xe0\x80\xaf",                        // overlong, three bytes
                          "\xed\xa0\x80",                        // UTF-16 surrogate
                          "\xf4\x90\x80\x80",                    // above U+10FFFF
                          "\xf5\x80\x80\x80",                    // no such lead byte
                          "a\xe2\x82",                           // truncated
                          "\x80",                                // continuation without a lead
                          "\xe2\x28\xa1",                        // bad continuation
                          "\xff", "a\tb", "a:b", "\xc2\x85"}) {  // C1 control NEL
    EXPECT_FALSE(valid_user_id(bad, 256)) << bad;
  }
  // On the wire such bytes never reach valid_user_id: the JSON itself is refused.
  const MessageError e = refused(R"({"type":"invite","seq":1,"payload":{"to":"b)" +
                                 std::string("\xc0\xaf") + R"("}})");
  EXPECT_EQ(e.field, "");
  EXPECT_EQ(e.seq, std::nullopt);
}

TEST(Messages, Media) {
  const auto both = [](json media) {
    refused_at(invite({{"to", "bob"}, {"media", media}}), "payload.media");
    refused_at(msg("accept", {{"media", media}}), "payload.media");
  };
  both(json("audio"));
  both(json::array({true, false}));
  both(json(nullptr));
  both({{"audio", false}, {"video", false}});
  for (const char* key : {"audio", "video"}) {
    const std::string field = std::string("payload.media.") + key;
    json m = {{"audio", true}, {"video", true}};
    m[key] = 1;
    refused_at(invite({{"to", "bob"}, {"media", m}}), field);
    refused_at(msg("accept", {{"media", m}}), field);
    m.erase(key);
    refused_at(invite({{"to", "bob"}, {"media", m}}), field);
    m[key] = "true";
    refused_at(msg("accept", {{"media", m}}), field);
  }
}

TEST(Messages, DeclineReason) {
  refused_at(msg("decline", {{"reason", 3}}), "payload.reason");
  refused_at(msg("decline", {{"reason", nullptr}}), "payload.reason");
  refused_at(msg("decline", {{"reason", "busy\r\nX-Injected: 1"}}), "payload.reason");
  refused_at(msg("decline", {{"reason", std::string(129, 'r')}}), "payload.reason");
  EXPECT_EQ(ok(msg("decline", {{"reason", std::string(128, 'r')}})).reason.size(), 128u);
}

TEST(Messages, HangupReason) {
  for (const json& r : {json("bye"), json(""), json("USER-HANGUP"), json(1), json(nullptr)}) {
    const MessageError e = refused_at(msg("hangup", {{"reason", r}}), "payload.reason");
    EXPECT_NE(e.reason.find("ice-failed"), std::string::npos);
    EXPECT_EQ(e.call, kCall);
  }
}

TEST(Messages, Sdp) {
  for (const char* type : {"offer", "answer"}) {
    refused_at(msg(type, json::object()), "payload.sdp");
    refused_at(msg(type, {{"sdp", 1}}), "payload.sdp");
    refused_at(msg(type, {{"sdp", nullptr}}), "payload.sdp");
    refused_at(msg(type, {{"sdp", {{"type", "offer"}}}}), "payload.sdp");
  }
  refused_at(msg("offer", {{"sdp", kMinimalSdp}, {"restart", "yes"}}), "payload.restart");
  refused_at(msg("offer", {{"sdp", kMinimalSdp}, {"restart", 1}}), "payload.restart");
  MessageLimits lim;
  lim.max_sdp_bytes = kMinimalSdp.size();
  ok(offer(kMinimalSdp), lim);
  lim.max_sdp_bytes = kMinimalSdp.size() - 1;
  EXPECT_NE(refused_at(offer(kMinimalSdp), "payload.sdp", lim).reason.find("at most"),
            std::string::npos);
  EXPECT_EQ(
      refused_at(offer(kChromiumOffer + kChromiumOffer), "payload.sdp", {.max_sdp_bytes = 6000})
          .field,
      "payload.sdp");
}

TEST(Messages, SdpShape) {
  const auto shape = [](const std::string& sdp, const char* says) {
    const MessageError e = refused_at(offer(sdp), "payload.sdp");
    EXPECT_NE(e.reason.find(says), std::string::npos) << e.reason;
  };
  shape("", "v=0");
  shape("hello", "v=0");
  shape(crlf({"v=1", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "m=audio 9 RTP/AVP 0"}), "v=0");
  shape(crlf({"o=- 1 2 IN IP4 0.0.0.0", "v=0", "s=-", "m=audio 9 RTP/AVP 0"}), "v=0");
  shape(crlf({"v=0", "s=-", "t=0 0", "m=audio 9 RTP/AVP 0"}), "o=");
  shape(crlf({"v=0", "o=- 1 2 IN IP4 0.0.0.0", "t=0 0", "m=audio 9 RTP/AVP 0"}), "s=");
  shape(crlf({"v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "t=0 0"}), "m=");
  shape(kMinimalSdp + "a=rtcp-mux", "line 6 does not end with CRLF");
  shape(kMinimalSdp + "\r\n", "line 6 is not <letter>=<value>");  // an empty line
  shape(kMinimalSdp + "A=upper\r\n", "line 6 is not");
  shape(kMinimalSdp + "a rtcp-mux\r\n", "line 6 is not");
  shape(kMinimalSdp + "=x\r\n", "line 6 is not");
  shape(kMinimalSdp + "ab=x\r\n", "line 6 is not");
  shape(kMinimalSdp + "a=x\ry\r\n", "line 6 has a control character");
  shape(kMinimalSdp + "a=x\r\r\n", "line 6 has a control character");
  shape(kMinimalSdp + std::string("a=x\0y\r\n", 7), "line 6 has a control character");
  shape(kMinimalSdp + "a=x\x1b[2J\r\n", "line 6 has a control character");
  shape(kMinimalSdp + "a=x\x7f\r\n", "line 6 has a control character");
  ok(offer(kMinimalSdp + "a=tool:\tname\r\ni=Zoë's call\r\n"));  // tab and UTF-8 are fine
  ok(offer(crlf(
      {"v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-", "m=audio 9 RTP/AVP 0", "m=video 9 RTP/AVP 96"})));
}

TEST(Messages, CandidateField) {
  refused_at(msg("candidate", {{"sdpMid", "0"}}), "payload.candidate");
  for (const json& c : {json(1), json(nullptr), json::object(), json("842163049 1 udp"),
                        json("Candidate:1 1 udp"), json("candidate:1 1 udp\n"),
                        json("candidate:1 1 udp \xc3\xa9"), json(std::string(1025, 'c'))}) {
    refused_at(msg("candidate", {{"candidate", c}, {"sdpMid", "0"}}), "payload.candidate");
  }
  MessageLimits lim;
  lim.max_candidate_bytes = 12;
  ok(msg("candidate", {{"candidate", "candidate:12"}, {"sdpMid", "0"}}), lim);
  refused_at(msg("candidate", {{"candidate", "candidate:123"}, {"sdpMid", "0"}}),
             "payload.candidate", lim);
}

TEST(Messages, CandidateMidAndIndex) {
  const MessageError e = refused_at(candidate(json::object()), "payload.sdpMid");
  EXPECT_NE(e.reason.find("sdpMLineIndex"), std::string::npos);
  refused_at(candidate({{"sdpMid", nullptr}, {"sdpMLineIndex", nullptr}}), "payload.sdpMid");
  for (const json& mid :
       {json(0), json(true), json::array(), json(std::string(65, 'm')), json("0\n")}) {
    refused_at(candidate({{"sdpMid", mid}, {"sdpMLineIndex", 0}}), "payload.sdpMid");
  }
  EXPECT_EQ(ok(candidate({{"sdpMid", std::string(64, 'm')}})).candidate.sdp_mid->size(), 64u);
  for (const json& index :
       {json(-1), json(64), json(1.5), json(0.0), json("0"), json(true), json(UINT64_MAX)}) {
    refused_at(candidate({{"sdpMid", "0"}, {"sdpMLineIndex", index}}), "payload.sdpMLineIndex");
  }
  for (const json& ufrag : {json(1), json::object(), json(std::string(257, 'u'))}) {
    refused_at(candidate({{"sdpMid", "0"}, {"usernameFragment", ufrag}}),
               "payload.usernameFragment");
  }
  EXPECT_EQ(ok(candidate({{"sdpMid", "0"}, {"usernameFragment", std::string(256, 'u')}}))
                .candidate.username_fragment->size(),
            256u);
}

TEST(Messages, ErrorsEchoSeqAndCall) {
  const MessageError e = refused_at(msg("offer", {{"sdp", "x"}}, 42), "payload.sdp");
  EXPECT_EQ(e.seq, 42u);
  EXPECT_EQ(e.call, kCall);
  json j = invite({{"to", ""}});
  j["call"] = kCall;  // an invite names no call: nothing to echo
  EXPECT_EQ(refused_at(j, "payload.to").call, "");
}

TEST(Types, NamesAsTheProtocolSpellsThem) {
  EXPECT_STREQ(to_string(CallState::kRinging), "ringing");
  EXPECT_STREQ(to_string(CallState::kConnecting), "connecting");
  EXPECT_STREQ(to_string(CallState::kActive), "active");
  EXPECT_STREQ(to_string(CallState::kEnded), "ended");
  EXPECT_STREQ(to_string(Party::kCaller), "caller");
  EXPECT_STREQ(to_string(Party::kCallee), "callee");
  EXPECT_STREQ(to_string(Party::kServer), "server");
  EXPECT_STREQ(to_string(Outcome::kPeerDisconnected), "peer-disconnected");
  const char* names[] = {"completed", "declined", "cancelled",        "missed",
                         "busy",      "failed",   "peer-disconnected"};
  size_t i = 0;
  for (const Outcome o : kAllOutcomes) {
    EXPECT_STREQ(to_string(o), names[i++]);
    EXPECT_EQ(parse_outcome(to_string(o)), o);
  }
  EXPECT_EQ(parse_outcome(""), std::nullopt);
  EXPECT_EQ(parse_outcome("Completed"), std::nullopt);
  EXPECT_EQ(parse_outcome("peer_disconnected"), std::nullopt);
}

}  // namespace
}  // namespace callrelay::calls
