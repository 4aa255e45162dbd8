// http.status_page: on by default, a boolean, named with its line when wrong, and documented
// in the example file with its default.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace callrelay::config {
namespace {

using test::error_of;

TEST(StatusPageConfig, OnUnlessTurnedOff) {
  EXPECT_TRUE(parse("", "test.yaml").http.status_page);
  EXPECT_TRUE(parse("http: {listen: \"127.0.0.1:0\"}\n", "test.yaml").http.status_page);
  EXPECT_TRUE(parse("http: {status_page: true}\n", "test.yaml").http.status_page);
  EXPECT_FALSE(parse("http:\n  status_page: false\n", "test.yaml").http.status_page);
  EXPECT_TRUE(parse(default_yaml(), "<embedded default>").http.status_page);
}

TEST(StatusPageConfig, ANonBooleanNamesTheKeyAndLine) {
  const std::string e = error_of("log: {level: info}\nhttp:\n  status_page: sometimes\n");
  EXPECT_NE(e.find("test.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("http.status_page"), std::string::npos) << e;
  EXPECT_NE(error_of("http: {status_page: [true]}\n").find("http.status_page"), std::string::npos);
}

TEST(StatusPageConfig, ExampleFileDocumentsItsDefault) {
  std::ifstream in(CALLRELAY_EXAMPLE_CONFIG);
  std::stringstream text;
  text << in.rdbuf();
  const Config c = parse(text.str(), CALLRELAY_EXAMPLE_CONFIG);
  EXPECT_TRUE(c.http.status_page);
  EXPECT_NE(text.str().find("  status_page: true\n"), std::string::npos);
}

}  // namespace
}  // namespace callrelay::config
