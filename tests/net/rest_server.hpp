// A relay Server on loopback for tests that drive it with real TURN clients: REST credentials
// of one realm and secret, peers on 127.0.0.0/8 allowed, limit counters; started when made,
// stopped and joined when destroyed. A fixture that needs per-worker observers inherits from
// the class holding them first, so that they outlive the server's threads.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/limits.hpp"
#include "relay/core/auth.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/net/server.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::net::testing {

class RestServer {
 public:
  RestServer(const ServerSettings& s, std::string realm, std::string secret,
             const Server::ObserverFactory& observers = {})
      : realm_(std::move(realm)),
        secret_(std::move(secret)),
        auth(auth_config(realm_, secret_)),
        nonces({}, 600),
        policy(policy_config()) {
    server = std::make_unique<Server>(s, SharedAuth{auth, nonces, policy, &counters}, observers);
    server->start();
  }
  ~RestServer() {
    server->stop();
    server->join();
  }
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  /// A REST username of `user` valid for an hour (RFC 8489 section 9.2 style "expiry:user").
  static std::string username(const std::string& user) {
    using namespace std::chrono;
    const auto wall = duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
    return std::to_string(wall + 3600) + ":" + user;
  }
  std::string password(const std::string& name) const {
    return core::Authenticator::rest_password(secret_, name);
  }
  /// A client of `user` at the first UDP listener, from 127.0.0.1 or from `from_ip`.
  std::unique_ptr<TurnClient> client(const std::string& user = "alice",
                                     const std::string& from_ip = "") const {
    const std::string name = username(user);
    if (from_ip.empty())
      return std::make_unique<TurnClient>(server->listening().at(0), name, password(name), realm_);
    return std::make_unique<TurnClient>(server->listening().at(0), name, password(name), realm_,
                                        *stun::Endpoint::parse(from_ip + ":0"));
  }

 private:
  static core::AuthConfig auth_config(const std::string& realm, const std::string& secret) {
    core::AuthConfig a;
    a.realm = realm;
    a.rest_secrets = {secret};
    return a;
  }
  static core::PeerPolicyConfig policy_config() {
    core::PeerPolicyConfig p;
    p.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
    return p;
  }
  std::string realm_, secret_;

 public:
  base::LimitCounters counters;
  core::Authenticator auth;
  core::NonceCodec nonces;
  core::PeerPolicy policy;
  std::unique_ptr<Server> server;
};

}  // namespace callrelay::net::testing
