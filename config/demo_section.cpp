#include "config/demo_section.hpp"

namespace callrelay::config::detail {

void read_demo_section(Reader& reader, const Field& f, DemoConfig& out, Field& enabled_at) {
  reader.read_map(f, {{"enabled", [&](const Field& v) {
                         enabled_at = v;
                         if (auto b = reader.boolean(v)) out.enabled = *b;
                       }}});
}

void check_demo_section(Reader& reader, const Config& cfg, const Field& enabled_at) {
  if (!cfg.demo.enabled) return;
  Field where = enabled_at;
  if (where.path.empty()) where.path = "demo.enabled";
  if (!cfg.http.enabled)
    reader.error(where, "needs http.enabled: true (the demo is served on the HTTP listener)");
  if (!cfg.calls.enabled)
    reader.error(where, "needs calls.enabled: true (the demo makes calls)");
}

}  // namespace callrelay::config::detail
