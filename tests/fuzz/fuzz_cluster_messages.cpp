// libFuzzer target: what instances of one cluster read from each other through Redis. Anything
// with access to Redis can write these, so none of them is trusted. The first byte of the input
// chooses the reader, the rest is its input:
//   'L' (and any byte not below)  parse_instance_load: a load record of <prefix>instance:<id>;
//                                 what parses holds the record's limits and survives to_json
//   'R'  RevocationSync::on_message: a message on <prefix>revocations; what is applied is a
//        name within the limit and a positive time, never this instance's own
//   'E'  ClusterRouter::on_envelope: signaling envelopes, one per line, to an instance whose
//        caller rings a callee on two other instances; a line starting '!' is a heartbeat
//        (each byte: an instance and whether its liveness key is there, gone or another
//        incarnation's), a line starting '>' a local device's client message, a line '?'
//        the recheck of ringing calls' callees (recheck_ringing). Whatever the
//        router hands the service is sent as the service sends it (an object numbered with
//        sseq, dumped), and what it publishes must parse as an envelope of this instance. A
//        leading 'B' (taken off) has the callee busy in a call owned by "B" (no ringing then).
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/log.hpp"
#include "calls/cluster/cluster_router.hpp"
#include "cluster/redis/redis_client.hpp"
#include "cluster/shared/counters.hpp"
#include "cluster/shared/instance_load.hpp"
#include "cluster/shared/revocation_sync.hpp"

namespace {

using nlohmann::json;
namespace cl = callrelay::cluster;
namespace calls = callrelay::calls;

void require(bool condition) {
  if (!condition) std::abort();
}

void load_record(std::string_view text) {
  const auto load = cl::parse_instance_load(text);
  if (!load) return;
  require(text.size() <= cl::kMaxLoadRecordBytes);
  require(!load->id.empty() && load->uris.size() <= cl::kMaxPublishedUris);
  // This instance writes records back the same way (to_json); the same record must come out.
  const auto again = cl::parse_instance_load(cl::to_json(*load));
  require(again && again->id == load->id && again->region == load->region &&
          again->uris == load->uris && again->allocations == load->allocations &&
          again->calls == load->calls && again->draining == load->draining);
  const auto uris = cl::pick_uris({*load}, load->region, 1);
  require(uris.size() <= load->uris.size());
  require(load->draining ? uris.empty() : std::set(uris.begin(), uris.end()).size() == uris.size());
}

void revocation(std::string_view text) {
  // Never used for a command: on_message reads only the payload it is given.
  static cl::RedisClient redis(cl::RedisUrl{.host = "127.0.0.1", .port = 1});
  cl::SharedCounters counters;
  size_t applied = 0;
  cl::RevocationSync sync(
      redis, cl::SharedKeys{}, "self",
      [&](const std::string& name, int64_t until) {
        require(!name.empty() && name.size() <= cl::kMaxSharedUsernameBytes && until > 0);
        ++applied;
      },
      counters);
  sync.on_message(std::string(text));
  require(applied <= 1 && counters.revocations_applied.load() == applied);
  if (applied == 1) require(json::parse(text)["from"] != "self");
}

/// The receiving instance "A" and the shared store as the router sees it: the callee "bob" has
/// a device on "B" and one on "C", and after the invite's lookup a third on "D"; nothing else
/// is reachable.
class FuzzSeam : public calls::ClusterSeam {
 public:
  const std::string& instance() const override { return id_; }
  const std::string& nonce() const override { return nonce_; }
  void start(calls::ClusterSink&) override {}
  void stop() override {}
  void publish(const std::string& to, std::string payload) override {
    require(!to.empty() && to != id_);
    const json env = json::parse(payload, nullptr, false);
    require(env.is_object() && env["from"] == id_ && env["nonce"] == nonce_);
    require(env["k"].is_string() && env["dev"].is_string());
    ++published;
  }
  std::optional<calls::CalleeSeen> callee(const std::string&, const std::string& user) override {
    if (user != "bob") return calls::CalleeSeen{};
    calls::CalleeSeen seen{{{"bob-1", "B", "nB"}, {"bob-2", "C", "nC"}}, busy_on};
    if (lookups_++ > 0) seen.devices.push_back({"bob-3", "D", "nD"});
    return seen;
  }
  void presence(const std::string&, const std::string&, const calls::DeviceId&, bool) override {}
  void busy(const std::string&, const std::string&, const std::string&, bool) override {}
  void watch(std::vector<std::string>) override {}

  std::string busy_on;
  size_t published = 0;

 private:
  std::string id_ = "A", nonce_ = "nA";
  size_t lookups_ = 0;
};

struct NoIce : calls::IceServerSource {
  json ice_servers(std::string_view, std::string_view, calls::TimeMs) override {
    return json::array();
  }
};

struct Node {
  FuzzSeam seam;
  NoIce ice;
  int ids = 0;
  std::set<calls::DeviceId> local{"alice", "carol"};
  calls::CallEngine engine{calls::EngineConfig{}, ice,
                           [this] {
                             const std::string n = std::to_string(++ids);
                             return "c_A" + n + std::string(21 - n.size(), 'x');
                           },
                           nullptr};
  calls::ClusterRouter router{seam, engine, calls::MessageLimits{},
                              [this](const calls::DeviceId& d) { return local.count(d) != 0; }};
  calls::TimeMs now = 1'000'000;

  /// As SignalingService::Impl::apply and send_to do with what the engine and router decide.
  void apply(calls::Actions& out) {
    router.route(now, out);
    for (calls::Outgoing& o : out.send) {
      require(local.count(o.to) != 0 && o.message.is_object());
      o.message["sseq"] = 1;
      require(!o.message.dump().empty());
    }
    for (const calls::DeviceId& d : out.drop) local.erase(d);
    bool changed = false;
    (void)router.watched(changed);
  }

  /// A local device's client message, as SignalingService::Impl::received passes it on.
  /// False when it does not parse.
  bool client(const calls::DeviceId& dev, const std::string& text) {
    auto parsed = calls::parse_client_message(text, calls::MessageLimits{});
    const auto* m = std::get_if<calls::ClientMessage>(&parsed);
    if (m == nullptr) return false;
    if (router.forward(dev, *m, text)) return true;
    calls::Actions out;
    if (m->type == calls::ClientType::kInvite) router.before_invite("", m->to, now, out);
    engine.on_message(dev, *m, now, out);
    apply(out);
    return true;
  }

  void heartbeat(std::string_view bytes) {
    std::vector<calls::InstanceSeen> seen;
    for (const char c : bytes) {
      const auto b = static_cast<uint8_t>(c);
      const std::string id(1, "BCD"[b % 3]);
      const int how = (b / 3) % 3;
      seen.push_back({id, how == 0 ? "n" + id : how == 1 ? "" : "other"});
    }
    calls::Actions out;
    router.on_instances(seen, now, out);
    apply(out);
  }
};

void envelopes(std::string_view text) {
  Node node;
  calls::Actions out;
  for (const char* dev : {"alice", "carol"})
    require(node.engine.device_connected(dev, dev, "", node.now, out));
  node.apply(out);
  if (text.starts_with('B')) {
    node.seam.busy_on = "B";
    text.remove_prefix(1);
  }
  const size_t before = node.seam.published;
  require(node.client(
      "alice",
      R"({"type":"invite","seq":1,"payload":{"to":"bob","media":{"audio":true,"video":false}}})"));
  require(node.seam.published == before + (node.seam.busy_on.empty() ? 2 : 0));  // it rings both
  size_t lines = 0;
  while (!text.empty() && ++lines <= 64) {
    const size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    // Up to 6.4 s a line: several lines reach the ring and connect deadlines.
    node.now += 100 + static_cast<calls::TimeMs>(line.size() % 64) * 100;
    if (line.starts_with('!')) {
      node.heartbeat(line.substr(1));
    } else if (line.starts_with('?')) {
      calls::Actions recheck;
      node.router.recheck_ringing(node.now, recheck);
      node.apply(recheck);
    } else if (line.starts_with('>')) {
      node.client(line.size() > 1 && line[1] == 'c' ? "carol" : "alice",
                  std::string(line.substr(std::min<size_t>(line.size(), 2))));
    } else {
      calls::Actions env_out;
      node.router.on_envelope(std::string(line), node.now, env_out);
      node.apply(env_out);
    }
    calls::Actions timers;
    node.engine.on_timer(node.now, timers);
    node.apply(timers);
  }
  const auto& c = node.router.counters();
  require(c.received + c.refused <= lines);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  callrelay::log::set_level(callrelay::log::Level::kError);  // instance_lost warns each time
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 'R':
      revocation(rest);
      break;
    case 'E':
      envelopes(rest);
      break;
    default:
      load_record(rest);
      break;
  }
  return 0;
}
