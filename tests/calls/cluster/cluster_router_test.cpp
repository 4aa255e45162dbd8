// The router between call engines of several instances, on a fake clock: each "instance" is an
// engine and a router in this process, and the seam between them is an in-memory queue of the
// same envelopes Redis would carry (the Redis seam itself runs in
// tests/integration/cluster/signaling.sh). Covers a call across two instances, exactly one
// accept with the callee's devices on two instances, a callee busy in a call another instance
// owns, an owner dying while ringing, a callee's instance dying mid-call, an instance
// restarted, and malformed envelopes.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>

#include "calls/cluster/cluster_router.hpp"

namespace callrelay::calls {
namespace {

using nlohmann::json;

struct NoIce : IceServerSource {
  json ice_servers(std::string_view, std::string_view, TimeMs) override { return json::array(); }
};

/// Presence, liveness and the messages in flight, as Redis would hold them.
struct Net {
  std::map<std::string, std::vector<RemoteDevice>> presence;  ///< tenant '\n' user
  std::map<std::string, std::string> alive;                   ///< instance -> nonce
  std::deque<std::pair<std::string, std::string>> queue;      ///< (to instance, payload)
  std::map<std::string, std::pair<std::string, std::string>> busy;  ///< -> (instance, call)
};

class MemorySeam : public ClusterSeam {
 public:
  MemorySeam(Net& net, std::string id, std::string nonce)
      : net_(net), id_(std::move(id)), nonce_(std::move(nonce)) {
    net_.alive[id_] = nonce_;
  }
  const std::string& instance() const override { return id_; }
  const std::string& nonce() const override { return nonce_; }
  void start(ClusterSink&) override {}
  void stop() override {}
  void publish(const std::string& to, std::string payload) override {
    net_.queue.emplace_back(to, std::move(payload));
  }
  std::optional<CalleeSeen> callee(const std::string& tenant, const std::string& user) override {
    if (!reachable) return std::nullopt;
    CalleeSeen out;
    for (RemoteDevice d : net_.presence[tenant + '\n' + user]) {
      const auto it = net_.alive.find(d.instance);
      if (it == net_.alive.end()) continue;
      d.nonce = it->second;
      out.devices.push_back(d);
    }
    const auto b = net_.busy.find(tenant + '\n' + user);
    if (b != net_.busy.end() && b->second.first != id_ && net_.alive.count(b->second.first))
      out.busy_on = b->second.first;
    return out;
  }
  void busy(const std::string& tenant, const std::string& user, const std::string& call,
            bool up) override {
    const std::string key = tenant + '\n' + user;
    if (up) {
      net_.busy[key] = {id_, call};
    } else if (const auto it = net_.busy.find(key);
               it != net_.busy.end() && it->second == std::pair{id_, call}) {
      net_.busy.erase(it);
    }
  }
  bool reachable = true;  ///< false: the store does not answer lookups
  void presence(const std::string& tenant, const std::string& user, const DeviceId& device,
                bool up) override {
    auto& list = net_.presence[tenant + '\n' + user];
    std::erase_if(list, [&](const RemoteDevice& d) { return d.device == device; });
    if (up) list.push_back(RemoteDevice{device, id_, ""});
  }
  void watch(std::vector<std::string> instances) override { watched = std::move(instances); }
  std::vector<std::string> watched;

 private:
  Net& net_;
  std::string id_, nonce_;
};

/// One instance: its engine, its router and its devices' inboxes (what the service would send
/// on their WebSockets).
struct Instance {
  Instance(Net& net, const std::string& id, const std::string& nonce = "n1")
      : seam(net, id, nonce),
        engine(
            EngineConfig{}, ice, [this] { return next_id(); }, nullptr),
        router(seam, engine, MessageLimits{},
               [this](const DeviceId& d) { return local.count(d); }) {}

  /// "c_" + 22 base64url characters: the instance, a counter, padding.
  std::string next_id() {
    const std::string n = seam.instance() + std::to_string(++ids);
    return "c_" + n + std::string(22 - n.size(), 'x');
  }
  void connect(const DeviceId& dev, const std::string& user, TimeMs now) {
    Actions out;
    ASSERT_TRUE(engine.device_connected(dev, user, "", now, out));
    local.insert(dev);
    seam.presence("", user, dev, true);
    apply(out, now);
  }
  /// A client message from a local device, as SignalingService::Impl::received passes it.
  void send(const DeviceId& dev, const json& msg, TimeMs now) {
    const std::string text = msg.dump();
    auto parsed = parse_client_message(text, MessageLimits{});
    ASSERT_TRUE(std::holds_alternative<ClientMessage>(parsed)) << text;
    const ClientMessage& m = std::get<ClientMessage>(parsed);
    if (router.forward(dev, m, text)) return;
    Actions out;
    if (m.type == ClientType::kInvite) router.before_invite("", m.to, now, out);
    engine.on_message(dev, m, now, out);
    apply(out, now);
  }
  void apply(Actions& out, TimeMs now) {
    router.route(now, out);
    for (Outgoing& o : out.send) inbox[o.to].push_back(std::move(o.message));
    for (const DeviceId& d : out.drop) local.erase(d);
    bool changed = false;
    seam.watch(router.watched(changed));
  }
  /// The first message of `type` device `dev` received (removed), or null.
  json take(const DeviceId& dev, const std::string& type) {
    auto& box = inbox[dev];
    for (auto it = box.begin(); it != box.end(); ++it) {
      if ((*it)["type"] == type) {
        json m = *it;
        box.erase(it);
        return m;
      }
    }
    return nullptr;
  }

  NoIce ice;
  int ids = 0;
  MemorySeam seam;
  CallEngine engine;
  ClusterRouter router;
  std::set<DeviceId> local;
  std::map<DeviceId, std::vector<json>> inbox;
};

class ClusterRouterTest : public ::testing::Test {
 protected:
  Instance& add(const std::string& id, const std::string& nonce = "n1") {
    nodes[id] = std::make_unique<Instance>(net, id, nonce);
    return *nodes[id];
  }
  /// Delivers every queued envelope to its (live) instance, until none is left.
  void pump() {
    for (int guard = 0; !net.queue.empty() && guard < 1000; ++guard) {
      auto [to, payload] = net.queue.front();
      net.queue.pop_front();
      const auto it = nodes.find(to);
      if (it == nodes.end() || net.alive.count(to) == 0) continue;
      Actions out;
      it->second->router.on_envelope(payload, now, out);
      it->second->apply(out, now);
    }
    ASSERT_TRUE(net.queue.empty());
  }
  static json msg(const std::string& type, uint64_t seq, const std::string& call = "",
                  json payload = nullptr) {
    json m = {{"type", type}, {"seq", seq}};
    if (!call.empty()) m["call"] = call;
    if (!payload.is_null()) m["payload"] = std::move(payload);
    return m;
  }
  static json media() { return {{"audio", true}, {"video", false}}; }
  /// alice on `a` invites bob; returns the call id.
  std::string invite(Instance& a, uint64_t seq = 1) {
    a.send("alice", msg("invite", seq, "", {{"to", "bob"}, {"media", media()}}), now);
    const json ack = a.take("alice", "ack");
    EXPECT_TRUE(ack.is_object());
    pump();
    return ack.is_object() ? ack["call"].get<std::string>() : "";
  }
  void kill(const std::string& id) { net.alive.erase(id); }
  void heartbeat(Instance& at) {
    std::vector<InstanceSeen> seen;
    for (const std::string& i : at.seam.watched) {
      const auto it = net.alive.find(i);
      seen.push_back({i, it == net.alive.end() ? "" : it->second});
    }
    Actions out;
    at.router.on_instances(seen, now, out);
    at.apply(out, now);
  }

  Net net;
  std::map<std::string, std::unique_ptr<Instance>> nodes;
  TimeMs now = 1'000'000;
};

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
}  // namespace callrelay::calls
