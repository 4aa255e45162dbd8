#include "web/assets.hpp"

#include <cstdint>
#include <cstdio>
#include <string_view>

#include "web/embedded.hpp"

namespace callrelay::web {
namespace {

using detail::EmbeddedFile;
using detail::kEmbeddedFileCount;
using detail::kEmbeddedFiles;

constexpr const char* kAllowedMethods = "GET, HEAD, OPTIONS";

/// Content-Type by file extension; text types say UTF-8 (the files are ours, UTF-8 throughout).
std::string content_type(std::string_view path) {
  struct Type {
    std::string_view extension;
    const char* type;
  };
  static constexpr Type kTypes[] = {
      {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
      {".html", "text/html; charset=utf-8"},     {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},             {".svg", "image/svg+xml"},
      {".png", "image/png"},                     {".ico", "image/x-icon"},
      {".md", "text/markdown; charset=utf-8"},   {".txt", "text/plain; charset=utf-8"},
  };
  for (const Type& t : kTypes) {
    if (path.size() > t.extension.size() && path.ends_with(t.extension)) return t.type;
  }
  return "application/octet-stream";
}

const EmbeddedFile* find(std::string_view path) {
  if (path == "/demo" || path == "/demo/") path = "/demo/index.html";
  for (size_t i = 0; i < kEmbeddedFileCount; ++i) {
    if (path == kEmbeddedFiles[i].path) return &kEmbeddedFiles[i];
  }
  return nullptr;
}

/// A strong ETag (RFC 9110 section 8.8.3): FNV-1a 64 of the content, which is fixed for the
/// life of the process.
std::string etag(const EmbeddedFile& f) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < f.size; ++i) {
    h ^= f.data[i];
    h *= 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

void add_cors(http::Response& r) {
  r.headers.emplace_back("Access-Control-Allow-Origin", "*");
}

}  // namespace

std::optional<http::Response> serve_asset(const http::Request& req) {
  const EmbeddedFile* f = find(req.path);
  if (f == nullptr) return std::nullopt;
  http::Response r;
  if (req.method == "OPTIONS") {  // CORS preflight (Fetch standard, section 3.2.2)
    r.status = 204;
    r.content_type.clear();
    add_cors(r);
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, HEAD");
    r.headers.emplace_back("Access-Control-Max-Age", "86400");
    return r;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    r = http::json_error(405, "method " + req.method.substr(0, 16) + " not allowed here (use " +
                                  kAllowedMethods + ")");
    r.headers.emplace_back("Allow", kAllowedMethods);
    return r;
  }
  r.content_type = content_type(f->path);
  if (req.method == "GET") r.body.assign(reinterpret_cast<const char*>(f->data), f->size);
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", etag(*f));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  add_cors(r);
  return r;
}

std::vector<std::string> asset_paths() {
  std::vector<std::string> paths;
  for (size_t i = 0; i < kEmbeddedFileCount; ++i) paths.emplace_back(kEmbeddedFiles[i].path);
  return paths;
}

}  // namespace callrelay::web
