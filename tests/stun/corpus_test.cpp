// The fuzz seeds in tests/fuzz/corpus/ were written by tests/fuzz/make_corpus.py with Python's
// own hmac, zlib and struct: an encoder independent of ours. Our codec must read every seed,
// check its MESSAGE-INTEGRITY and FINGERPRINT, and decode the addresses the script wrote.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <vector>

#include "relay/stun/channel_data.hpp"
#include "relay/stun/integrity.hpp"
#include "relay/stun/message.hpp"
#include "test_util.hpp"

namespace callrelay::stun {
namespace {

using test::bytes_of;

std::map<std::string, std::vector<uint8_t>> load_seeds() {
  std::map<std::string, std::vector<uint8_t>> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(CALLRELAY_FUZZ_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    seeds[entry.path().stem().string()] = {std::istreambuf_iterator<char>(in), {}};
  }
  return seeds;
}

TEST(FuzzSeeds, EveryStunSeedParsesAndChecks) {
  const auto seeds = load_seeds();
  ASSERT_GE(seeds.size(), 10u);
  size_t stun = 0;
  for (const auto& [name, bytes] : seeds) {
    if (name.starts_with("channel_data") || name.starts_with("stream")) continue;
    ParseError err{};
    const auto m = MessageView::parse(bytes, &err);
    ASSERT_TRUE(m) << name << ": " << to_string(err);
    ++stun;
    if (name.starts_with("rfc5769") || !m->integrity()) continue;
    EXPECT_EQ(check_integrity(*m, bytes_of("fuzz")), Integrity::kOk) << name;
  }
  EXPECT_GE(stun, 10u);
}

TEST(FuzzSeeds, DecodedValuesMatchWhatTheScriptWrote) {
  const auto seeds = load_seeds();
  const auto& success = seeds.at("allocate_success");
  const auto m = MessageView::parse(success);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->xor_address(attr::kXorRelayedAddress), Endpoint::parse("203.0.113.5:61000"));
  EXPECT_EQ(m->xor_address(attr::kXorMappedAddress), Endpoint::parse("198.51.100.1:40000"));
  EXPECT_EQ(m->reservation_token(), 0x0001020304050607ULL);
  const auto& data = seeds.at("data_indication_v6");
  const auto d = MessageView::parse(data);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->method(), Method::kData);
  EXPECT_EQ(d->xor_address(attr::kXorPeerAddress), Endpoint::parse("[2001:db8::42]:61000"));
  EXPECT_EQ(d->data()->size(), 37u);
  const auto& err420 = seeds.at("error_420");
  const auto e = MessageView::parse(err420);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->error_code()->code, 420);
  EXPECT_EQ(e->error_code()->reason, "Unknown Attribute");
}

TEST(FuzzSeeds, ChannelDataAndStreamSeeds) {
  const auto seeds = load_seeds();
  for (const auto* name : {"channel_data", "channel_data_padded", "channel_data_empty"}) {
    EXPECT_TRUE(parse_channel_data(seeds.at(name))) << name;
  }
  std::span<const uint8_t> stream = seeds.at("stream_mixed");
  size_t frames = 0;
  while (!stream.empty()) {
    const auto fs = stream_frame_size(stream);
    ASSERT_FALSE(fs.error);
    ASSERT_GT(fs.size, 0u);
    ASSERT_LE(fs.size, stream.size());
    const auto frame = stream.first(fs.size);
    EXPECT_TRUE(looks_like_stun(frame) ? MessageView::parse(frame).has_value()
                                       : parse_channel_data(frame).has_value());
    stream = stream.subspan(fs.size);
    ++frames;
  }
  EXPECT_EQ(frames, 4u);
}

}  // namespace
}  // namespace callrelay::stun
