#include "app/settings.hpp"

#include <algorithm>

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
  s.relay.multiplex_peers = cfg.relay.multiplex_peers;
  s.relay.allocations_per_port = cfg.relay.allocations_per_port;
  s.core = cfg.core;
  s.workers = cfg.workers;
  s.streams = stream_settings(cfg);
  return s;
}

net::StreamSettings stream_settings(const config::Config& cfg) {
  net::StreamSettings st;
  st.listen_tcp = cfg.listen.tcp;
  st.listen_tls = cfg.listen.tls;
  st.tls.cert_file = cfg.tls.cert;
  st.tls.key_file = cfg.tls.key;
  st.tls.min_version = cfg.tls.min_version;
  st.limits.idle_timeout_ms = core::ms_from_seconds(cfg.streams.idle_timeout_s);
  st.limits.allocated_idle_timeout_ms =
      core::ms_from_seconds(std::max(cfg.streams.idle_timeout_s, cfg.core.max_lifetime_s));
  st.limits.max_frame_bytes = cfg.streams.max_frame_bytes;
  st.limits.send_queue_bytes = cfg.streams.send_queue_bytes;
  st.limits.max_connections = cfg.streams.max_connections;
  st.limits.pack_tls_records = cfg.tls.pack_records;
  return st;
}

}  // namespace callrelay::app
