// `callrelay ctl` arguments: every command with its options, and every mistake refused with a
// message for the usage line.
#include "app/ctl_args.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace callrelay::app {
namespace {

using Command = CtlOptions::Command;

CtlOptions ok(const std::vector<std::string>& args) {
  const CtlParseResult r = parse_ctl_args(args);
  EXPECT_TRUE(r.options.has_value()) << r.error;
  return r.options.value_or(CtlOptions{});
}

std::string error_of(const std::vector<std::string>& args) {
  const CtlParseResult r = parse_ctl_args(args);
  EXPECT_FALSE(r.options.has_value());
  return r.error;
}

TEST(CtlArgs, EveryCommand) {
  EXPECT_EQ(ok({"status"}).command, Command::kStatus);
  EXPECT_EQ(ok({"allocations"}).command, Command::kAllocations);
  EXPECT_EQ(ok({"calls"}).command, Command::kCalls);
  EXPECT_EQ(ok({"reload"}).command, Command::kReload);
  EXPECT_EQ(ok({"config"}).command, Command::kConfig);
  EXPECT_EQ(ok({"drain"}).command, Command::kDrain);
  EXPECT_FALSE(ok({"drain"}).deadline_s.has_value());
}

TEST(CtlArgs, CommandOptions) {
  EXPECT_EQ(ok({"allocations", "--user", "alice"}).user, "alice");
  EXPECT_EQ(ok({"allocations", "--user=bob"}).user, "bob");
  const CtlOptions end_user = ok({"end", "--user", "alice"});
  EXPECT_EQ(end_user.command, Command::kEnd);
  EXPECT_EQ(end_user.user, "alice");
  EXPECT_EQ(ok({"end", "--allocation", "0-17"}).allocation, "0-17");
  EXPECT_EQ(ok({"end", "--call=c_x"}).call, "c_x");
  const CtlOptions revoke = ok({"revoke", "1700000000:alice"});
  EXPECT_EQ(revoke.command, Command::kRevoke);
  EXPECT_EQ(revoke.username, "1700000000:alice");
  EXPECT_EQ(ok({"drain", "--deadline", "30"}).deadline_s, std::optional<uint32_t>(30));
  EXPECT_EQ(ok({"drain", "--deadline=0"}).deadline_s, std::optional<uint32_t>(0));
}

TEST(CtlArgs, CommonOptionsBeforeOrAfterTheCommand) {
  const CtlOptions o =
      ok({"--json", "--url", "https://[::1]:9641", "status", "--key=k", "--config", "/etc/c.yaml",
          "--state-dir", "/var/lib/x", "--insecure", "--timeout", "3"});
  EXPECT_EQ(o.command, Command::kStatus);
  EXPECT_TRUE(o.json);
  EXPECT_TRUE(o.insecure);
  EXPECT_EQ(o.url, "https://[::1]:9641");
  EXPECT_EQ(o.key, "k");
  EXPECT_EQ(o.config_path, "/etc/c.yaml");
  EXPECT_EQ(o.state_dir, std::optional<std::string>("/var/lib/x"));
  EXPECT_EQ(o.timeout_s, 3u);
}

TEST(CtlArgs, Help) {
  EXPECT_EQ(ok({"--help"}).command, Command::kHelp);
  EXPECT_EQ(ok({"status", "-h"}).command, Command::kHelp);
  EXPECT_EQ(ok({"--help", "status"}).command, Command::kHelp);
}

TEST(CtlArgs, MistakesAreRefused) {
  EXPECT_NE(error_of({}).find("which command"), std::string::npos);
  EXPECT_NE(error_of({"stats"}).find("unknown command 'stats'"), std::string::npos);
  EXPECT_NE(error_of({"status", "--verbose"}).find("unknown option '--verbose'"),
            std::string::npos);
  EXPECT_NE(error_of({"status", "--user", "a"}).find("does not go with"), std::string::npos);
  EXPECT_NE(error_of({"calls", "--deadline", "3"}).find("does not go with"), std::string::npos);
  EXPECT_NE(error_of({"end"}).find("exactly one of"), std::string::npos);
  EXPECT_NE(error_of({"end", "--user", "a", "--call", "c"}).find("exactly one of"),
            std::string::npos);
  EXPECT_NE(error_of({"revoke"}).find("needs a USERNAME"), std::string::npos);
  EXPECT_NE(error_of({"revoke", "a", "b"}).find("unexpected argument 'b'"), std::string::npos);
  EXPECT_NE(error_of({"status", "extra"}).find("unexpected argument"), std::string::npos);
  EXPECT_NE(error_of({"status", "--url"}).find("--url needs a value"), std::string::npos);
  EXPECT_NE(error_of({"status", "--key="}).find("--key needs a value"), std::string::npos);
  EXPECT_NE(error_of({"status", "--json=yes"}).find("takes no value"), std::string::npos);
  EXPECT_NE(error_of({"drain", "--deadline", "-1"}).find("0 to 86400"), std::string::npos);
  EXPECT_NE(error_of({"drain", "--deadline", "90000"}).find("0 to 86400"), std::string::npos);
  EXPECT_NE(error_of({"status", "--timeout", "0"}).find("1 to 3600"), std::string::npos);
  EXPECT_NE(error_of({"status", "--timeout", "5s"}).find("not '5s'"), std::string::npos);
}

}  // namespace
}  // namespace callrelay::app
