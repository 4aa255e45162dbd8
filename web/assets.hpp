// Static files served by callrelay's HTTP listener: the browser SDK (/sdk/callrelay.js) and the
// demo (/demo/...), embedded in the binary at build time. Pure request -> response, like the
// router's other routes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "http/message.hpp"

namespace callrelay::web {

/// The response for an embedded file's path: GET and HEAD get the file (HEAD without its
/// body), with its Content-Type, an ETag of its content, Cache-Control: no-cache (browsers
/// revalidate, so an upgraded server is picked up at once) and Access-Control-Allow-Origin: *
/// (apps on any origin import the SDK; it carries no credentials). OPTIONS gets the CORS
/// preflight answer, other methods 405. Any other path: nullopt (not ours). "/demo" and
/// "/demo/" mean /demo/index.html when the demo is embedded.
std::optional<http::Response> serve_asset(const http::Request& req);

/// The URL paths of every embedded file, sorted.
std::vector<std::string> asset_paths();

}  // namespace callrelay::web
