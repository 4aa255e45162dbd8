// The load record every instance publishes (read back untrusted) and the choice of instances a
// credential carries. Pure: no Redis.
#include "cluster/shared/instance_load.hpp"

#include <gtest/gtest.h>

namespace callrelay::cluster {
namespace {

InstanceLoad load(std::string id, uint64_t allocations, std::string region = "",
                  bool draining = false, uint64_t calls = 0) {
  InstanceLoad l;
  l.uris = {"turn:" + id + ".example.net:3478?transport=udp",
            "turns:" + id + ".example.net:5349?transport=tcp"};
  l.id = std::move(id);
  l.region = std::move(region);
  l.allocations = allocations;
  l.calls = calls;
  l.draining = draining;
  return l;
}

TEST(InstanceLoad, RoundTrips) {
  const InstanceLoad in = load("relay-1", 42, "eu-west", true, 7);
  const auto out = parse_instance_load(to_json(in));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->id, "relay-1");
  EXPECT_EQ(out->region, "eu-west");
  EXPECT_EQ(out->uris, in.uris);
  EXPECT_EQ(out->allocations, 42u);
  EXPECT_EQ(out->calls, 7u);
  EXPECT_TRUE(out->draining);
}

TEST(InstanceLoad, RefusesWhatIsNotARecord) {
  for (const char* bad : {
           "", "null", "[]", "{", "\"x\"",
           R"({"region":"","uris":[],"allocations":0,"calls":0,"draining":false})",
           R"({"id":"","region":"","uris":[],"allocations":0,"calls":0,"draining":false})",
           R"({"id":"a","region":"","uris":[],"allocations":-1,"calls":0,"draining":false})",
           R"({"id":"a","region":"","uris":[],"allocations":1.5,"calls":0,"draining":false})",
           R"({"id":"a","region":"","uris":[1],"allocations":0,"calls":0,"draining":false})",
           R"({"id":"a","region":"","uris":"turn:x","allocations":0,"calls":0,"draining":false})",
           R"({"id":"a","region":"","uris":[],"allocations":0,"calls":0,"draining":"no"})",
           R"({"id":7,"region":"","uris":[],"allocations":0,"calls":0,"draining":false})",
       })
    EXPECT_FALSE(parse_instance_load(bad)) << bad;
  std::string many = R"({"id":"a","region":"","allocations":0,"calls":0,"draining":false,"uris":[)";
  for (size_t i = 0; i <= kMaxPublishedUris; ++i) many += (i ? ",\"turn:x\"" : "\"turn:x\"");
  EXPECT_FALSE(parse_instance_load(many + "]}"));
  EXPECT_FALSE(parse_instance_load(std::string(kMaxLoadRecordBytes + 1, ' ')));
}

TEST(PickUris, LeastLoadedInstanceOnly) {
  const auto uris = pick_uris({load("a", 5), load("b", 2), load("c", 9)}, "", 1);
  EXPECT_EQ(uris, load("b", 0).uris);
}

TEST(PickUris, DrainingInstancesAreLeftOut) {
  const auto uris = pick_uris({load("a", 5), load("b", 0, "", true), load("c", 9)}, "", 1);
  EXPECT_EQ(uris, load("a", 0).uris);
  EXPECT_TRUE(pick_uris({load("a", 0, "", true)}, "", 1).empty());
}

TEST(PickUris, ClientRegionFirstThenOthers) {
  const std::vector<InstanceLoad> all = {load("a", 1, "us-east"), load("b", 8, "eu-west"),
                                         load("c", 3, "eu-west")};
  EXPECT_EQ(pick_uris(all, "eu-west", 1), load("c", 0).uris);
  // No instance there (or none named): the least loaded of all.
  EXPECT_EQ(pick_uris(all, "ap-south", 1), load("a", 0).uris);
  EXPECT_EQ(pick_uris(all, "", 1), load("a", 0).uris);
  // Several: the region's by load, then the rest.
  auto three = pick_uris(all, "eu-west", 3);
  ASSERT_EQ(three.size(), 6u);
  EXPECT_EQ(three[0], load("c", 0).uris[0]);
  EXPECT_EQ(three[2], load("b", 0).uris[0]);
  EXPECT_EQ(three[4], load("a", 0).uris[0]);
}

TEST(PickUris, TiesGoByCallsThenId) {
  EXPECT_EQ(pick_uris({load("b", 1), load("a", 1)}, "", 1), load("a", 0).uris);
  EXPECT_EQ(pick_uris({load("a", 1, "", false, 3), load("b", 1, "", false, 1)}, "", 1),
            load("b", 0).uris);
}

TEST(PickUris, EachUriOnce) {
  InstanceLoad a = load("a", 0), b = load("b", 1);
  b.uris = a.uris;  // two instances behind one name
  EXPECT_EQ(pick_uris({a, b}, "", 2), a.uris);
}

}  // namespace
}  // namespace callrelay::cluster
