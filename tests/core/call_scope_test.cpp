// Call-scoped REST credentials ("expiry:user:call=CALLID"): parsing, the per-user quota across
// calls, TurnServer::end_call and its call index on every end path.
#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

constexpr char kCallA[] = "c_Yq3x-_abcdefghijklmnop";
constexpr char kCallB[] = "c_0123456789ABCDEFGHIJKL";

std::string expiry_s() { return std::to_string(kT0 / 1000 + 3600); }

/// The one candidate's user and call ids for `name` (REST secret "s1" only).
std::pair<std::string, std::string> ids_of(const std::string& name, char sep = ':') {
  AuthConfig cfg = Harness::default_auth();
  cfg.rest_separator = sep;
  const Authenticator auth(cfg);
  const auto found = auth.lookup(name, kT0);
  EXPECT_FALSE(found.failure) << name;
  if (found.candidates.empty()) return {};
  return {found.candidates[0].user_id, found.candidates[0].call_id};
}

/// A REST client of `user` with credentials for `call` (or plain ones when `call` is empty).
Client call_client(const Harness& h, const char* addr, const std::string& user,
                   const std::string& call) {
  return h.rest_client(addr, call.empty() ? user : user + ":call=" + call);
}

TEST(CallId, Shape) {
  EXPECT_TRUE(looks_like_call_id(kCallA));
  EXPECT_TRUE(looks_like_call_id(kCallB));
  EXPECT_TRUE(looks_like_call_id("p_Yq3x-_abcdefghijklmnop"));  // a preflight
  for (const char* bad : {"", "c_", "c_Yq3x-_abcdefghijklmno", "c_Yq3x-_abcdefghijklmnopq",
                          "d_Yq3x-_abcdefghijklmnop", "C_Yq3x-_abcdefghijklmnop",
                          "c_Yq3x+/abcdefghijklmnop", "c_Yq3x-_abcdefghijklmno=",
                          "c_Yq3x-_abcdefghijklmn\xc3\xa9"}) {
    EXPECT_FALSE(looks_like_call_id(bad)) << bad;
  }
}

TEST(CallScopedAuth, SuffixNamesTheCallAndStripsTheUser) {
  const std::string name = expiry_s() + ":bob:call=" + kCallA;
  EXPECT_EQ(ids_of(name), std::make_pair(std::string("bob"), std::string(kCallA)));
  // A user id may itself hold the separator: only the suffix is cut off.
  EXPECT_EQ(ids_of(expiry_s() + ":team:bob:call=" + kCallB),
            std::make_pair(std::string("team:bob"), std::string(kCallB)));
  // The password is the usual REST one over the whole username.
  Harness h;
  const auto found = h.auth.lookup(name, kT0);
  ASSERT_EQ(found.candidates.size(), 1u);
  EXPECT_EQ(found.candidates[0].key,
            stun::long_term_key(name, kRealm, Authenticator::rest_password(kSecret, name)));
  EXPECT_EQ(found.candidates[0].expires, (kT0 / 1000 + 3600) * 1000);
}

TEST(CallScopedAuth, ConfiguredSeparatorAppliesToTheSuffix) {
  EXPECT_EQ(ids_of(expiry_s() + ".bob.call=" + kCallA, '.'),
            std::make_pair(std::string("bob"), std::string(kCallA)));
  // '-' also occurs in call ids: the suffix is measured from the end.
  const std::string call = "c_a-b-c-d-e-f-g-h-i-j-kl";
  ASSERT_TRUE(looks_like_call_id(call));
  EXPECT_EQ(ids_of(expiry_s() + "-bob-call=" + call, '-'),
            std::make_pair(std::string("bob"), call));
  // With '.' configured, a ':' suffix is part of the user id.
  EXPECT_EQ(ids_of(expiry_s() + ".bob:call=" + kCallA, '.'),
            std::make_pair("bob:call=" + std::string(kCallA), std::string()));
}

TEST(CallScopedAuth, OtherShapesArePlainUserIds) {
  const std::string call(kCallA);
  const std::vector<std::string> plain{
      "bob:call=" + call.substr(0, 23), "bob:call=" + call + "x", "bob:call=d" + call.substr(1),
      "bob:call=" + call.substr(0, 23) + "+", "bob:CALL=" + call, "bob:call:" + call,
      "bob;call=" + call, ":call=" + call, "bob:call=", "bob:" + call, "call=" + call};
  for (const std::string& user : plain) {
    EXPECT_EQ(ids_of(expiry_s() + ":" + user), std::make_pair(user, std::string())) << user;
  }
  // A bare timestamp and static users are unchanged.
  EXPECT_EQ(ids_of(expiry_s()), std::make_pair(std::string(), std::string()));
  EXPECT_EQ(ids_of("alice"), std::make_pair(std::string("alice"), std::string()));
}

TEST(CallScopedAuth, CallUsernameRoundTrips) {
  const std::string name = Authenticator::call_username(1'700'003'600, "bob", kCallA, ':');
  EXPECT_EQ(name, std::string("1700003600:bob:call=") + kCallA);
  EXPECT_EQ(ids_of(name), std::make_pair(std::string("bob"), std::string(kCallA)));
  EXPECT_EQ(Authenticator::call_username(5, "bob", kCallB, '.'),
            std::string("5.bob.call=") + kCallB);
}

TEST(CallScope, AllocationCarriesTheCallAndTheUser) {
  Harness h;
  Client c = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  h.allocate(c, kT0);
  ASSERT_EQ(h.observer.created.size(), 1u);
  EXPECT_EQ(h.observer.created[0]->user_id, "bob");
  EXPECT_EQ(h.observer.created[0]->call_id, kCallA);
  EXPECT_EQ(h.observer.created[0]->username, c.username);
  EXPECT_EQ(h.server->call_count(), 1u);

  Client plain = h.rest_client("198.51.100.8:40000", "bob");
  h.allocate(plain, kT0);
  ASSERT_EQ(h.observer.created.size(), 2u);
  EXPECT_EQ(h.observer.created[1]->call_id, "");
  EXPECT_EQ(h.server->call_count(), 1u);  // plain allocations are not indexed
}

TEST(CallScope, QuotaCountsTheUserAcrossCalls) {
  CoreConfig cfg;
  cfg.max_allocations_per_user = 2;
  Harness h(cfg);
  Client a = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  Client b = call_client(h, "198.51.100.7:40001", "bob", kCallB);
  h.allocate(a, kT0);
  h.allocate(b, kT0);
  // A third allocation of bob is over quota, whichever call (or none) it is for.
  for (const std::string& call : {std::string(kCallA), std::string(kCallB), std::string()}) {
    Client more = call_client(h, "198.51.100.9:40000", "bob", call);
    h.challenge(more, kT0);
    EXPECT_EQ(h.request(more, stun::Method::kAllocate, Harness::udp_transport(), kT0).code(), 486)
        << call;
  }
  // Another user of the same call has a quota of its own.
  Client carol = call_client(h, "198.51.100.10:40000", "carol", kCallA);
  h.allocate(carol, kT0);
  // Ending call A frees one of bob's two.
  h.server->end_call(kCallA, kT0 + kSecond);
  Client again = call_client(h, "198.51.100.9:40000", "bob", kCallB);
  h.allocate(again, kT0 + 2 * kSecond);
  EXPECT_EQ(h.server->allocation_count(), 2u);
}

TEST(CallScope, EndCallEndsOnlyThatCallAndClosesItsRelays) {
  Harness h;
  Client bob_a = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  Client carol_a = call_client(h, "198.51.100.8:40000", "carol", kCallA);
  Client bob_b = call_client(h, "198.51.100.9:40000", "bob", kCallB);
  Client plain = h.rest_client("198.51.100.10:40000", "bob");
  h.allocate(bob_a, kT0);
  h.allocate(carol_a, kT0);
  h.allocate(bob_b, kT0);
  h.allocate(plain, kT0);
  ASSERT_EQ(h.observer.created_ids.size(), 4u);
  EXPECT_EQ(h.server->call_count(), 2u);
  const std::set<RelayId> open_before = h.ports.open_ids;
  ASSERT_EQ(open_before.size(), 4u);

  h.server->end_call(kCallA, kT0 + 5 * kSecond);
  ASSERT_EQ(h.observer.ended.size(), 2u);
  std::set<uint64_t> ended;
  for (const auto& e : h.observer.ended) {
    EXPECT_EQ(e.why, EndReason::kCallEnded);
    EXPECT_EQ(e.now, kT0 + 5 * kSecond);
    ended.insert(e.id);
  }
  EXPECT_EQ(ended, (std::set<uint64_t>{h.observer.created_ids[0], h.observer.created_ids[1]}));
  // Their relay sockets (ids 0 and 1, in allocation order) were closed; the others are open.
  EXPECT_EQ(h.ports.open_ids, (std::set<RelayId>{2, 3}));
  EXPECT_EQ(std::set<RelayId>(h.ports.closed.begin(), h.ports.closed.end()),
            (std::set<RelayId>{0, 1}));
  EXPECT_EQ(h.server->allocation_count(), 2u);
  EXPECT_EQ(h.server->call_count(), 1u);

  const TimeMs later = kT0 + 6 * kSecond;
  EXPECT_EQ(h.refresh(bob_a, 600, later).code(), 437);
  EXPECT_EQ(h.refresh(carol_a, 600, later).code(), 437);
  EXPECT_EQ(h.refresh(bob_b, 600, later).code(), 0);
  EXPECT_EQ(h.refresh(plain, 600, later).code(), 0);

  // Ending it again, or a call without allocations here, does nothing.
  h.server->end_call(kCallA, later);
  h.server->end_call("c_nothingnothingnothing1", later);
  h.server->end_call("", later);
  EXPECT_EQ(h.observer.ended.size(), 2u);
  h.server->end_call(kCallB, later);
  ASSERT_EQ(h.observer.ended.size(), 3u);
  EXPECT_EQ(h.observer.ended.back().id, h.observer.created_ids[2]);
  EXPECT_EQ(h.server->call_count(), 0u);
  EXPECT_EQ(h.ports.open_ids, (std::set<RelayId>{3}));
}

TEST(CallScope, RetransmittedAllocateIsIndexedOnce) {
  Harness h;
  Client c = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  h.challenge(c, kT0);
  const auto tid = c.next_tid();
  const auto attrs = Harness::udp_transport();
  EXPECT_EQ(h.request(c, stun::Method::kAllocate, attrs, kT0, true, tid).code(), 0);
  EXPECT_EQ(h.request(c, stun::Method::kAllocate, attrs, kT0 + 100, true, tid).code(), 0);
  h.server->end_call(kCallA, kT0 + kSecond);
  EXPECT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.server->call_count(), 0u);
}

TEST(CallScope, IndexIsCleanedOnExpiry) {
  Harness h;
  Client c = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  h.allocate(c, kT0);
  EXPECT_EQ(h.server->call_count(), 1u);
  h.server->on_timer(kT0 + 600 * kSecond);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kExpired);
  EXPECT_EQ(h.server->call_count(), 0u);
  h.server->end_call(kCallA, kT0 + 601 * kSecond);
  EXPECT_EQ(h.observer.ended.size(), 1u);
}

TEST(CallScope, IndexIsCleanedOnRefreshZero) {
  Harness h;
  Client c = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  Client other = call_client(h, "198.51.100.8:40000", "carol", kCallA);
  h.allocate(c, kT0);
  h.allocate(other, kT0);
  EXPECT_EQ(h.refresh(c, 0, kT0 + kSecond).code(), 0);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kRefreshZero);
  EXPECT_EQ(h.server->call_count(), 1u);  // carol's allocation keeps the call indexed
  EXPECT_EQ(h.refresh(other, 0, kT0 + kSecond).code(), 0);
  EXPECT_EQ(h.server->call_count(), 0u);
  h.server->end_call(kCallA, kT0 + 2 * kSecond);
  EXPECT_EQ(h.observer.ended.size(), 2u);
}

TEST(CallScope, IndexIsCleanedOnTransportClose) {
  Harness h;
  Client c = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  c.tuple.transport = Transport::kTcp;
  h.allocate(c, kT0);
  EXPECT_EQ(h.server->call_count(), 1u);
  h.server->on_client_closed(c.tuple, kT0 + kSecond);
  ASSERT_EQ(h.observer.ended.size(), 1u);
  EXPECT_EQ(h.observer.ended[0].why, EndReason::kTransportClosed);
  EXPECT_EQ(h.server->call_count(), 0u);
  EXPECT_TRUE(h.ports.open_ids.empty());
  h.server->end_call(kCallA, kT0 + 2 * kSecond);
  EXPECT_EQ(h.observer.ended.size(), 1u);
}

TEST(CallScope, IndexIsCleanedOnShutdown) {
  Harness h;
  Client a = call_client(h, "198.51.100.7:40000", "bob", kCallA);
  Client b = call_client(h, "198.51.100.8:40000", "bob", kCallB);
  h.allocate(a, kT0);
  h.allocate(b, kT0);
  h.server->shutdown(kT0 + kSecond);
  EXPECT_EQ(h.server->call_count(), 0u);
  EXPECT_EQ(h.observer.ended.size(), 2u);
}

TEST(CallScope, EndReasonName) {
  EXPECT_STREQ(to_string(EndReason::kCallEnded), "call_ended");
}

}  // namespace
}  // namespace callrelay::core::testing
