// `callrelay ctl COMMAND`: the operator's client of a running relay's admin API
// (/api/v1/admin/ and the credential API's revoke), printing tables or, with --json, the
// API's JSON. See ctl_usage() for the commands and the exit statuses.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace callrelay::app {

/// Runs the command in `args` (the arguments after "ctl"): the answer goes to `out`, errors
/// to `err`. `env_key` is CALLRELAY_ADMIN_KEY's value (null: unset). Returns the exit status.
int run_ctl(const std::vector<std::string>& args, const char* env_key, std::ostream& out,
            std::ostream& err);

}  // namespace callrelay::app
