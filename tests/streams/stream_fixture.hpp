// A running server on 127.0.0.1:0 with UDP, TCP and (with a certificate) TLS listeners,
// allowing loopback peers, with an observer recording ended allocations.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/core/observer.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/net/server.hpp"
#include "tests/streams/stream_client.hpp"

namespace callrelay::net::testing {

inline constexpr char kStreamSecret[] = "stream-test-secret";
inline constexpr char kStreamRealm[] = "streams.test";

class EndObserver : public core::Observer {
 public:
  void on_allocation_ended(const core::AllocationInfo&, core::EndReason reason,
                           core::TimeMs) override {
    std::lock_guard<std::mutex> lock(mu_);
    ended_.push_back(reason);
  }
  /// Waits (bounded) until an allocation ended with `reason`.
  bool wait_for(core::EndReason reason, int timeout_ms = kWaitMs) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < until) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto r : ended_) {
          if (r == reason) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::vector<core::EndReason> ended_;
};

class StreamServerFixture {
 public:
  /// `tls`: also a TLS listener with that certificate.
  explicit StreamServerFixture(unsigned workers, const StreamLimits& limits = {},
                               const TestCertificate* tls = nullptr,
                               const std::string& min_version = "1.2")
      : auth_(auth_config()), nonces_(key(), 600), policy_(peers()) {
    ServerSettings s;
    s.listen_udp = {loopback(0)};
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.workers = workers;
    s.streams.listen_tcp = {loopback(0)};
    if (tls) {
      s.streams.listen_tls = {loopback(0)};
      s.streams.tls.cert_file = tls->cert_file;
      s.streams.tls.key_file = tls->key_file;
      s.streams.tls.min_version = min_version;
    }
    s.streams.limits = limits;
    server_ = std::make_unique<Server>(s, SharedAuth{auth_, nonces_, policy_},
                                       [this](unsigned) { return &observer_; });
    server_->start();
  }
  ~StreamServerFixture() {
    server_->stop();
    server_->join();
  }
  stun::Endpoint tcp() const { return find(core::Transport::kTcp); }
  stun::Endpoint tls() const { return find(core::Transport::kTls); }
  /// Credentials for a fresh client.
  void login(StreamClient& c) const {
    const std::string user = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count() +
                                            3600) +
                             ":alice";
    c.set_credentials(user, core::Authenticator::rest_password(kStreamSecret, user), kStreamRealm);
  }
  EndObserver& observer() { return observer_; }
  Server& server() { return *server_; }

 private:
  stun::Endpoint find(core::Transport t) const {
    for (const auto& l : server_->stream_listening()) {
      if (l.transport == t) return l.endpoint;
    }
    ADD_FAILURE() << "no listener of transport " << core::to_string(t);
    return {};
  }
  static core::AuthConfig auth_config() {
    core::AuthConfig a;
    a.realm = kStreamRealm;
    a.rest_secrets = {kStreamSecret};
    return a;
  }
  static std::array<uint8_t, 32> key() {
    std::array<uint8_t, 32> k{};
    k.fill(9);
    return k;
  }
  static core::PeerPolicyConfig peers() {
    core::PeerPolicyConfig p;
    p.allow.push_back(*core::Cidr::parse("127.0.0.0/8"));
    return p;
  }
  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  EndObserver observer_;
  std::unique_ptr<Server> server_;
};

}  // namespace callrelay::net::testing
