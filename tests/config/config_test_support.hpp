// What the configuration tests share: the error a YAML text is refused with.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"

namespace callrelay::config::test {

/// The ConfigError message for `yaml` (parsed as "test.yaml"); fails the test when it parses.
inline std::string error_of(const std::string& yaml) {
  try {
    parse(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError for:\n" << yaml;
  return {};
}

}  // namespace callrelay::config::test
