// The command line: `callrelay [--config FILE] [--check-config] [--state-dir DIR] [--version]
// [--help]`, `callrelay mint-credential USER [--ttl SECONDS] [--config FILE] [--state-dir DIR]`
// and `callrelay import-coturn FILE`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace callrelay::app {

struct CommandLine {
  enum class Command { kServe, kCheckConfig, kMintCredential, kVersion, kHelp, kImportCoturn };
  Command command = Command::kServe;
  std::string config_path;               ///< empty: the embedded default
  std::optional<std::string> state_dir;  ///< overrides the config's state_dir
  std::string user;                      ///< mint-credential USER
  int64_t ttl_s = 86400;                 ///< mint-credential --ttl
  std::string import_path;               ///< import-coturn FILE (a coturn turnserver.conf)
};

/// Parses argv (without argv[0]). Returns the command line, or an error message.
struct ParseResult {
  std::optional<CommandLine> cli;
  std::string error;
};
ParseResult parse_command_line(const std::vector<std::string>& args);

/// The --help text.
const char* usage();

}  // namespace callrelay::app
