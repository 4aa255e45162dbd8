// serve_asset(): the bytes served are the files on disk, with the headers a cross-origin ES
// module import needs; anything that is not an embedded file is left to the other routes.
#include "web/assets.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace callrelay::web {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

http::Request request(std::string method, std::string path) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

std::string header(const http::Response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(WebAssets, ServesTheSdkAsOnDisk) {
  auto r = serve_asset(request("GET", "/sdk/callrelay.js"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, read_file(fs::path(CALLRELAY_WEB_DIR) / "sdk" / "callrelay.js"));
  EXPECT_EQ(r->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(*r, "Cache-Control"), "no-cache");
  EXPECT_EQ(header(*r, "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(header(*r, "X-Content-Type-Options"), "nosniff");
  const std::string tag = header(*r, "ETag");
  ASSERT_EQ(tag.size(), 18u) << tag;
  EXPECT_EQ(tag.front(), '"');
  EXPECT_EQ(tag.back(), '"');
}

TEST(WebAssets, EveryFileUnderSdkDemoAndStatusIsServedAsOnDisk) {
  std::vector<std::string> on_disk;
  for (const char* dir : {"sdk", "demo", "status"}) {
    const fs::path root = fs::path(CALLRELAY_WEB_DIR) / dir;
    if (!fs::exists(root)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (!entry.is_regular_file()) continue;
      const std::string url =
          "/" + fs::relative(entry.path(), CALLRELAY_WEB_DIR).generic_string();
      on_disk.push_back(url);
      auto r = serve_asset(request("GET", url));
      ASSERT_TRUE(r.has_value()) << url;
      EXPECT_EQ(r->body, read_file(entry.path())) << url;
    }
  }
  std::sort(on_disk.begin(), on_disk.end());
  EXPECT_EQ(asset_paths(), on_disk);
}

TEST(WebAssets, HeadHasTheHeadersAndNoBody) {
  auto get = serve_asset(request("GET", "/sdk/callrelay.js"));
  auto head = serve_asset(request("HEAD", "/sdk/callrelay.js"));
  ASSERT_TRUE(get.has_value());
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->content_type, get->content_type);
  EXPECT_EQ(head->headers, get->headers);
}

TEST(WebAssets, EtagIsStableForTheSameContent) {
  auto a = serve_asset(request("GET", "/sdk/callrelay.js"));
  auto b = serve_asset(request("GET", "/sdk/callrelay.js"));
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(header(*a, "ETag"), header(*b, "ETag"));
}

TEST(WebAssets, OtherMethodsAreRefusedAndPreflightIsAnswered) {
  auto post = serve_asset(request("POST", "/sdk/callrelay.js"));
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(header(*post, "Allow"), "GET, HEAD, OPTIONS");
  auto options = serve_asset(request("OPTIONS", "/sdk/callrelay.js"));
  ASSERT_TRUE(options.has_value());
  EXPECT_EQ(options->status, 204);
  EXPECT_TRUE(options->body.empty());
  EXPECT_EQ(header(*options, "Access-Control-Allow-Origin"), "*");
}

TEST(WebAssets, OtherPathsAreNotOurs) {
  for (const char* path : {"/", "/sdk", "/sdk/", "/sdk/missing.js", "/sdk/callrelay.js/",
                           "/sdk/../sdk/callrelay.js", "/SDK/callrelay.js", "//sdk/callrelay.js",
                           "/sdk/callrelay.js%00", "/metrics", "/api/v1/signal", ""}) {
    EXPECT_FALSE(serve_asset(request("GET", path)).has_value()) << path;
  }
}

}  // namespace
}  // namespace callrelay::web
