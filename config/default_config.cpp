// The configuration callrelay runs on when started without --config. It carries no secret:
// on first start the app generates one in state_dir (mode 0600) and prints how to use it.
#include "config/config.hpp"

namespace callrelay::config {

const char* default_yaml() {
  return R"yaml(# callrelay embedded default (see config/callrelay.example.yaml for every key)
listen:
  udp: ["0.0.0.0:3478", "[::]:3478"]
relay:
  ports: {min: 49152, max: 65535}
workers: 0
state_dir: /var/lib/callrelay
realm: callrelay
software: callrelay
auth:
  separator: ":"
  nonce_lifetime: 600
allocations:
  default_lifetime: 600
  max_lifetime: 3600
  permission_lifetime: 300
  channel_lifetime: 600
  max_per_user: 100
  max_total: 0
  max_permissions: 64
  max_channels: 64
binding_requires_auth: false
peers:
  allow: []
  deny: []
log:
  level: info
  format: text
http:
  listen: "127.0.0.1:9641"
  max_request_bytes: 65536
  threads: 2
api:
  keys: []
  default_ttl: 3600
# The /demo/ page and its token endpoint (anyone who reaches the HTTP listener, which is on
# 127.0.0.1 here, may sign in as anyone): for trying callrelay out, never for production.
demo:
  enabled: true
)yaml";
}

}  // namespace callrelay::config
