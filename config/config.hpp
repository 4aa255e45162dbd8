// The whole configuration as a typed, validated struct. Loaded from one YAML file (or the
// embedded default); each component receives only its own section.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "calls/core/config.hpp"
#include "config/cluster_section.hpp"
#include "config/drain_section.hpp"
#include "http/http_config.hpp"
#include "telemetry/telemetry.hpp"
#include "relay/core/auth.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::config {

struct ListenConfig {
  std::vector<stun::Endpoint> udp;  ///< default 0.0.0.0:3478 and [::]:3478
  std::vector<stun::Endpoint> tcp;  ///< default: the udp endpoints (TURN over TCP alongside)
  std::vector<stun::Endpoint> tls;  ///< default with tls.cert: 0.0.0.0:5349 and [::]:5349
};

/// TURN over TLS (RFC 7350): the server certificate.
struct TlsConfig {
  std::string cert;                ///< PEM certificate chain file (leaf first); empty: no TLS
  std::string key;                 ///< PEM private key file
  std::string min_version = "1.2"; ///< "1.2" or "1.3"
  /// tls.records: "packed" (true): the frames of one write share TLS records; "per_frame"
  /// (false): a record per frame.
  bool pack_records = false;
};

/// Limits of TCP and TLS client connections.
struct StreamConfig {
  uint32_t idle_timeout_s = 30;       ///< no complete frame (and no allocation) for this long
  uint32_t max_frame_bytes = 65552;   ///< a larger STUN message or ChannelData closes
  uint32_t send_queue_bytes = 262144; ///< pending output per connection; beyond, frames drop
  uint32_t max_connections = 0;       ///< whole server; 0: unlimited
};

struct RelayNetConfig {
  uint16_t port_min = 49152;
  uint16_t port_max = 65535;
  /// Relay addresses per family (relay.bind_ipv4 / bind_ipv6: one address or a list of
  /// distinct ones, each with its own port range; allocations spread over them). Empty: the
  /// local address the client reached.
  std::vector<stun::Endpoint> bind_ipv4, bind_ipv6;
  /// Address to advertise in XOR-RELAYED-ADDRESS (public IP behind NAT); unset: the bound one.
  /// Only with at most one bind address of its family.
  std::optional<stun::Endpoint> external_ipv4, external_ipv6;
  /// relay.io: how relay sockets are driven: "auto" (io_uring when it works here, else
  /// epoll), "io_uring" or "epoll". Read at start only.
  std::string io = "auto";
  /// relay.multiplex_peers: UDP allocations share relay sockets of their worker (up to
  /// allocations_per_port each), datagrams from peers told apart by the peer's transport
  /// address and the allocations' permissions. EVEN-PORT, reservations and TCP relays keep
  /// dedicated ports. Not with io: io_uring. Read at start only.
  bool multiplex_peers = false;
  uint32_t allocations_per_port = 32;  ///< relay.allocations_per_port, 1..1024
  /// relay.udp_gso: "auto" sends runs of same-size datagrams to one destination as one
  /// UDP_SEGMENT message where the kernel offers it; "off" sends each on its own. Read at start.
  std::string udp_gso = "auto";
};

struct LogConfig {
  std::string level = "info";   ///< error, warn, info, debug
  std::string format = "text";  ///< text (journald-friendly) or json (one object per line)
};

/// The `demo:` section: the page at /demo/ and its endpoints (a token for any user name, the
/// list of who is online). A demonstration only, never for production: anyone who reaches the
/// HTTP listener can sign in as any user.
struct DemoConfig {
  bool enabled = false;  ///< demo.enabled (the embedded default configuration turns it on)
};

struct Config {
  ListenConfig listen;
  RelayNetConfig relay;
  unsigned workers = 0;  ///< 0: one per core
  std::string state_dir = "/var/lib/callrelay";
  core::AuthConfig auth;          ///< realm, REST secrets (with secret_file resolved), static users
  std::string auth_secret_file;   ///< optional file holding secrets, one per line
  uint32_t nonce_lifetime_s = 600;
  core::CoreConfig core;
  core::PeerPolicyConfig peers;
  LogConfig log;
  TlsConfig tls;
  StreamConfig streams;
  http::HttpConfig http;  ///< the HTTP listener (metrics, health, API)
  http::ApiConfig api;    ///< the credential API: keys, TURN URIs
  telemetry::TelemetryConfig telemetry;  ///< Prometheus: per-allocation series and their cap
  calls::CallsConfig calls;  ///< signaling, the call state machine, records, the webhook
  DemoConfig demo;           ///< the /demo/ page and its endpoints
  DrainConfig drain;         ///< graceful drain: deadline and alternate servers
  ClusterConfig cluster;     ///< several instances as one service (records in PostgreSQL)
};

/// A configuration error: names the key and line, and says what to fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses YAML text. Throws ConfigError listing every problem found, one per line
/// ("config.yaml:7: key 'relay.ports.min': must be an integer from 1024 to 65535, not '80'").
/// Unknown keys are errors. Keys left out keep their defaults (listen.udp: 0.0.0.0:3478 and
/// [::]:3478). A relative auth.secret_file is resolved against the working directory.
Config parse(const std::string& yaml_text, const std::string& source_name = "<config>");
/// Reads and parses a file; a relative auth.secret_file is resolved against the file's
/// directory, and its secrets are appended to auth.rest_secrets.
Config load_file(const std::string& path);
/// The embedded default configuration (what runs with no --config).
const char* default_yaml();

}  // namespace callrelay::config
