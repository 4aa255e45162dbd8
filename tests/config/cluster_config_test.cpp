// The cluster section: off by default, its keys validated, the PostgreSQL password masked in
// the configuration JSON, and documented in the example file.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config/config_json.hpp"
#include "config_test_support.hpp"

namespace callrelay::config {
namespace {

using test::error_of;

TEST(ClusterConfig, OffUnlessConfigured) {
  for (const char* yaml :
       {"", "cluster: {}\n", "cluster: {instance_id: \"\", postgres_url: \"\"}\n"}) {
    const Config c = parse(yaml, "test.yaml");
    EXPECT_EQ(c.cluster.instance_id, "") << yaml;
    EXPECT_EQ(c.cluster.postgres_url, "") << yaml;
  }
  EXPECT_EQ(parse(default_yaml(), "<default>").cluster.postgres_url, "");
}

TEST(ClusterConfig, ValidValuesAreKept) {
  const Config c = parse(
      "cluster:\n  instance_id: relay-eu_1.a\n"
      "  postgres_url: \"postgresql://callrelay:s3cret@db.example.net:5432/callrelay\"\n",
      "test.yaml");
  EXPECT_EQ(c.cluster.instance_id, "relay-eu_1.a");
  EXPECT_EQ(c.cluster.postgres_url, "postgresql://callrelay:s3cret@db.example.net:5432/callrelay");
  EXPECT_EQ(
      parse("cluster: {postgres_url: \"postgres:///records?host=/run/postgresql\"}\n", "test.yaml")
          .cluster.postgres_url,
      "postgres:///records?host=/run/postgresql");
}

TEST(ClusterConfig, BadValuesNameTheKeyAndLineWithoutThePassword) {
  std::string e = error_of("log: {level: info}\ncluster:\n  instance_id: \"relay 1\"\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("cluster.instance_id"), std::string::npos) << e;
  e = error_of("cluster:\n  instance_id: " + std::string(65, 'a') + "\n");
  EXPECT_NE(e.find("cluster.instance_id"), std::string::npos) << e;
  e = error_of("cluster:\n  postgres_url: \"mysql://u:hunter2-pw@db/x\"\n");
  EXPECT_NE(e.find("cluster.postgres_url"), std::string::npos) << e;
  EXPECT_NE(e.find("PostgreSQL connection URI"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2-pw"), std::string::npos) << e;
  e = error_of("cluster:\n  postgres_url: \"postgresql://u@db/x extra\"\n");
  EXPECT_NE(e.find("cluster.postgres_url"), std::string::npos) << e;
  e = error_of("cluster:\n  postgres_url: [a]\n");
  EXPECT_NE(e.find("cluster.postgres_url"), std::string::npos) << e;
  e = error_of("cluster:\n  zone: eu\n");
  EXPECT_NE(e.find("zone"), std::string::npos) << e;
  e = error_of("cluster:\n  redis_url: \"http://:hunter2-pw@cache:6379\"\n");
  EXPECT_NE(e.find("cluster.redis_url"), std::string::npos) << e;
  EXPECT_NE(e.find("Redis URL"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2-pw"), std::string::npos) << e;
  e = error_of("cluster:\n  redis_url: \"redis://:hunter2-pw@cache:99999\"\n");
  EXPECT_NE(e.find("port"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2-pw"), std::string::npos) << e;
  e = error_of("cluster:\n  region: \"eu west\"\n");
  EXPECT_NE(e.find("cluster.region"), std::string::npos) << e;
  e = error_of("cluster:\n  relay_uris: [\"http://relay-1:3478\"]\n");
  EXPECT_NE(e.find("cluster.relay_uris"), std::string::npos) << e;
  e = error_of("cluster:\n  relay_uris: \"turn:relay-1:3478\"\n");
  EXPECT_NE(e.find("cluster.relay_uris"), std::string::npos) << e;
}

TEST(ClusterConfig, RedisRegionAndRelayUrisAreKept) {
  const Config c = parse(
      "cluster:\n  redis_url: \"redis://:s3cret@cache.example.net:6380/2\"\n"
      "  region: eu-west\n"
      "  relay_uris: [\"turn:relay-1.example.net:3478?transport=udp\", "
      "\"turns:relay-1.example.net:5349?transport=tcp\"]\n",
      "test.yaml");
  EXPECT_TRUE(c.cluster.redis());
  EXPECT_EQ(c.cluster.redis_url, "redis://:s3cret@cache.example.net:6380/2");
  EXPECT_EQ(c.cluster.region, "eu-west");
  ASSERT_EQ(c.cluster.relay_uris.size(), 2u);
  EXPECT_EQ(c.cluster.relay_uris[1], "turns:relay-1.example.net:5349?transport=tcp");
  const auto j = to_masked_json(c);
  EXPECT_EQ(j["cluster"]["redis_url"], "redis://:***@cache.example.net:6380/2");
  EXPECT_EQ(j["cluster"]["region"], "eu-west");
  EXPECT_EQ(j["cluster"]["relay_uris"].size(), 2u);
  EXPECT_EQ(j.dump().find("s3cret"), std::string::npos);
  EXPECT_FALSE(parse("cluster: {redis_url: \"\"}\n", "test.yaml").cluster.redis());
}

TEST(ClusterConfig, PasswordsAreMaskedInUrls) {
  EXPECT_EQ(mask_postgres_url("postgresql://callrelay:s3cret@db:5432/callrelay"),
            "postgresql://callrelay:***@db:5432/callrelay");
  EXPECT_EQ(mask_postgres_url("postgresql://callrelay:p%40ss@db/x?sslmode=require"),
            "postgresql://callrelay:***@db/x?sslmode=require");
  EXPECT_EQ(mask_postgres_url("postgresql://u@db/x?password=s3cret&sslmode=require"),
            "postgresql://u@db/x?password=***&sslmode=require");
  EXPECT_EQ(mask_postgres_url("postgresql://u:a@db/x?password=b"),
            "postgresql://u:***@db/x?password=***");
  // Nothing secret: kept as it is.
  EXPECT_EQ(mask_postgres_url("postgresql://callrelay@db/x?host=/run/postgresql"),
            "postgresql://callrelay@db/x?host=/run/postgresql");
  EXPECT_EQ(mask_postgres_url("postgresql:///x?user=a:b@c"), "postgresql:///x?user=a:b@c");
  EXPECT_EQ(mask_postgres_url("postgresql://db/x?application_name=mypassword=1"),
            "postgresql://db/x?application_name=mypassword=1");
}

TEST(ClusterConfig, TheMaskedJsonShowsNoPassword) {
  const Config c = parse(
      "cluster:\n  instance_id: relay-1\n"
      "  postgres_url: \"postgresql://callrelay:pw-IIII@db.example.net/callrelay\"\n",
      "test.yaml");
  const auto j = to_masked_json(c);
  EXPECT_EQ(j["cluster"]["instance_id"], "relay-1");
  EXPECT_EQ(j["cluster"]["postgres_url"], "postgresql://callrelay:***@db.example.net/callrelay");
  EXPECT_EQ(j.dump().find("pw-IIII"), std::string::npos);
  EXPECT_TRUE(to_masked_json(parse("", "test.yaml"))["cluster"]["postgres_url"].is_null());
}

TEST(ClusterConfig, TheExampleFileDocumentsItOff) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("\ncluster:\n  "), std::string::npos);
  EXPECT_NE(text.str().find("  instance_id:"), std::string::npos);
  EXPECT_NE(text.str().find("  postgres_url:"), std::string::npos);
  const Config c = parse(text.str(), "callrelay.example.yaml");
  EXPECT_EQ(c.cluster.postgres_url, "");
  EXPECT_NE(text.str().find("  redis_url:"), std::string::npos);
  EXPECT_FALSE(c.cluster.redis());
}

}  // namespace
}  // namespace callrelay::config
