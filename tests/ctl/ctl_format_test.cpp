// What `callrelay ctl` prints: aligned tables of the admin API's answers, human units, and
// escaped text (a user name cannot send escape sequences to the operator's terminal).
#include "app/ctl_format.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace callrelay::app {
namespace {

using nlohmann::json;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(CtlFormat, TableColumnsAlign) {
  const std::string t =
      render_table({{"ID", "USER", "BYTES"}, {"0-1", "alice", "5"}, {"1-22", "bo", "1234"}},
                   {false, false, true});
  EXPECT_EQ(t,
            "ID    USER   BYTES\n"
            "0-1   alice      5\n"
            "1-22  bo      1234\n");
}

TEST(CtlFormat, Units) {
  EXPECT_EQ(human_bytes(950), "950 B");
  EXPECT_EQ(human_bytes(1234), "1.2 kB");
  EXPECT_EQ(human_bytes(3'400'000), "3.4 MB");
  EXPECT_EQ(human_rate(100'000), "800.0 kbit/s");
  EXPECT_EQ(human_rate(0), "0 bit/s");
  EXPECT_EQ(human_age(12.5), "12s");
  EXPECT_EQ(human_age(303), "5m03s");
  EXPECT_EQ(human_age(7440), "2h04m");
  EXPECT_EQ(human_age(266400), "3d02h");
  EXPECT_EQ(human_age(-1), "-");
}

TEST(CtlFormat, ControlCharactersAreEscaped) {
  EXPECT_EQ(printable("al\x1b[31mice\n"), "al\\x1b[31mice\\x0a");
  const json a = {{"allocations", {{{"id", "0-1"}, {"user", "\x1b]0;owned\x07"}}}}};
  const std::string t = format_allocations(a);
  EXPECT_EQ(t.find('\x1b'), std::string::npos);
  EXPECT_NE(t.find("\\x1b]0;owned\\x07"), std::string::npos);
}

TEST(CtlFormat, Status) {
  const json s = json::parse(R"({"version":"0.9.0","uptime_s":3725,"workers":2,"draining":true,
    "drain_deadline_s":120,"allocations":{"total":3,"by_transport":{"udp":2,"tcp":1,"tls":0}},
    "calls":{"ringing":0,"connecting":1,"active":1},"signaling_connections":2,
    "relay_ports":{"in_use":3,"total":4001},
    "recent_errors":[{"time":"2026-12-03T08:00:00.123Z","level":"warn","event":"auth.failed",
                      "message":"bad password"}]})");
  const auto lines = lines_of(format_status(s));
  ASSERT_GE(lines.size(), 11u);
  EXPECT_EQ(lines[0], "version      0.9.0");
  EXPECT_EQ(lines[1], "uptime       1h02m");
  EXPECT_EQ(lines[2], "workers      2");
  EXPECT_EQ(lines[3], "draining     yes (allocations end within 2m00s)");
  EXPECT_EQ(lines[4], "allocations  3 (udp 2, tcp 1, tls 0)");
  EXPECT_EQ(lines[5], "calls        1 active, 1 connecting, 0 ringing");
  EXPECT_EQ(lines[6], "signaling    2 connection(s)");
  EXPECT_EQ(lines[7], "relay ports  3 of 4001 in use");
  EXPECT_EQ(lines[8], "recent errors:");
  EXPECT_EQ(lines[9], "TIME                      LEVEL  EVENT        MESSAGE");
  EXPECT_EQ(lines[10], "2026-12-03T08:00:00.123Z  warn   auth.failed  bad password");
}

TEST(CtlFormat, StatusWithMissingFieldsPrintsDashes) {
  const auto lines = lines_of(format_status(json::parse(R"({"workers":"two","calls":[]})")));
  EXPECT_EQ(lines[0], "version      -");
  EXPECT_EQ(lines[2], "workers      two");
  EXPECT_EQ(lines[3], "draining     -");
  EXPECT_EQ(lines.back(), "recent errors: none");
  EXPECT_EQ(format_status(json("not an object")).find("version      -"), 0u);
}

TEST(CtlFormat, Allocations) {
  const json a = json::parse(R"({"allocations":[{"id":"0-17","user":"alice","transport":"udp",
    "family":"ipv4","client":"127.0.0.1:5000","relayed":["127.0.0.1:61000"],"age_s":12.5,
    "bytes":{"client_to_peer":1200,"peer_to_client":900},
    "rate_bytes_per_s":{"client_to_peer":100.0,"peer_to_client":75.0},
    "quality":{"loss_ratio":0.01,"jitter_ms":3.2},"call_id":null}]})");
  const auto lines = lines_of(format_allocations(a));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "ID    USER   TRANSPORT  CLIENT          RELAYED          AGE  TO PEER  FROM PEER  "
            " RATE OUT    RATE IN  LOSS  JITTER  CALL");
  EXPECT_EQ(lines[1],
            "0-17  alice  udp/ipv4   127.0.0.1:5000  127.0.0.1:61000  12s   1.2 kB      900 B  "
            "800 bit/s  600 bit/s  1.0%  3.2 ms  -");
  EXPECT_EQ(format_allocations(json::parse(R"({"allocations":[]})")), "no live allocations\n");
}

TEST(CtlFormat, Calls) {
  const json c = json::parse(R"({"calls":[{"id":"c_abc","state":"active","caller":"alice",
    "callee":"bob","age_s":3.1,"allocations":2,
    "quality":{"mos":4.2,"loss_ratio":0.0,"jitter_ms":2.0,"rtt_ms":40.0}},
    {"id":"c_def","state":"ringing","caller":"carol","callee":"dave","age_s":1,"allocations":0,
    "quality":null}]})");
  const auto lines = lines_of(format_calls(c));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "ID     STATE    CALLER  CALLEE  AGE  ALLOCATIONS  MOS  LOSS  JITTER      RTT");
  EXPECT_EQ(lines[1],
            "c_abc  active   alice   bob      3s            2  4.2  0.0%  2.0 ms  40.0 ms");
  EXPECT_EQ(lines[2],
            "c_def  ringing  carol   dave     1s            0    -     -       -        -");
  EXPECT_EQ(format_calls(json::object()), "no live calls\n");
}

TEST(CtlFormat, ConfigFlattened) {
  const json c = json::parse(R"({"realm":"example.org","auth":{"secrets":["***","***"],
    "users":{}},"relay":{"ports":{"min":61000,"max":65000},"bind_ipv4":null},"peers":
    {"allow":[]}})");
  const auto lines = lines_of(format_config(c));
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "auth.secrets     ***, ***",
                       "auth.users       {}",
                       "peers.allow      []",
                       "realm            example.org",
                       "relay.bind_ipv4  null",
                       "relay.ports.max  65000",
                       "relay.ports.min  61000",
                   }));
}

}  // namespace
}  // namespace callrelay::app
