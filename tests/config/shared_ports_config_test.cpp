// relay.multiplex_peers and relay.allocations_per_port: defaults, bounds, the refusal with
// io: io_uring, the JSON view, and the example configuration's defaults.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"
#include "config/config_json.hpp"
#include "tests/config/config_test_support.hpp"

namespace callrelay::config {
namespace {

using test::error_of;

TEST(SharedPortsConfig, OffByDefault) {
  const Config c = parse("");
  EXPECT_FALSE(c.relay.multiplex_peers);
  EXPECT_EQ(c.relay.allocations_per_port, 32u);
}

TEST(SharedPortsConfig, ReadsBothKeys) {
  const Config c = parse("relay:\n  multiplex_peers: true\n  allocations_per_port: 4\n");
  EXPECT_TRUE(c.relay.multiplex_peers);
  EXPECT_EQ(c.relay.allocations_per_port, 4u);
  EXPECT_EQ(parse("relay: {allocations_per_port: 1024}").relay.allocations_per_port, 1024u);
  EXPECT_EQ(parse("relay: {allocations_per_port: 1}").relay.allocations_per_port, 1u);
}

TEST(SharedPortsConfig, RefusesNonsense) {
  EXPECT_NE(error_of("relay:\n  allocations_per_port: 0\n").find("key 'relay.allocations_per_port'"),
            std::string::npos);
  EXPECT_NE(error_of("relay:\n  allocations_per_port: 1025\n").find("relay.allocations_per_port"),
            std::string::npos);
  EXPECT_NE(error_of("relay:\n  allocations_per_port: lots\n").find("relay.allocations_per_port"),
            std::string::npos);
  EXPECT_NE(error_of("relay:\n  multiplex_peers: maybe\n").find("key 'relay.multiplex_peers'"),
            std::string::npos);
}

TEST(SharedPortsConfig, RefusedWithIoUring) {
  const std::string e = error_of("relay:\n  io: io_uring\n  multiplex_peers: true\n");
  EXPECT_NE(e.find("test.yaml:3: key 'relay.multiplex_peers'"), std::string::npos) << e;
  EXPECT_NE(e.find("io_uring"), std::string::npos) << e;
  // auto and epoll are fine (auto means epoll for shared ports).
  EXPECT_TRUE(parse("relay: {io: auto, multiplex_peers: true}").relay.multiplex_peers);
  EXPECT_TRUE(parse("relay: {io: epoll, multiplex_peers: true}").relay.multiplex_peers);
  EXPECT_NO_THROW(parse("relay: {io: io_uring, multiplex_peers: false}", "test.yaml"));
}

TEST(SharedPortsConfig, JsonViewShowsThem) {
  const auto j = to_masked_json(parse("relay: {multiplex_peers: true, allocations_per_port: 8}"));
  EXPECT_EQ(j["relay"]["multiplex_peers"], true);
  EXPECT_EQ(j["relay"]["allocations_per_port"], 8);
  const auto d = to_masked_json(parse(""));
  EXPECT_EQ(d["relay"]["multiplex_peers"], false);
  EXPECT_EQ(d["relay"]["allocations_per_port"], 32);
}

}  // namespace
}  // namespace callrelay::config
