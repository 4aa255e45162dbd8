// The running server's live-changeable parts as a configuration reload applies them: REST
// secrets and static users, API keys, peer policy, quotas and caps, log level and the TURN TLS
// certificate. Wiring only; the Reloader (app/reload.hpp) decides when.
#pragma once

#include <vector>

#include "app/reload.hpp"
#include "config/config.hpp"
#include "http/api_keys.hpp"
#include "relay/core/auth.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/net/server.hpp"

namespace callrelay::app {

/// What a reload changes. Each must outlive the Reloader given live_parts().
struct LiveTargets {
  core::Authenticator& auth;
  core::PeerPolicy& peers;
  net::Server& relay;
  http::ApiKeys* api_keys = nullptr;  ///< null without the HTTP listener
};

/// The parts, in the order they apply. `started` is the configuration the server started with:
/// what cannot change live is taken from it (the REST separator: credentials already minted
/// carry it; TLS only where TLS listeners are bound).
std::vector<LivePart> live_parts(const LiveTargets& targets, const config::Config& started);

}  // namespace callrelay::app
