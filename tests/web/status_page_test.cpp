// serve_status_page(): /status is the embedded page with a strict same-origin policy, its files
// are the ones on disk, and the page's markup and script keep to what that policy allows (no
// inline code) and never turn relay data into HTML.
#include "web/status_page.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <string_view>

namespace callrelay::web {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string status_file(std::string_view name) {
  return read_file(fs::path(CALLRELAY_WEB_DIR) / "status" / name);
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

bool has_header(const http::Response& r, std::string_view name) {
  for (const auto& h : r.headers) {
    if (h.first == name) return true;
  }
  return false;
}

TEST(StatusPage, TheIndexIsServedAtStatusWithAStrictPolicy) {
  for (const char* path : {"/status", "/status/", "/status/index.html"}) {
    auto r = serve_status_page(request("GET", path));
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->content_type, "text/html; charset=utf-8") << path;
    EXPECT_EQ(r->body, status_file("index.html")) << path;
    EXPECT_EQ(header(*r, "Content-Security-Policy"), kStatusPageCsp) << path;
    EXPECT_EQ(header(*r, "X-Frame-Options"), "DENY") << path;
    EXPECT_EQ(header(*r, "Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(header(*r, "X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(header(*r, "Cache-Control"), "no-cache") << path;
    EXPECT_FALSE(has_header(*r, "Access-Control-Allow-Origin")) << path;
  }
  EXPECT_NE(std::string(kStatusPageCsp).find("default-src 'self'"), std::string::npos);
}

TEST(StatusPage, ItsScriptAndStylesAreTheFilesOnDisk) {
  auto js = serve_status_page(request("GET", "/status/status.js"));
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js->body, status_file("status.js"));
  EXPECT_EQ(header(*js, "Content-Security-Policy"), kStatusPageCsp);
  auto css = serve_status_page(request("GET", "/status/status.css"));
  ASSERT_TRUE(css.has_value());
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(css->body, status_file("status.css"));
}

TEST(StatusPage, HeadHasTheHeadersAndNoBody) {
  auto get = serve_status_page(request("GET", "/status"));
  auto head = serve_status_page(request("HEAD", "/status"));
  ASSERT_TRUE(get.has_value());
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->headers, get->headers);
}

TEST(StatusPage, OtherMethodsAreRefusedWithoutACorsPreflight) {
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    auto r = serve_status_page(request(method, "/status/"));
    ASSERT_TRUE(r.has_value()) << method;
    EXPECT_EQ(r->status, 405) << method;
    EXPECT_EQ(header(*r, "Allow"), "GET, HEAD") << method;
    EXPECT_FALSE(has_header(*r, "Access-Control-Allow-Origin")) << method;
  }
}

TEST(StatusPage, OtherPathsAreNotOurs) {
  for (const char* path :
       {"/statusx", "/status.js", "/status/missing.js", "/status//", "/status/index.html/",
        "/status/../sdk/callrelay.js", "/status/sdk/callrelay.js", "/STATUS", "/sdk/callrelay.js",
        "/", "", "/status/status.js%00"}) {
    EXPECT_FALSE(serve_status_page(request("GET", path)).has_value()) << path;
    EXPECT_FALSE(serve_status_page(request("POST", path)).has_value()) << path;
  }
}

// `default-src 'self'` refuses inline scripts, inline styles and event handler attributes:
// the page must not depend on any of them, and what it loads must be embedded.
TEST(StatusPage, TheMarkupHasNoInlineCodeAndLoadsOnlyEmbeddedFiles) {
  const std::string html = status_file("index.html");
  EXPECT_EQ(html.find("<style"), std::string::npos);
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(\sstyle\s*=)", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(\son[a-z]+\s*=)", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(html, std::regex(R"(javascript:)", std::regex::icase)));
  const std::regex script(R"(<script([^>]*)>\s*</script>)");
  size_t scripts = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), script);
       it != std::sregex_iterator(); ++it, ++scripts) {
    EXPECT_NE((*it)[1].str().find("src="), std::string::npos) << (*it)[0];
  }
  EXPECT_EQ(scripts, 1u);
  size_t opened = 0;
  for (size_t at = html.find("<script"); at != std::string::npos; at = html.find("<script", at + 1))
    ++opened;
  EXPECT_EQ(opened, scripts) << "every script element is an empty one with src";
  const std::regex ref(R"re((?:src|href)="([^"]*)")re");
  size_t refs = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator();
       ++it, ++refs) {
    const std::string url = (*it)[1];
    auto r = serve_status_page(request("GET", url));
    ASSERT_TRUE(r.has_value()) << url << " is not an embedded file of the page";
    EXPECT_EQ(r->status, 200) << url;
  }
  EXPECT_EQ(refs, 3u);  // the script, the stylesheet and the icon
}

// Users, clients and log messages come from the network: the script writes them as text only.
TEST(StatusPage, TheScriptNeverWritesHtmlOrEvaluatesCode) {
  const std::string js = status_file("status.js");
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "eval(", "new Function", "setTimeout('", "setTimeout(\""}) {
    EXPECT_EQ(js.find(sink), std::string::npos) << sink;
  }
  EXPECT_NE(js.find("textContent"), std::string::npos);
  // The key stays in this tab: sessionStorage, never localStorage or a cookie.
  EXPECT_NE(js.find("sessionStorage"), std::string::npos);
  EXPECT_EQ(js.find("localStorage"), std::string::npos);
  EXPECT_EQ(js.find("document.cookie"), std::string::npos);
}

}  // namespace
}  // namespace callrelay::web
