#include "app/settings.hpp"

namespace callrelay::app {

net::ServerSettings server_settings(const config::Config& cfg) {
  net::ServerSettings s;
  s.listen_udp = cfg.listen.udp;
  s.relay.port_min = cfg.relay.port_min;
  s.relay.port_max = cfg.relay.port_max;
  s.relay.bind_ipv4 = cfg.relay.bind_ipv4;
  s.relay.bind_ipv6 = cfg.relay.bind_ipv6;
  s.relay.external_ipv4 = cfg.relay.external_ipv4;
  s.relay.external_ipv6 = cfg.relay.external_ipv6;
  s.core = cfg.core;
  s.workers = cfg.workers;
  return s;
}

}  // namespace callrelay::app
