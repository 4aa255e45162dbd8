// The relay as the call service sees it (calls/signaling/relay_seam.hpp, calls::IceServerSource):
// call-scoped TURN REST credentials, the traffic and relay-observed media of the allocations made
// with them, the call's payload types for the media measurement, and ending those allocations
// when the call ends.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "calls/core/engine.hpp"
#include "calls/signaling/relay_seam.hpp"
#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "telemetry/call_traffic.hpp"

namespace callrelay::app {

/// What the call-scoped credentials are made of.
struct CallCredentialSettings {
  std::vector<std::string> uris;  ///< TURN URIs, as the credential API returns (turn_uris())
  /// "": no credentials are handed out. Otherwise RelayForCalls signs with the first REST
  /// secret the Authenticator holds at the time (a reload may rotate it).
  std::string rest_secret;
  char separator = ':';           ///< auth.rest_separator
  uint32_t ttl_s = 900;           ///< calls.credential_ttl_s
  /// Set: the URIs each credential carries, asked anew each time (cluster mode: the
  /// least-loaded instances'); `uris` then only says whether there are any.
  std::function<std::vector<std::string>()> uri_source;
};

/// Implements the call service's seams over the relay. Thread-safe: the signaling thread mints
/// credentials while any thread may end calls and read traffic.
class RelayForCalls final : public calls::CallRelay, public calls::IceServerSource {
 public:
  /// `auth`, `server` and `traffic` (the CallTraffic in the workers' observer chains) must
  /// outlive this object.
  RelayForCalls(core::Authenticator& auth, net::Server& server, telemetry::CallTraffic& traffic,
                CallCredentialSettings settings);

  /// `[{"urls": [...], "username": "<expiry>:<user>:call=<call_id>", "credential": ...}]`,
  /// valid for ttl_s from `now`. Within one call a user gets the same credentials again while
  /// more than half their lifetime is left. An empty list when there is no REST secret or no
  /// TURN URI, or `user` or `call_id` cannot make a call-scoped username.
  nlohmann::json ice_servers(std::string_view user, std::string_view call_id,
                             calls::TimeMs now) override;

  calls::CallTraffic traffic(std::string_view call_id, std::string_view caller,
                             std::string_view callee) override;

  /// From telemetry::CallTraffic::media: microseconds become milliseconds, -1 stays "none".
  calls::RelayMedia media(std::string_view call_id, std::string_view caller,
                          std::string_view callee) override;

  /// Builds the call's media::PayloadMap (repair payload types as kRepair, the others audio or
  /// video by their m= section) and hands it to every worker.
  void set_payload_types(std::string_view call_id,
                         std::vector<calls::RtpPayloadType> types) override;

  /// Revokes every username minted for the call (until its expiry), ends its allocations on
  /// every worker and forgets its traffic.
  void end_call(std::string_view call_id) override;

  /// Calls with credentials minted and not yet ended or expired.
  size_t minted_call_count() const;

 private:
  struct Minted {
    std::string user;
    std::string username;
    core::TimeMs expires = 0;  ///< Unix ms
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  /// The username `user` uses in `call_id` at `now`: one minted earlier when enough of its
  /// lifetime is left, else a new one (remembered). Under mu_.
  const Minted& username_for(std::string_view user, std::string_view call_id, core::TimeMs now);
  /// Forgets credentials past their expiry (nothing to revoke), at most once a minute.
  void prune(core::TimeMs now);

  core::Authenticator& auth_;
  net::Server& server_;
  telemetry::CallTraffic& traffic_;
  CallCredentialSettings settings_;
  nlohmann::json uris_;  ///< settings_.uris as a JSON array

  mutable std::mutex mu_;  ///< guards minted_ and next_prune_
  std::unordered_map<std::string, std::vector<Minted>, Hash, std::equal_to<>> minted_;
  core::TimeMs next_prune_ = 0;
};

}  // namespace callrelay::app
