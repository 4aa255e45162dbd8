// Reading YAML nodes into typed values while collecting every problem, each naming the key
// path and the line ("config.yaml:7: key 'relay.ports.min': must be ..."). Private to
// config/: the schema lives in config.cpp, the mechanics here.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callrelay::config::detail {

/// One value in the document: its dotted key path ("relay.ports.min"), node and 1-based line.
struct Field {
  std::string path;
  YAML::Node node;
  int line = 0;  ///< 0 when unknown
};

/// Handler for one known key of a mapping.
struct KeyHandler {
  std::string_view key;
  std::function<void(const Field&)> read;
};

/// Collects problems instead of stopping at the first, so an operator fixes a file in one go.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  /// Records "source:line: key 'path': message".
  void error(const Field& f, std::string_view message);
  /// Records "source:line: message" (no key: syntax errors, whole-document problems).
  void error_at(int line, std::string_view message);
  const std::vector<std::string>& errors() const { return errors_; }
  const std::string& source() const { return source_; }

  /// Visits a mapping: dispatches each known key to its handler; unknown keys (with a
  /// did-you-mean suggestion) and duplicate keys are errors. A null node is an empty mapping.
  void read_map(const Field& f, const std::vector<KeyHandler>& handlers);

  /// Scalars. Each returns nullopt (having recorded the error) when the value does not fit.
  std::optional<std::string> string(const Field& f);
  /// A string that must be one of `choices`; otherwise the error names them ("must be auto or
  /// off, not 'x'", "must be one of a, b, c; not 'x'"), with `note` after the list.
  std::optional<std::string> choice(const Field& f,
                                    std::initializer_list<std::string_view> choices,
                                    std::string_view note = {});
  std::optional<bool> boolean(const Field& f);
  /// An integer within [min, max] (decimal; no sign for unsigned ranges).
  std::optional<int64_t> integer(const Field& f, int64_t min, int64_t max);
  /// A sequence of strings (a null node is an empty sequence).
  std::optional<std::vector<std::string>> string_list(const Field& f);
  /// Visits each element of a sequence as a Field named "path[i]".
  void for_each_item(const Field& f, const std::function<void(const Field&)>& visit);

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

/// Child field of a mapping entry: path "parent.key", line of the key.
Field child(const Field& parent, const YAML::Node& key, const YAML::Node& value);
/// 1-based line of a node, 0 if yaml-cpp has no mark for it.
int line_of(const YAML::Node& n);
/// The closest candidate within a small edit distance, for "did you mean 'x'?".
std::optional<std::string_view> closest(std::string_view word,
                                        const std::vector<std::string_view>& candidates);

}  // namespace callrelay::config::detail
