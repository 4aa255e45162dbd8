// net::Server::end_call on loopback: allocations made with a call's credentials end on their
// workers (relay sockets closed), other calls' allocations live on.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "relay/core/auth.hpp"
#include "relay/net/server.hpp"
#include "tests/net/net_test_support.hpp"

namespace callrelay::net {
namespace {

using testing::EndWatcher;
using testing::loopback;
using testing::TurnClient;

constexpr char kSecret[] = "call-scope-secret";
constexpr char kRealm[] = "calls.test";
constexpr char kCallA[] = "c_AAAAAAAAAAAAAAAAAAAAAA";
constexpr char kCallB[] = "c_BBBBBBBBBBBBBBBBBBBBBB";

class CallScopeServer : public ::testing::Test {
 protected:
  CallScopeServer()
      : auth_(auth_config()), nonces_(key(), 600), policy_(core::PeerPolicyConfig{}) {
    ServerSettings s;
    s.listen_udp = {loopback(0)};
    s.relay.port_min = 61000;
    s.relay.port_max = 65000;
    s.workers = 2;
    server_ = std::make_unique<Server>(s, SharedAuth{auth_, nonces_, policy_},
                                       [this](unsigned) { return &watcher_; });
    server_->start();
  }
  ~CallScopeServer() override {
    server_->stop();
    server_->join();
  }

  /// A client of `user` with call-scoped credentials for `call`, valid for an hour.
  TurnClient client(const std::string& user, const std::string& call) const {
    const std::string username =
        core::Authenticator::call_username(now_ms() / 1000 + 3600, user, call, ':');
    return TurnClient(server_->listening().at(0), username,
                      core::Authenticator::rest_password(kSecret, username), kRealm);
  }
  static std::optional<uint16_t> refresh(TurnClient& c) {
    const auto r = c.request(stun::Method::kRefresh, [](stun::MessageBuilder& b) {
      b.add_u32(stun::attr::kLifetime, 600);
    });
    if (!r) return std::nullopt;
    return r->error_code();
  }

  static core::AuthConfig auth_config() {
    core::AuthConfig a;
    a.realm = kRealm;
    a.rest_secrets = {kSecret};
    return a;
  }
  static std::array<uint8_t, 32> key() {
    std::array<uint8_t, 32> k{};
    k.fill(9);
    return k;
  }

  core::Authenticator auth_;
  core::NonceCodec nonces_;
  core::PeerPolicy policy_;
  EndWatcher watcher_;
  std::unique_ptr<Server> server_;
};

TEST_F(CallScopeServer, EndCallEndsThatCallsAllocationsOnly) {
  TurnClient bob = client("bob", kCallA);
  TurnClient carol = client("carol", kCallA);
  TurnClient other = client("bob", kCallB);
  ASSERT_TRUE(bob.allocate()) << "Allocate failed";
  ASSERT_TRUE(carol.allocate()) << "Allocate failed";
  ASSERT_TRUE(other.allocate()) << "Allocate failed";
  EXPECT_EQ(server_->relay_ports_in_use(), 3u);

  server_->end_call(kCallA);
  const auto ended = watcher_.wait_for(2);
  ASSERT_EQ(ended.size(), 2u) << "the call's allocations did not end";
  for (const auto& e : ended) {
    EXPECT_EQ(e.reason, core::EndReason::kCallEnded);
    EXPECT_EQ(e.call_id, kCallA);
  }
  EXPECT_NE(ended[0].user_id, ended[1].user_id);
  // Their relay sockets were closed before the observer heard of the end.
  EXPECT_EQ(server_->relay_ports_in_use(), 1u);

  EXPECT_EQ(refresh(bob), std::optional<uint16_t>(437));
  EXPECT_EQ(refresh(carol), std::optional<uint16_t>(437));
  EXPECT_EQ(refresh(other), std::optional<uint16_t>(0));
  EXPECT_EQ(watcher_.seen().size(), 2u);
}

TEST_F(CallScopeServer, EndCallFromManyThreadsIsSafe) {
  TurnClient bob = client("bob", kCallB);
  ASSERT_TRUE(bob.allocate()) << "Allocate failed";
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([this] {
      server_->end_call(kCallA);  // no allocations: nothing happens
      server_->end_call(kCallB);
    });
  }
  for (auto& t : callers) t.join();
  const auto ended = watcher_.wait_for(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].call_id, kCallB);
  EXPECT_EQ(refresh(bob), std::optional<uint16_t>(437));
  EXPECT_EQ(watcher_.seen().size(), 1u);
}

}  // namespace
}  // namespace callrelay::net
