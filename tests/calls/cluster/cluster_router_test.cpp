// The router between call engines of several instances (cluster_router_test_support.hpp):
// a call across two instances, exactly one accept with the callee's devices on two instances,
// a callee busy in a call another instance owns, an owner dying while ringing, a callee's
// instance dying mid-call, an instance restarted, and malformed envelopes.
#include "cluster_router_test_support.hpp"

namespace callrelay::calls::test {
namespace {


TEST_F(ClusterRouterTest, CallAcrossTwoInstancesLivesInTheCallersEngine) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  const std::string id = invite(a);
  ASSERT_TRUE(b.take("bob", "invite").is_object());
  EXPECT_EQ(a.engine.calls_in(CallState::kRinging), 1u);
  EXPECT_EQ(b.engine.calls_in(CallState::kRinging), 0u);

  b.send("bob", msg("ringing", 1, id), now);
  pump();
  EXPECT_TRUE(b.take("bob", "ack").is_object());
  EXPECT_TRUE(a.take("alice", "ringing").is_object());
  b.send("bob", msg("accept", 2, id, {{"media", media()}}), now);
  pump();
  EXPECT_TRUE(b.take("bob", "ack").is_object());
  const json accepted = a.take("alice", "accepted");
  ASSERT_TRUE(accepted.is_object());
  EXPECT_EQ(accepted["payload"]["device"], "bob");
  EXPECT_EQ(a.engine.calls_in(CallState::kConnecting), 1u);

  b.send("bob", msg("hangup", 3, id, {{"reason", "user-hangup"}}), now);
  pump();
  for (auto [node, dev] : {std::pair{&a, "alice"}, std::pair{&b, "bob"}}) {
    const json ended = node->take(dev, "ended");
    ASSERT_TRUE(ended.is_object()) << dev;
    EXPECT_EQ(ended["payload"]["by"], "callee");
  }
  // The call is gone from the callee's instance too: a late message goes to the local
  // engine, which knows no such call.
  b.send("bob", msg("hangup", 4, id), now);
  pump();
  const json late = b.take("bob", "error");
  ASSERT_TRUE(late.is_object());
  EXPECT_EQ(late["code"], "unknown-call");
}

TEST_F(ClusterRouterTest, ACalleeInACallOwnedByAnotherInstanceIsBusy) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  b.connect("bob2", "bob", now);
  b.connect("carol", "carol", now);
  // alice's call to bob lives in A's engine; bob's devices sit on B.
  const std::string id = invite(a);
  b.send("bob", msg("accept", 1, id, {{"media", media()}}), now);
  pump();
  ASSERT_TRUE(a.take("alice", "accepted").is_object());
  const std::string sdp =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
  a.send("alice", msg("offer", 2, id, {{"sdp", sdp}}), now);
  pump();
  b.send("bob", msg("answer", 2, id, {{"sdp", sdp}}), now);
  pump();
  a.send("alice", msg("connected", 3, id), now);
  b.send("bob", msg("connected", 3, id), now);
  pump();
  ASSERT_EQ(a.engine.calls_in(CallState::kActive), 1u);
  EXPECT_EQ(b.engine.calls_in(CallState::kActive), 0u);  // B's engine knows no call of bob's
  b.inbox.clear();

  // carol on B calls bob: busy, as for a callee in a call of B's own engine.
  b.send("carol", msg("invite", 1, "", {{"to", "bob"}, {"media", media()}}), now);
  pump();
  const json ack = b.take("carol", "ack");
  ASSERT_TRUE(ack.is_object());
  const json ended = b.take("carol", "ended");
  ASSERT_TRUE(ended.is_object());
  EXPECT_EQ(ended["call"], ack["call"]);
  EXPECT_EQ(ended["payload"]["outcome"], "busy");
  EXPECT_EQ(ended["payload"]["reason"], "callee-busy");
  EXPECT_EQ(ended["payload"]["by"], "server");
  EXPECT_TRUE(b.take("bob", "invite").is_null());
  EXPECT_TRUE(b.take("bob2", "invite").is_null());
  EXPECT_EQ(b.engine.calls_in(CallState::kRinging), 0u);
  EXPECT_EQ(a.engine.calls_in(CallState::kActive), 1u);  // the first call goes on

  // dave on A, the call's owner, calling bob: busy through A's own engine.
  a.connect("dave", "dave", now);
  a.send("dave", msg("invite", 1, "", {{"to", "bob"}, {"media", media()}}), now);
  pump();
  EXPECT_EQ(a.take("dave", "ended")["payload"]["outcome"], "busy");

  // The call ends: bob is free again, carol's next invite rings both of bob's devices.
  a.send("alice", msg("hangup", 4, id, {{"reason", "user-hangup"}}), now);
  pump();
  ASSERT_TRUE(b.take("bob", "ended").is_object());
  EXPECT_TRUE(net.busy.empty());
  b.send("carol", msg("invite", 2, "", {{"to", "bob"}, {"media", media()}}), now);
  pump();
  EXPECT_TRUE(b.take("carol", "ended").is_null());
  EXPECT_TRUE(b.take("bob", "invite").is_object());
  EXPECT_TRUE(b.take("bob2", "invite").is_object());
}

TEST_F(ClusterRouterTest, ACallWhileRingingMarksNobodyAndAnUnreachableStoreFailsOpen) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  b.connect("carol", "carol", now);
  const std::string id = invite(a);
  EXPECT_TRUE(net.busy.empty());  // ringing is not busy
  b.send("bob", msg("accept", 1, id, {{"media", media()}}), now);
  pump();
  ASSERT_EQ(a.engine.calls_in(CallState::kConnecting), 1u);
  ASSERT_EQ(net.busy.size(), 2u);  // alice and bob, while connecting
  EXPECT_EQ(net.busy["\nbob"], (std::pair<std::string, std::string>{"A", id}));
  // The store does not answer: nobody is busy elsewhere, the invite rings.
  b.seam.reachable = false;
  b.send("carol", msg("invite", 1, "", {{"to", "bob"}, {"media", media()}}), now);
  pump();
  EXPECT_TRUE(b.take("carol", "ended").is_null());
  EXPECT_TRUE(b.take("bob", "invite").is_object());
}

TEST_F(ClusterRouterTest, ExactlyOneAcceptWithTheCalleesDevicesOnTwoInstances) {
  Instance& a = add("A");
  Instance& b = add("B");
  Instance& c = add("C");
  a.connect("alice", "alice", now);
  b.connect("bob-b", "bob", now);
  c.connect("bob-c", "bob", now);
  for (uint64_t round = 1; round <= 2; ++round) {
    const std::string id = invite(a, round * 10);
    ASSERT_TRUE(b.take("bob-b", "invite").is_object());
    ASSERT_TRUE(c.take("bob-c", "invite").is_object());
    // Both accepts are on their way before the owner sees either: whichever the owner takes
    // first wins (round 1: B's, round 2: C's).
    Instance& first = round == 1 ? b : c;
    Instance& second = round == 1 ? c : b;
    const std::string win = round == 1 ? "bob-b" : "bob-c";
    const std::string lose = round == 1 ? "bob-c" : "bob-b";
    first.send(win, msg("accept", round * 10, id, {{"media", media()}}), now);
    second.send(lose, msg("accept", round * 10, id, {{"media", media()}}), now);
    pump();
    EXPECT_TRUE(first.take(win, "ack").is_object());
    EXPECT_FALSE(second.take(lose, "ack").is_object());
    EXPECT_TRUE(second.take(lose, "answered-elsewhere").is_object());
    const json refused = second.take(lose, "error");
    ASSERT_TRUE(refused.is_object());
    EXPECT_EQ(refused["code"], "wrong-state");  // the owner had the other accept first
    EXPECT_EQ(a.take("alice", "accepted")["payload"]["device"], win);
    a.send("alice", msg("hangup", round * 10 + 1, id), now);
    pump();
    EXPECT_TRUE(first.take(win, "ended").is_object());
    first.inbox.clear();
    second.inbox.clear();
    a.inbox.clear();
  }
}

TEST_F(ClusterRouterTest, OwnerDyingWhileRingingEndsTheCallForTheCallee) {
  Instance& b = add("B");
  Instance& c = add("C");
  c.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  const std::string id = invite(c);
  ASSERT_TRUE(b.take("bob", "invite").is_object());
  ASSERT_EQ(b.seam.watched, std::vector<std::string>{"C"});
  kill("C");
  heartbeat(b);  // first seen missing
  EXPECT_FALSE(b.take("bob", "ended").is_object());
  now += kDeadAfterMs - 1;
  heartbeat(b);
  EXPECT_FALSE(b.take("bob", "ended").is_object()) << "not before kDeadAfterMs";
  now += 1;
  heartbeat(b);
  const json ended = b.take("bob", "ended");
  ASSERT_TRUE(ended.is_object());
  EXPECT_EQ(ended["call"], id);
  EXPECT_EQ(ended["payload"]["outcome"], "peer-disconnected");
  EXPECT_EQ(ended["payload"]["reason"], "instance-lost");
  EXPECT_TRUE(b.seam.watched.empty());
}

TEST_F(ClusterRouterTest, AMissingKeyThatComesBackIsNoDeath) {
  Instance& b = add("B");
  Instance& c = add("C");
  c.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  invite(c);
  kill("C");  // as a Redis restart looks: the key is gone until C's next heartbeat
  heartbeat(b);
  now += kDeadAfterMs - 1;
  net.alive["C"] = "n1";
  heartbeat(b);
  now += kDeadAfterMs;
  heartbeat(b);
  EXPECT_FALSE(b.take("bob", "ended").is_object());
}

TEST_F(ClusterRouterTest, ARestartedOwnerIsDeadAtOnce) {
  Instance& b = add("B");
  Instance& c = add("C");
  c.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  invite(c);
  net.alive["C"] = "n2";
  heartbeat(b);
  EXPECT_TRUE(b.take("bob", "ended").is_object());
}

TEST_F(ClusterRouterTest, CalleesInstanceDyingMidCallEndsItAfterTheGracePeriod) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  const std::string id = invite(a);
  b.send("bob", msg("accept", 1, id, {{"media", media()}}), now);
  pump();
  ASSERT_TRUE(a.take("alice", "accepted").is_object());
  kill("B");
  heartbeat(a);
  now += kDeadAfterMs;
  heartbeat(a);
  EXPECT_TRUE(a.take("alice", "peer-reconnecting").is_object());
  Actions out;
  now += EngineConfig{}.grace_ms;
  a.engine.on_timer(now, out);
  a.apply(out, now);
  const json ended = a.take("alice", "ended");
  ASSERT_TRUE(ended.is_object());
  EXPECT_EQ(ended["payload"]["outcome"], "peer-disconnected");
  EXPECT_EQ(ended["payload"]["reason"], "callee-disconnected");
}

TEST_F(ClusterRouterTest, ALocalDeviceDroppingTellsTheOwner) {
  Instance& a = add("A");
  Instance& b = add("B");
  a.connect("alice", "alice", now);
  b.connect("bob", "bob", now);
  const std::string id = invite(a);
  b.send("bob", msg("accept", 1, id, {{"media", media()}}), now);
  pump();
  b.router.local_lost("bob");
  pump();
  EXPECT_TRUE(a.take("alice", "peer-reconnecting").is_object());
  b.router.local_resumed("bob");
  pump();
  EXPECT_TRUE(a.take("alice", "peer-resumed").is_object());
}

TEST_F(ClusterRouterTest, MalformedEnvelopesAreCountedAndDropped) {
  Instance& a = add("A");
  a.connect("alice", "alice", now);
  const std::string bad[] = {
      "",
      "not json",
      "[]",
      "{}",
      R"({"k":"d"})",
      R"({"k":"d","from":"B","nonce":"n","dev":"alice"})",
      R"({"k":"d","from":"B","nonce":"n","dev":"alice","msg":"x"})",
      R"({"k":"m","from":"B","nonce":"n","dev":"alice","text":5})",
      R"({"k":"lost","from":"B","nonce":"n","dev":"nobody"})",
      R"({"k":"d","from":"A","nonce":"n","dev":"alice","msg":{"type":"x"}})",
      R"({"k":7,"from":"B","nonce":"n","dev":"alice"})",
      std::string(kMaxEnvelopeBytes + 1, '['),
      std::string(50, '[') + std::string(50, ']'),
  };
  for (const std::string& p : bad) {
    Actions out;
    a.router.on_envelope(p, now, out);
    a.apply(out, now);
  }
  EXPECT_EQ(a.router.counters().refused, std::size(bad));
  EXPECT_TRUE(a.inbox["alice"].empty());
  // A client message from an instance for a device the owner does not know: answered with an
  // error to that instance, never fed to the engine.
  Actions out;
  a.router.on_envelope(
      R"({"k":"m","from":"B","nonce":"n","dev":"ghost","text":"{\"type\":\"hangup\",\"seq\":1,\"call\":\"c_AAAAAAAAAAAAAAAAAAAAAA\"}"})",
      now, out);
  ASSERT_EQ(net.queue.size(), 1u);
  const json reply = json::parse(net.queue.front().second);
  EXPECT_EQ(reply["k"], "d");
  EXPECT_EQ(reply["msg"]["code"], "unknown-call");
}

}  // namespace
}  // namespace callrelay::calls::test
