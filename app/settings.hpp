// Maps the validated configuration onto what each component takes (each gets its own section).
#pragma once

#include "config/config.hpp"
#include "relay/net/server.hpp"

namespace callrelay::app {

/// The network section: listeners, relay ports and addresses, workers, core limits.
net::ServerSettings server_settings(const config::Config& cfg);

/// TCP/TLS listeners, certificate and connection limits (part of server_settings()).
net::StreamSettings stream_settings(const config::Config& cfg);

}  // namespace callrelay::app
