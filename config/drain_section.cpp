#include "config/drain_section.hpp"

#include <string>

namespace callrelay::config::detail {

void read_drain_section(Reader& reader, const Field& f, DrainConfig& out) {
  Reader& r = reader;
  r.read_map(f, {
                    {"deadline_s",
                     [&](const Field& d) {
                       if (auto n = r.integer(d, 0, kMaxDrainDeadlineS))
                         out.deadline_s = static_cast<uint32_t>(*n);
                     }},
                    {"alternate_servers",
                     [&](const Field& list) {
                       r.for_each_item(list, [&](const Field& item) {
                         const auto s = r.string(item);
                         if (!s) return;
                         const auto ep = stun::Endpoint::parse(*s);
                         if (!ep || ep->port == 0) {
                           r.error(item, "must be an address and port like '203.0.113.9:3478' "
                                         "or '[2001:db8::9]:3478', not '" + *s + "'");
                           return;
                         }
                         out.alternate_servers.push_back(*ep);
                       });
                     }},
                });
}

}  // namespace callrelay::config::detail
