#include "app/ctl_args.hpp"

#include <charconv>
#include <map>
#include <string_view>

namespace callrelay::app {
namespace {

using Command = CtlOptions::Command;

const std::map<std::string, Command, std::less<>> kCommands = {
    {"status", Command::kStatus}, {"allocations", Command::kAllocations},
    {"calls", Command::kCalls},   {"end", Command::kEnd},
    {"revoke", Command::kRevoke}, {"reload", Command::kReload},
    {"drain", Command::kDrain},   {"config", Command::kConfig},
};

/// A whole number from `min` to `max`, or nullopt.
std::optional<uint32_t> whole_number(const std::string& text, uint32_t min, uint32_t max) {
  uint32_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < min || n > max)
    return std::nullopt;
  return n;
}

class Parser {
 public:
  explicit Parser(const std::vector<std::string>& args) : args_(args) {}
  CtlParseResult parse();

 private:
  /// One option at args_[i_] (advancing over its value); false with error_ set when bad.
  bool option(const std::string& name, const std::optional<std::string>& inline_value);
  /// The option's value: the text after '=' or the next argument.
  std::optional<std::string> value(const std::string& name,
                                   const std::optional<std::string>& inline_value);
  bool positional(const std::string& arg);
  bool check_command_options();

  const std::vector<std::string>& args_;
  size_t i_ = 0;
  CtlOptions o_;
  bool have_command_ = false;
  bool help_ = false;               ///< --help or -h anywhere: the usage, nothing else
  std::vector<std::string> given_;  ///< the command-specific options given
  std::string error_;
};

CtlParseResult Parser::parse() {
  for (i_ = 0; i_ < args_.size(); ++i_) {
    const std::string& a = args_[i_];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      const size_t eq = a.find('=');
      const std::string name = a.substr(0, eq);
      const auto inline_value =
          eq == std::string::npos ? std::nullopt : std::optional(a.substr(eq + 1));
      if (!option(name, inline_value)) return {std::nullopt, error_};
    } else if (a == "-h") {
      help_ = true;
    } else if (!positional(a)) {
      return {std::nullopt, error_};
    }
  }
  if (help_) {
    o_.command = Command::kHelp;
    return {o_, ""};
  }
  if (!have_command_)
    return {std::nullopt,
            "which command? (status, allocations, calls, end, revoke, reload, drain, config)"};
  if (!check_command_options()) return {std::nullopt, error_};
  return {o_, ""};
}

std::optional<std::string> Parser::value(const std::string& name,
                                         const std::optional<std::string>& inline_value) {
  if (inline_value) {
    if (inline_value->empty()) error_ = name + " needs a value";
    return inline_value->empty() ? std::nullopt : inline_value;
  }
  if (i_ + 1 >= args_.size() || args_[i_ + 1].empty()) {
    error_ = name + " needs a value";
    return std::nullopt;
  }
  return args_[++i_];
}

bool Parser::option(const std::string& name, const std::optional<std::string>& inline_value) {
  const auto flag = [&](bool& out) {
    if (inline_value) {
      error_ = name + " takes no value";
      return false;
    }
    out = true;
    return true;
  };
  const auto text = [&](std::string& out) {
    auto v = value(name, inline_value);
    if (v) out = std::move(*v);
    return v.has_value();
  };
  if (name == "--json") return flag(o_.json);
  if (name == "--insecure") return flag(o_.insecure);
  if (name == "--help") return flag(help_);
  if (name == "--url") return text(o_.url);
  if (name == "--key") return text(o_.key);
  if (name == "--config") return text(o_.config_path);
  if (name == "--state-dir") {
    std::string dir;
    if (!text(dir)) return false;
    o_.state_dir = dir;
    return true;
  }
  if (name == "--timeout" || name == "--deadline") {
    auto v = value(name, inline_value);
    if (!v) return false;
    const auto n = name == "--timeout" ? whole_number(*v, 1, 3600) : whole_number(*v, 0, 86400);
    if (!n) {
      error_ = name +
               (name == "--timeout" ? " needs a number of seconds from 1 to 3600"
                                    : " needs a number of seconds from 0 to 86400") +
               ", not '" + *v + "'";
      return false;
    }
    (name == "--timeout" ? o_.timeout_s : o_.deadline_s.emplace()) = *n;
    if (name == "--deadline") given_.push_back(name);
    return true;
  }
  if (name == "--user" || name == "--allocation" || name == "--call") {
    given_.push_back(name);
    return text(name == "--user" ? o_.user : name == "--allocation" ? o_.allocation : o_.call);
  }
  error_ = "unknown option '" + name + "'";
  return false;
}

bool Parser::positional(const std::string& arg) {
  if (!have_command_) {
    const auto it = kCommands.find(arg);
    if (it == kCommands.end()) {
      error_ = "unknown command '" + arg + "'";
      return false;
    }
    have_command_ = true;
    o_.command = it->second;
    return true;
  }
  if (o_.command == Command::kRevoke && o_.username.empty() && arg.rfind('-', 0) != 0) {
    o_.username = arg;
    return true;
  }
  error_ = "unexpected argument '" + arg + "'";
  return false;
}

bool Parser::check_command_options() {
  const auto allowed = [&](std::initializer_list<std::string_view> names) {
    for (const auto& g : given_) {
      bool ok = false;
      for (const auto n : names) ok = ok || g == n;
      if (!ok) {
        error_ = "option '" + g + "' does not go with this command";
        return false;
      }
    }
    return true;
  };
  switch (o_.command) {
    case Command::kAllocations:
      return allowed({"--user"});
    case Command::kEnd: {
      if (!allowed({"--user", "--allocation", "--call"})) return false;
      if (given_.size() != 1)
        error_ = "end needs exactly one of --user U, --allocation ID, --call ID";
      return given_.size() == 1;
    }
    case Command::kRevoke:
      if (o_.username.empty()) error_ = "revoke needs a USERNAME (the full REST username)";
      return !o_.username.empty() && allowed({});
    case Command::kDrain:
      return allowed({"--deadline"});
    default:
      return allowed({});
  }
}

}  // namespace

CtlParseResult parse_ctl_args(const std::vector<std::string>& args) { return Parser(args).parse(); }

const char* ctl_usage() {
  return "usage: callrelay ctl COMMAND [--json] [--url URL] [--key KEY] [--config FILE]\n"
         "                     [--state-dir DIR] [--insecure] [--timeout SECONDS]\n"
         "\n"
         "commands (over the admin API of a running relay):\n"
         "  status                        version, uptime, workers, allocations, calls, ports,\n"
         "                                draining, recent errors\n"
         "  allocations [--user U]        live allocations: user, client, relayed address, age,\n"
         "                                bytes each way, current rate, quality\n"
         "  calls                         live calls\n"
         "  end --user U | --allocation ID | --call ID\n"
         "                                end a user's allocations, one allocation, or a call\n"
         "  revoke USERNAME               refuse a REST username from now on, ending its\n"
         "                                allocations\n"
         "  reload                        reload the configuration file (as SIGHUP)\n"
         "  drain [--deadline SECONDS]    refuse new allocations, end the rest at the deadline\n"
         "  config                        the effective configuration, secrets masked\n"
         "\n"
         "  --json             print the API's JSON answer instead of a table\n"
         "  --url URL          the relay's HTTP listener (default: http.listen of the config)\n"
         "  --key KEY          an admin API key (default: $CALLRELAY_ADMIN_KEY, else the\n"
         "                     config's first admin key, else STATE_DIR/admin-key)\n"
         "  --config FILE      the relay's configuration (default: /etc/callrelay/callrelay.yaml\n"
         "                     when it exists, else the embedded default)\n"
         "  --state-dir DIR    where the relay keeps admin-key (default: state_dir of the config)\n"
         "  --insecure         https without verifying the relay's certificate\n"
         "  --timeout SECONDS  for connecting and for the whole answer (default 10)\n"
         "\n"
         "exit status: 0 done; 1 the relay answered with an error; 2 bad arguments;\n"
         "  3 the relay is unreachable; 4 no admin key, or the key was refused;\n"
         "  5 the configuration file cannot be used\n";
}

}  // namespace callrelay::app
