// The router between call engines of several instances, on a fake clock: each "instance" is an
// engine and a router in this process, and the seam between them is an in-memory queue of the
// same envelopes Redis would carry (the Redis seam itself runs against a real redis-server in
// redis_cluster_test.cpp and tests/integration/cluster/signaling.sh).
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "calls/cluster/cluster_router.hpp"

namespace callrelay::calls::test {

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

}  // namespace callrelay::calls::test
