// Envelopes from other instances as Redis delivers them: untrusted text. What the router hands
// the service is sent the way the service sends it (numbered, serialized), so an envelope that
// would bring the service down fails here too.
#include <gtest/gtest.h>

#include <string>

#include "calls/cluster/cluster_router.hpp"

namespace callrelay::calls {
namespace {

using nlohmann::json;

struct NoIce : IceServerSource {
  json ice_servers(std::string_view, std::string_view, TimeMs) override { return json::array(); }
};

/// Instance "A" alone: nobody else is present or busy, and what it publishes is counted.
class QuietSeam : public ClusterSeam {
 public:
  const std::string& instance() const override { return id_; }
  const std::string& nonce() const override { return nonce_; }
  void start(ClusterSink&) override {}
  void stop() override {}
  void publish(const std::string&, std::string) override { ++published; }
  std::optional<CalleeSeen> callee(const std::string&, const std::string&) override {
    return CalleeSeen{};
  }
  void presence(const std::string&, const std::string&, const DeviceId&, bool) override {}
  void busy(const std::string&, const std::string&, const std::string&, bool) override {}
  void watch(std::vector<std::string>) override {}
  int published = 0;

 private:
  std::string id_ = "A", nonce_ = "nA";
};

class ClusterEnvelopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Actions out;
    ASSERT_TRUE(engine.device_connected("carol", "carol", "", now, out));
  }
  /// The envelope, then what the service would send carol: each message serialized.
  std::vector<std::string> receive(const std::string& payload) {
    Actions out;
    router.on_envelope(payload, now, out);
    router.route(now, out);
    std::vector<std::string> sent;
    for (Outgoing& o : out.send) {
      o.message["sseq"] = 1;
      sent.push_back(o.message.dump());
    }
    return sent;
  }
  /// A message for carol whose payload nests `depth` arrays.
  static std::string nested(size_t depth) {
    return R"({"k":"d","from":"B","nonce":"nB","dev":"carol","msg":{"type":"ack","p":)" +
           std::string(depth, '[') + std::string(depth, ']') + "}}";
  }

  NoIce ice;
  QuietSeam seam;
  CallEngine engine{EngineConfig{}, ice, [] { return std::string(); }, nullptr};
  ClusterRouter router{seam, engine, MessageLimits{},
                       [](const DeviceId& d) { return d == "carol"; }};
  TimeMs now = 1'000'000;
};

TEST_F(ClusterEnvelopeTest, AMessageForALocalDeviceIsSentToIt) {
  const auto sent = receive(nested(20));
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(json::parse(sent[0])["type"], "ack");
  EXPECT_EQ(router.counters().received, 1u);
}

TEST_F(ClusterEnvelopeTest, DeeplyNestedEnvelopesAreRefusedNotSent) {
  // Within kMaxEnvelopeBytes, yet copying or serializing it recursed once per level and
  // overflowed the stack: every instance it was published to crashed.
  const std::string deep = nested(200'000);
  ASSERT_LE(deep.size(), kMaxEnvelopeBytes);
  EXPECT_TRUE(receive(deep).empty());
  EXPECT_TRUE(receive(nested(40)).empty());
  EXPECT_EQ(router.counters().refused, 2u);
  EXPECT_EQ(router.counters().received, 0u);
  EXPECT_EQ(seam.published, 0);
}

TEST_F(ClusterEnvelopeTest, MalformedEnvelopesAreCountedAndDropped) {
  for (const std::string& payload :
       {std::string(), std::string("not json"), std::string("[1,2]"),
        std::string(R"({"k":"d","from":"B","nonce":"nB","dev":"carol"})"),
        std::string(R"({"k":"d","from":"B","nonce":"nB","dev":"carol","msg":{"no":"type"}})"),
        std::string(R"({"k":"m","from":"B","nonce":"nB","dev":"bob","text":7})"),
        std::string(R"({"k":"d","from":"A","nonce":"nA","dev":"carol","msg":{"type":"x"}})"),
        std::string(R"({"k":"lost","from":"B","nonce":"nB","dev":"nobody"})"),
        std::string(kMaxEnvelopeBytes + 1, ' ')}) {
    EXPECT_TRUE(receive(payload).empty()) << payload.substr(0, 80);
  }
  EXPECT_EQ(router.counters().refused, 9u);
  EXPECT_EQ(router.counters().received, 0u);
}

}  // namespace
}  // namespace callrelay::calls
