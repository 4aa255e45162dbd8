// The owner's recheck of its ringing calls' callees (ClusterRouter::recheck_ringing): a device
// that comes online on another instance after the invite's lookup, or whose lookup the store did
// not answer, rings; nobody rings twice; many ringing callees are looked at in turn.
#include "cluster_router_test_support.hpp"

namespace callrelay::calls::test {
namespace {

// What the service does every kRecheckMs while calls ring.
void recheck(Instance& at, TimeMs now) {
  Actions out;
  at.router.recheck_ringing(now, out);
  at.apply(out, now);
}

TEST_F(ClusterRouterTest, ACalleeDeviceOnlineElsewhereAfterTheInviteRingsAtTheRecheck) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob-1", "bob", now);
  const std::string id = invite(a);
  ASSERT_TRUE(b.take("bob-1", "invite").is_object());
  // bob's second device reaches B after the invite's lookup: nobody has told A yet.
  b.connect("bob-2", "bob", now + 100);
  EXPECT_TRUE(b.take("bob-2", "invite").is_null());
  recheck(a, now + 1000);
  pump();
  const json late = b.take("bob-2", "invite");
  ASSERT_TRUE(late.is_object());
  EXPECT_EQ(late["call"], id);
  // Devices already ringing are not rung twice, by this pass or the next.
  EXPECT_TRUE(b.take("bob-1", "invite").is_null());
  recheck(a, now + 2000);
  pump();
  EXPECT_TRUE(b.take("bob-1", "invite").is_null());
  EXPECT_TRUE(b.take("bob-2", "invite").is_null());
  // The late device answers like any other.
  b.send("bob-2", msg("accept", 1, id, {{"media", media()}}), now + 2100);
  pump();
  EXPECT_EQ(a.take("alice", "accepted")["payload"]["device"], "bob-2");
  EXPECT_TRUE(b.take("bob-1", "answered-elsewhere").is_object());
}

TEST_F(ClusterRouterTest, ARecheckLooksAtABoundedNumberOfCalleesInTurn) {
  Instance& a = add("A");
  Instance& b = add("B");
  const size_t n = kRecheckUsers + 44;
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) {
    const std::string caller = "caller-" + std::to_string(i);
    a.connect(caller, caller, now);
    a.send(caller,
           msg("invite", 1, "", {{"to", "callee-" + std::to_string(i)}, {"media", media()}}),
           now);
    const json ack = a.take(caller, "ack");
    ASSERT_TRUE(ack.is_object());
    ids.push_back(ack["call"]);
  }
  pump();
  // Every callee's device comes online after its invite's lookup.
  for (size_t i = 0; i < n; ++i)
    b.connect("callee-" + std::to_string(i), "callee-" + std::to_string(i), now + 10);
  const auto rung = [&] {
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) {
      const json inv = b.take("callee-" + std::to_string(i), "invite");
      if (!inv.is_object()) continue;
      EXPECT_EQ(inv["call"], ids[i]);
      ++count;
    }
    return count;
  };
  recheck(a, now + 1000);
  pump();
  EXPECT_EQ(rung(), kRecheckUsers);
  recheck(a, now + 2000);  // the rest, and nobody twice
  pump();
  EXPECT_EQ(rung(), n - kRecheckUsers);
  recheck(a, now + 3000);
  pump();
  EXPECT_EQ(rung(), 0u);
}

TEST_F(ClusterRouterTest, AnInviteWhoseLookupFailedRingsOnceTheStoreAnswers) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  a.seam.reachable = false;
  const std::string id = invite(a);
  EXPECT_TRUE(b.take("bob", "invite").is_null());
  recheck(a, now + 1000);  // still unreachable: nothing, and nothing breaks
  pump();
  EXPECT_TRUE(b.take("bob", "invite").is_null());
  a.seam.reachable = true;
  recheck(a, now + 2000);
  pump();
  const json invite = b.take("bob", "invite");
  ASSERT_TRUE(invite.is_object());
  EXPECT_EQ(invite["call"], id);
  EXPECT_EQ(invite["payload"]["from"], "alice");
  b.send("bob", msg("decline", 1, id), now + 2100);
  pump();
  const json ended = a.take("alice", "ended");
  ASSERT_TRUE(ended.is_object());
  EXPECT_EQ(ended["payload"]["outcome"], "declined");
  // Nothing rings any more: the recheck has nothing to look up.
  recheck(a, now + 3000);
  pump();
  EXPECT_TRUE(b.take("bob", "invite").is_null());
}

TEST_F(ClusterRouterTest, AKnownDeviceRingsWithoutTheStoreAndOnlyOnce) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  // A first call makes bob's device known to A, and ends: A keeps it for the grace period.
  const std::string first = invite(a);
  ASSERT_TRUE(b.take("bob", "invite").is_object());
  a.send("alice", msg("cancel", 2, first), now);
  pump();
  ASSERT_TRUE(b.take("bob", "ended").is_object());
  b.inbox.clear();
  a.inbox.clear();
  // The store does not answer the next invite's lookup: the engine rings the device it knows.
  a.seam.reachable = false;
  a.send("alice", msg("invite", 3, "", {{"to", "bob"}, {"media", media()}}), now + 10);
  const json ack = a.take("alice", "ack");
  ASSERT_TRUE(ack.is_object());
  pump();
  const json invite = b.take("bob", "invite");
  ASSERT_TRUE(invite.is_object());
  EXPECT_EQ(invite["call"], ack["call"]);
  // and the recheck, with the store back, does not ring it again.
  a.seam.reachable = true;
  recheck(a, now + 1000);
  pump();
  EXPECT_TRUE(b.take("bob", "invite").is_null());
}

}  // namespace
}  // namespace callrelay::calls::test
