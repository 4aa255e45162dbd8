// The stream keys of the configuration: listen.tcp/listen.tls, tls.*, streams.*, their
// defaults, errors, the example file documenting them, and the mapping to the server.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "tests/streams/stream_client.hpp"

namespace callrelay::config {
namespace {

stun::Endpoint ep(const char* s) { return *stun::Endpoint::parse(s); }

TEST(StreamConfig, TcpDefaultsToTheUdpEndpointsAndTlsNeedsACertificate) {
  const Config d = parse(default_yaml());
  EXPECT_EQ(d.listen.tcp, d.listen.udp);
  EXPECT_TRUE(d.listen.tls.empty());
  const Config c = parse("listen: {udp: ['127.0.0.1:0']}\n");
  EXPECT_EQ(c.listen.tcp, std::vector<stun::Endpoint>{ep("127.0.0.1:0")});
  const Config none = parse("listen: {udp: ['127.0.0.1:0'], tcp: []}\n");
  EXPECT_TRUE(none.listen.tcp.empty());
  EXPECT_EQ(d.streams.idle_timeout_s, 30u);
  EXPECT_EQ(d.tls.min_version, "1.2");
  EXPECT_FALSE(d.tls.pack_records);
}

TEST(StreamConfig, ACertificateOpensTls5349ByDefault) {
  net::testing::TestCertificate cert;
  const Config c = parse("tls: {cert: '" + cert.cert_file + "', key: '" + cert.key_file + "'}\n");
  EXPECT_EQ(c.listen.tls, (std::vector<stun::Endpoint>{ep("0.0.0.0:5349"), ep("[::]:5349")}));
  EXPECT_EQ(c.tls.cert, cert.cert_file);
  const Config on443 =
      parse("listen: {tls: ['0.0.0.0:443']}\ntls: {cert: '" + cert.cert_file + "', key: '" +
            cert.key_file + "', min_version: '1.3', records: packed}\n" +
            "streams: {idle_timeout: 5, max_frame: 1500, send_queue: 100000, "
            "max_connections: 10}\n");
  EXPECT_EQ(on443.listen.tls, std::vector<stun::Endpoint>{ep("0.0.0.0:443")});
  EXPECT_EQ(on443.tls.min_version, "1.3");
  EXPECT_TRUE(on443.tls.pack_records);
  EXPECT_FALSE(parse("tls: {records: per_frame}\n").tls.pack_records);
  EXPECT_EQ(on443.streams.idle_timeout_s, 5u);
  EXPECT_EQ(on443.streams.max_frame_bytes, 1500u);
  EXPECT_EQ(on443.streams.send_queue_bytes, 100000u);
  EXPECT_EQ(on443.streams.max_connections, 10u);
}

void expect_error(const std::string& yaml, const std::string& expected) {
  try {
    parse(yaml, "test.yaml");
    ADD_FAILURE() << "no error for:\n" << yaml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(StreamConfig, Errors) {
  expect_error("listen: {tls: ['0.0.0.0:5349']}\n", "key 'listen.tls': listening on TLS needs");
  expect_error("listen: {tcp: ['nonsense']}\n", "key 'listen.tcp[0]'");
  expect_error("tls: {min_version: '1.1'}\n", "key 'tls.min_version'");
  expect_error("tls: {records: whole}\n", "key 'tls.records': must be per_frame or packed, not 'whole'");
  expect_error("tls: {cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem'}\n",
               "cannot read '/nonexistent/cert.pem'");
  net::testing::TestCertificate cert;
  expect_error("tls: {cert: '" + cert.cert_file + "'}\n", "give both or neither");
  expect_error("streams: {max_frame: 100}\n", "key 'streams.max_frame'");
  expect_error("streams: {bogus: 1}\n", "streams.bogus");
}

TEST(StreamConfig, ExampleFileDocumentsTheStreamKeys) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const std::string example = text.str();
  for (const char* key : {"tcp", "tls", "cert", "key", "min_version", "records", "streams",
                          "idle_timeout", "max_frame", "send_queue", "max_connections"}) {
    const std::string k = key;
    const bool found = example.find("\n" + k + ":") != std::string::npos ||
                       example.find(" " + k + ":") != std::string::npos;
    EXPECT_TRUE(found) << "config/callrelay.example.yaml does not document '" << key << "'";
  }
  const Config c = load_file(CALLRELAY_EXAMPLE_CONFIG);
  EXPECT_EQ(c.listen.tcp, c.listen.udp);
  EXPECT_TRUE(c.listen.tls.empty());
}

}  // namespace
}  // namespace callrelay::config
