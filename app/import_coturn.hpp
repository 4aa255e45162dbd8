// `callrelay import-coturn FILE`: coturn's turnserver.conf printed as callrelay's YAML.
#pragma once

#include <string>

namespace callrelay::app {

/// Exit statuses of import-coturn.
inline constexpr int kImportUnreadable = 1;  ///< FILE cannot be read (or is not a text file)
inline constexpr int kImportInvalid = 2;     ///< the result does not pass --check-config's checks

/// Reads FILE, writes the YAML to stdout and each option not imported (and each note) as a line
/// on stderr. The YAML goes out only once it validates as --check-config would validate it, so
/// `> callrelay.yaml` never gets a file the server refuses. Returns 0 or one of the above.
int run_import_coturn(const std::string& path);

}  // namespace callrelay::app
