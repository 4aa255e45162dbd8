#include "app/cli.hpp"

#include <charconv>

namespace callrelay::app {
namespace {

/// "--name value" or "--name=value": returns the value and advances `i`, or nullopt.
std::optional<std::string> option_value(const std::vector<std::string>& args, size_t& i,
                                        const std::string& name, std::string& error) {
  const std::string& a = args[i];
  if (a == name) {
    if (i + 1 >= args.size()) {
      error = name + " needs a value";
      return std::nullopt;
    }
    return args[++i];
  }
  if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
  return std::nullopt;
}

/// `import-coturn FILE`: exactly one file, or --help.
ParseResult parse_import_coturn(const std::vector<std::string>& args) {
  CommandLine cli;
  cli.command = CommandLine::Command::kImportCoturn;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      cli.command = CommandLine::Command::kHelp;
    } else if (cli.import_path.empty() && !a.empty() && a[0] != '-') {
      cli.import_path = a;
    } else {
      return {std::nullopt, "import-coturn takes one FILE, not also '" + a + "'"};
    }
  }
  if (cli.command == CommandLine::Command::kImportCoturn && cli.import_path.empty())
    return {std::nullopt, "import-coturn needs coturn's configuration FILE (/etc/turnserver.conf)"};
  return {cli, ""};
}

}  // namespace

const char* usage() {
  return "usage: callrelay [--config FILE] [--check-config] [--state-dir DIR] [--version] "
         "[--help]\n"
         "       callrelay mint-credential USER [--ttl SECONDS] [--config FILE] [--state-dir DIR]\n"
         "       callrelay ctl COMMAND [OPTIONS]  (callrelay ctl --help lists them)\n"
         "       callrelay import-coturn FILE > callrelay.yaml\n"
         "\n"
         "  --config FILE     YAML configuration (default: the embedded default configuration)\n"
         "  --check-config    validate the configuration, print \"config OK\" and exit\n"
         "  --state-dir DIR   where a generated REST secret is kept (overrides state_dir)\n"
         "  mint-credential   print a TURN REST username and password for USER, valid for\n"
         "                    --ttl seconds (default 86400), made with the first REST secret\n"
         "  ctl               the operator's client of a running relay's admin API: status,\n"
         "                    allocations, calls, end, revoke, reload, drain, config\n"
         "  import-coturn     print coturn's turnserver.conf FILE as callrelay's YAML; what\n"
         "                    cannot be carried over is listed in it and on stderr. Exit 1: FILE\n"
         "                    unreadable; 2: the result does not validate (nothing printed)\n";
}

ParseResult parse_command_line(const std::vector<std::string>& args) {
  CommandLine cli;
  std::string error;
  size_t i = 0;
  if (!args.empty() && args[0] == "import-coturn") return parse_import_coturn(args);
  if (!args.empty() && args[0] == "mint-credential") {
    cli.command = CommandLine::Command::kMintCredential;
    i = 1;
  }
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (auto v = option_value(args, i, "--config", error)) {
      cli.config_path = *v;
    } else if (auto d = option_value(args, i, "--state-dir", error)) {
      cli.state_dir = *d;
    } else if (auto t = option_value(args, i, "--ttl", error)) {
      int64_t ttl = 0;
      const auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), ttl);
      if (ec != std::errc() || end != t->data() + t->size() || ttl <= 0) {
        return {std::nullopt, "--ttl needs a positive number of seconds, not '" + *t + "'"};
      }
      cli.ttl_s = ttl;
    } else if (!error.empty()) {
      return {std::nullopt, error};
    } else if (a == "--check-config" && cli.command == CommandLine::Command::kServe) {
      cli.command = CommandLine::Command::kCheckConfig;
    } else if (a == "--version") {
      cli.command = CommandLine::Command::kVersion;
    } else if (a == "--help" || a == "-h") {
      cli.command = CommandLine::Command::kHelp;
    } else if (cli.command == CommandLine::Command::kMintCredential && cli.user.empty() &&
               !a.empty() && a[0] != '-') {
      cli.user = a;
    } else {
      return {std::nullopt, "unknown argument '" + a + "'"};
    }
  }
  if (!error.empty()) return {std::nullopt, error};
  if (cli.command == CommandLine::Command::kMintCredential && cli.user.empty()) {
    return {std::nullopt, "mint-credential needs a USER"};
  }
  return {cli, ""};
}

}  // namespace callrelay::app
