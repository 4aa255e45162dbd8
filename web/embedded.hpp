// The files embedded at build time (web/embed.cmake generates their definition from web/sdk and
// web/demo). Internal to callrelay_web: the HTTP side goes through serve_asset().
#pragma once

#include <cstddef>

namespace callrelay::web::detail {

struct EmbeddedFile {
  const char* path;            ///< URL path, e.g. "/sdk/callrelay.js"
  const unsigned char* data;
  size_t size;
};

/// kEmbeddedFileCount entries, sorted by path (an empty build has one null entry, count 0).
extern const EmbeddedFile kEmbeddedFiles[];
extern const size_t kEmbeddedFileCount;

}  // namespace callrelay::web::detail
