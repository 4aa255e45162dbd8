// parse_client_message for the quality messages: `stats` as the SDK sends it from getStats(),
// `media`, and every refusal naming its field.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "calls/core/messages.hpp"

namespace callrelay::calls {
namespace {

using nlohmann::json;

constexpr const char* kCall = "c_Yq3vT0bE-x_9kLmNoPqRsT";

json msg(const char* type, json payload) {
  return {{"type", type}, {"seq", 12}, {"call", kCall}, {"payload", std::move(payload)}};
}

ClientMessage ok(const json& j) {
  auto r = parse_client_message(j.dump(), MessageLimits{});
  if (const auto* e = std::get_if<MessageError>(&r)) {
    ADD_FAILURE() << j.dump() << " refused: " << e->field << ": " << e->reason;
    return {};
  }
  return std::get<ClientMessage>(r);
}

void refused_at(const json& j, const std::string& field) {
  auto r = parse_client_message(j.dump(), MessageLimits{});
  const auto* e = std::get_if<MessageError>(&r);
  ASSERT_NE(e, nullptr) << j.dump() << " parsed";
  EXPECT_EQ(e->code, "invalid");
  EXPECT_EQ(e->field, field) << j.dump() << " -> " << e->reason;
  EXPECT_FALSE(e->reason.empty());
  EXPECT_EQ(e->seq, 12u);
  EXPECT_EQ(e->call, kCall);
}

/// The README's example.
json full_stats() {
  return {{"interval_ms", 5000},
          {"inbound",
           {{{"kind", "audio"},
             {"packets_received", 250},
             {"packets_lost", 3},
             {"jitter_ms", 4.2},
             {"bitrate_bps", 32000},
             {"frames_decoded", 0},
             {"frames_dropped", 0}}}},
          {"outbound",
           {{{"kind", "video"},
             {"packets_sent", 900},
             {"bitrate_bps", 800000},
             {"rtt_ms", 12.5},
             {"remote_packets_lost", 9},
             {"remote_jitter_ms", 3.1}}}},
          {"pair",
           {{"local_type", "relay"},
            {"remote_type", "relay"},
            {"protocol", "udp"},
            {"relay_protocol", "udp"},
            {"rtt_ms", 10.2}}}};
}

TEST(StatsMessage, TheDocumentedExample) {
  const ClientMessage m = ok(msg("stats", full_stats()));
  EXPECT_EQ(m.type, ClientType::kStats);
  EXPECT_STREQ(to_string(m.type), "stats");
  EXPECT_EQ(m.call, kCall);
  const StatsReport& s = m.stats;
  EXPECT_EQ(s.interval_ms, 5000u);
  ASSERT_EQ(s.inbound.size(), 1u);
  EXPECT_EQ(s.inbound[0].kind, MediaKind::kAudio);
  EXPECT_EQ(s.inbound[0].packets_received, 250u);
  EXPECT_EQ(s.inbound[0].packets_lost, 3u);
  EXPECT_EQ(s.inbound[0].jitter_ms, 4.2);
  EXPECT_EQ(s.inbound[0].bitrate_bps, 32000);
  EXPECT_EQ(s.inbound[0].frames_decoded, 0u);
  EXPECT_EQ(s.inbound[0].frames_dropped, 0u);
  ASSERT_EQ(s.outbound.size(), 1u);
  EXPECT_EQ(s.outbound[0].kind, MediaKind::kVideo);
  EXPECT_EQ(s.outbound[0].packets_sent, 900u);
  EXPECT_EQ(s.outbound[0].bitrate_bps, 800000);
  EXPECT_EQ(s.outbound[0].rtt_ms, 12.5);
  EXPECT_EQ(s.outbound[0].remote_packets_lost, 9u);
  EXPECT_EQ(s.outbound[0].remote_jitter_ms, 3.1);
  ASSERT_TRUE(s.pair.has_value());
  EXPECT_EQ(s.pair->local_type, CandidateType::kRelay);
  EXPECT_EQ(s.pair->remote_type, CandidateType::kRelay);
  EXPECT_EQ(s.pair->protocol, PairProtocol::kUdp);
  EXPECT_EQ(s.pair->relay_protocol, PairProtocol::kUdp);
  EXPECT_EQ(s.pair->rtt_ms, 10.2);
}

TEST(StatsMessage, OnlyIntervalAndKindsAreRequired) {
  const ClientMessage m = ok(
      msg("stats", {{"interval_ms", 1000},
                    {"inbound", {{{"kind", "video"}}, {{"kind", "audio"}, {"jitter_ms", nullptr}}}},
                    {"outbound", json::array()},
                    {"pair",
                     {{"local_type", "host"},
                      {"remote_type", "prflx"},
                      {"protocol", "tcp"},
                      {"relay_protocol", "tls"}}}}));
  const StatsReport& s = m.stats;
  EXPECT_EQ(s.interval_ms, 1000u);
  ASSERT_EQ(s.inbound.size(), 2u);
  EXPECT_EQ(s.inbound[0].kind, MediaKind::kVideo);
  EXPECT_FALSE(s.inbound[0].packets_received.has_value());
  EXPECT_FALSE(s.inbound[1].jitter_ms.has_value());  // null: not reported
  EXPECT_TRUE(s.outbound.empty());
  EXPECT_EQ(s.pair->local_type, CandidateType::kHost);
  EXPECT_EQ(s.pair->remote_type, CandidateType::kPrflx);
  EXPECT_EQ(s.pair->protocol, PairProtocol::kTcp);
  EXPECT_EQ(s.pair->relay_protocol, PairProtocol::kTls);
  EXPECT_FALSE(s.pair->rtt_ms.has_value());
  const ClientMessage bare = ok(msg("stats", {{"interval_ms", 60000}}));
  EXPECT_TRUE(bare.stats.inbound.empty());
  EXPECT_FALSE(bare.stats.pair.has_value());
}

TEST(StatsMessage, RangesAreInclusive) {
  json p = full_stats();
  p["inbound"][0]["packets_received"] = 10'000'000;
  p["inbound"][0]["jitter_ms"] = 60000;
  p["inbound"][0]["bitrate_bps"] = 1e10;
  p["outbound"][0]["rtt_ms"] = 0;
  p["pair"]["rtt_ms"] = 60000.0;
  const ClientMessage m = ok(msg("stats", p));
  EXPECT_EQ(m.stats.inbound[0].packets_received, 10'000'000u);
  EXPECT_EQ(m.stats.inbound[0].bitrate_bps, 1e10);
}

TEST(StatsMessage, EveryBadFieldIsNamed) {
  struct Case {
    const char* pointer;  // JSON pointer into the payload
    json value;
    const char* field;
  };
  const Case cases[] = {
      {"/interval_ms", 999, "payload.interval_ms"},
      {"/interval_ms", 60001, "payload.interval_ms"},
      {"/interval_ms", 5000.5, "payload.interval_ms"},
      {"/interval_ms", "5000", "payload.interval_ms"},
      {"/inbound", json::object(), "payload.inbound"},
      {"/inbound/0/kind", "screen", "payload.inbound[0].kind"},
      {"/inbound/0/kind", nullptr, "payload.inbound[0].kind"},
      {"/inbound/0/packets_received", 10'000'001, "payload.inbound[0].packets_received"},
      {"/inbound/0/packets_lost", -3, "payload.inbound[0].packets_lost"},
      {"/inbound/0/packets_lost", 1.5, "payload.inbound[0].packets_lost"},
      {"/inbound/0/jitter_ms", -0.1, "payload.inbound[0].jitter_ms"},
      {"/inbound/0/jitter_ms", 60000.5, "payload.inbound[0].jitter_ms"},
      {"/inbound/0/jitter_ms", "4", "payload.inbound[0].jitter_ms"},
      {"/inbound/0/bitrate_bps", 1.1e10, "payload.inbound[0].bitrate_bps"},
      {"/inbound/0/frames_decoded", true, "payload.inbound[0].frames_decoded"},
      {"/inbound/0/frames_dropped", -1, "payload.inbound[0].frames_dropped"},
      {"/inbound/0/ssrc", 1234, "payload.inbound[0].ssrc"},
      {"/inbound/0", "audio", "payload.inbound[0]"},
      {"/outbound/0/kind", "audio ", "payload.outbound[0].kind"},
      {"/outbound/0/packets_sent", -1, "payload.outbound[0].packets_sent"},
      {"/outbound/0/bitrate_bps", -5, "payload.outbound[0].bitrate_bps"},
      {"/outbound/0/rtt_ms", 1e300, "payload.outbound[0].rtt_ms"},
      {"/outbound/0/remote_packets_lost", -9, "payload.outbound[0].remote_packets_lost"},
      {"/outbound/0/remote_jitter_ms", json::array(), "payload.outbound[0].remote_jitter_ms"},
      {"/outbound/0/jitter_ms", 1, "payload.outbound[0].jitter_ms"},
      {"/pair", "relay", "payload.pair"},
      {"/pair/local_type", "turn", "payload.pair.local_type"},
      {"/pair/remote_type", 3, "payload.pair.remote_type"},
      {"/pair/protocol", "quic", "payload.pair.protocol"},
      {"/pair/relay_protocol", "UDP", "payload.pair.relay_protocol"},
      {"/pair/rtt_ms", -1, "payload.pair.rtt_ms"},
      {"/pair/state", "succeeded", "payload.pair.state"},
      {"/timestamp", 1, "payload.timestamp"},
  };
  for (const Case& c : cases) {
    json p = full_stats();
    p[json::json_pointer(c.pointer)] = c.value;
    refused_at(msg("stats", p), c.field);
  }
}

TEST(StatsMessage, UnknownFieldNamesAreEchoedOnlyWhenShortAndPlain) {
  json p = full_stats();
  p["inbound"][0]["x_field_32_bytes_long_0123456789"] = 1;
  refused_at(msg("stats", p), "payload.inbound[0].x_field_32_bytes_long_0123456789");
  for (const char* key : {"x_field_33_bytes_long_01234567890", "caf\u00e9", "a.b", "a b", ""}) {
    p = full_stats();
    p["pair"][key] = 1;
    refused_at(msg("stats", p), "payload.pair");
  }
}

TEST(StatsMessage, AtMostOneEntryPerKind) {
  json p = full_stats();
  p["inbound"].push_back({{"kind", "audio"}});
  refused_at(msg("stats", p), "payload.inbound[1].kind");
  p = full_stats();
  p["outbound"] = {{{"kind", "audio"}}, {{"kind", "video"}}, {{"kind", "audio"}}};
  refused_at(msg("stats", p), "payload.outbound");
}

TEST(StatsMessage, NeedsItsPayloadAndInterval) {
  json j = msg("stats", nullptr);
  j.erase("payload");
  refused_at(j, "payload");
  refused_at(msg("stats", json::array()), "payload");
  refused_at(msg("stats", json::object()), "payload.interval_ms");
  json p = full_stats();
  p.erase("interval_ms");
  refused_at(msg("stats", p), "payload.interval_ms");
}

TEST(MediaMessage, AudioVideoAndReason) {
  const ClientMessage m =
      ok(msg("media", {{"audio", true}, {"video", false}, {"reason", "poor-quality"}}));
  EXPECT_EQ(m.type, ClientType::kMedia);
  EXPECT_STREQ(to_string(m.type), "media");
  EXPECT_EQ(m.media_state.audio, true);
  EXPECT_EQ(m.media_state.video, false);
  EXPECT_EQ(m.media_state.reason, MediaReason::kPoorQuality);
  const ClientMessage restored =
      ok(msg("media", {{"video", true}, {"reason", "quality-restored"}}));
  EXPECT_FALSE(restored.media_state.audio.has_value());
  EXPECT_EQ(restored.media_state.video, true);
  EXPECT_EQ(restored.media_state.reason, MediaReason::kQualityRestored);
  const ClientMessage muted = ok(msg("media", {{"audio", false}, {"reason", "user"}}));
  EXPECT_EQ(muted.media_state.audio, false);
  EXPECT_FALSE(muted.media_state.video.has_value());
  EXPECT_EQ(muted.media_state.reason, MediaReason::kUser);
}

TEST(MediaMessage, EveryBadFieldIsNamed) {
  refused_at(msg("media", {{"reason", "user"}}), "payload");
  refused_at(msg("media", {{"audio", nullptr}, {"reason", "user"}}), "payload.audio");
  refused_at(msg("media", {{"audio", 1}, {"reason", "user"}}), "payload.audio");
  refused_at(msg("media", {{"video", "false"}, {"reason", "user"}}), "payload.video");
  refused_at(msg("media", {{"video", false}}), "payload.reason");
  refused_at(msg("media", {{"video", false}, {"reason", "bandwidth"}}), "payload.reason");
  refused_at(msg("media", {{"video", false}, {"reason", "user"}, {"screen", true}}),
             "payload.screen");
  refused_at(msg("media", json::array()), "payload");
}

TEST(QualityNames, MessageEnumsHaveTheirWireNames) {
  EXPECT_STREQ(to_string(MediaReason::kUser), "user");
  EXPECT_STREQ(to_string(MediaReason::kPoorQuality), "poor-quality");
  EXPECT_STREQ(to_string(MediaReason::kQualityRestored), "quality-restored");
  EXPECT_STREQ(to_string(CandidateType::kSrflx), "srflx");
  EXPECT_STREQ(to_string(PairProtocol::kTls), "tls");
  EXPECT_STREQ(to_string(static_cast<MediaReason>(7)), "unknown");
  EXPECT_EQ(kClientTypeCount, 13u);
  EXPECT_STREQ(to_string(static_cast<ClientType>(kClientTypeCount - 1)), "media");
}

}  // namespace
}  // namespace callrelay::calls
