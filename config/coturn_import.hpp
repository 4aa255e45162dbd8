// Moving from coturn: a turnserver.conf in, callrelay's YAML configuration out
// (`callrelay import-coturn FILE > callrelay.yaml`). Pure: text in, text out; nothing is read
// from disk here, so the same input always gives the same output.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace callrelay::config {

struct CoturnImportOptions {
  /// The coturn file's name, shown in the output's header comment.
  std::string source_name = "turnserver.conf";
  /// Finds the file coturn would open for a relative cert= or pkey= name (coturn 4.6 searches
  /// the working directory, then /etc and /usr/local/etc; see app/import_coturn.cpp). Unset:
  /// the name is taken relative to base_dir. The YAML gets the path it returns.
  std::function<std::string(const std::string& name)> find_file;
  /// Directory relative cert= and pkey= names are taken from when find_file is unset; empty:
  /// left as they are (callrelay then reads them relative to its own file).
  std::string base_dir;
};

/// A coturn option that has no counterpart in callrelay (or a value that cannot be carried
/// over), with the reason and what to do instead. Never holds a secret's value.
struct CoturnSkipped {
  std::string option;  ///< the option name as written ("cli-password")
  int line = 0;        ///< 1-based line in the coturn file; 0: not from one line
  std::string reason;
};

struct CoturnImport {
  /// The callrelay configuration: a header, every skipped option and note as a comment, then
  /// the keys, each commented with the coturn option it came from. Only keys coturn set (or
  /// that differ from callrelay's defaults in a way coturn's behaviour needs) are written.
  std::string yaml;
  std::vector<CoturnSkipped> not_imported;
  /// Behaviour that differs although everything was mapped (secure defaults, DTLS, ...).
  std::vector<std::string> notes;
};

/// Reads a turnserver.conf as coturn 4.6 does (one `option`, `option=value` or
/// `option value` per line; '#' starts a comment line; a value in double quotes loses them;
/// the last of a repeated single-valued option wins) and maps every option with a
/// counterpart. Never throws on bad input: unknown options and bad values land in
/// not_imported. The YAML is meant to pass config::parse (the caller checks it).
CoturnImport import_coturn(std::string_view conf_text, const CoturnImportOptions& options = {});

/// "OPTION: reason (line N)": the text after "not imported: " in the comments and on stderr.
std::string describe(const CoturnSkipped& skipped);

}  // namespace callrelay::config
