// The command line of `callrelay ctl COMMAND [OPTIONS]`, the operator's client of the admin
// API (/api/v1/admin/): parsed into plain values, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace callrelay::app {

struct CtlOptions {
  enum class Command {
    kStatus,       ///< status
    kAllocations,  ///< allocations [--user U]
    kCalls,        ///< calls
    kEnd,          ///< end --user U | --allocation ID | --call ID
    kRevoke,       ///< revoke USERNAME
    kReload,       ///< reload
    kDrain,        ///< drain [--deadline S]
    kConfig,       ///< config
    kHelp,         ///< ctl --help (or ctl with no command)
  };
  Command command = Command::kHelp;
  bool json = false;        ///< --json: the API's JSON instead of a table
  std::string url;          ///< --url; empty: the configuration's HTTP listener
  std::string key;          ///< --key; empty: CALLRELAY_ADMIN_KEY, the config, the state dir
  std::string config_path;  ///< --config; empty: /etc/callrelay/callrelay.yaml if present
  std::optional<std::string> state_dir;  ///< --state-dir; unset: the configuration's
  bool insecure = false;                 ///< --insecure: https without checking the certificate
  uint32_t timeout_s = 10;               ///< --timeout: connecting and the whole exchange
  std::string user;                      ///< allocations --user, end --user
  std::string allocation;                ///< end --allocation
  std::string call;                      ///< end --call
  std::string username;                  ///< revoke USERNAME
  std::optional<uint32_t> deadline_s;    ///< drain --deadline
};

/// The options, or an error message for the usage line.
struct CtlParseResult {
  std::optional<CtlOptions> options;
  std::string error;
};

/// Parses the arguments after "ctl". Options may come before or after the command; "--name
/// value" and "--name=value" both work. Every command takes only its own options.
CtlParseResult parse_ctl_args(const std::vector<std::string>& args);

/// The `callrelay ctl --help` text.
const char* ctl_usage();

}  // namespace callrelay::app
