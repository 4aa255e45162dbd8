// libnice through the TURN server: two ICE agents in one process, forced to relay-only
// (force-relay), gather a relayed candidate each from the server with TURN REST credentials,
// exchange candidates in-process, reach READY and send datagrams each way. Exits 0 only if
// every datagram arrived in both directions over a relay/relay pair whose local candidates were
// allocated on SERVER_IP:SERVER_PORT; any failure or the overall timeout exits 1.
//
// TRANSPORT is how the agents reach the server: udp (the default) or tcp (TURN over TCP,
// RFC 8656 section 3.1, the allocation still relaying over UDP). libnice's "TLS" relay type is
// not offered: in RFC 5245 mode it sends plain TCP, so it would prove nothing about TLS.
//
// usage: callrelay_integ_nice SERVER_IP SERVER_PORT USERNAME PASSWORD [MESSAGES [TRANSPORT]]
#include <agent.h>
#include <gio/gio.h>
#include <glib.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr guint kComponent = 1;
constexpr guint kTimeoutSeconds = 30;

struct Peer {
  const char* name = "";
  NiceAgent* agent = nullptr;
  guint stream = 0;
  bool gathered = false;
  bool ready = false;
  int received = 0;
  int sent = 0;
};

struct Test {
  GMainLoop* loop = nullptr;
  Peer a, b;
  NiceAddress server;
  NiceRelayType relay_type = NICE_RELAY_TYPE_TURN_UDP;
  int messages = 50;
  int exit_code = 1;
  bool exchanged = false;
  bool sending = false;
  int closing = 0;  // agents still closing
  std::string error;
};


void finish(Test& t, int code, const std::string& why) {
  if (t.exit_code == 1 && t.error.empty()) {
    t.exit_code = code;
    t.error = why;
  }
  g_main_loop_quit(t.loop);
}

Peer& other(Test& t, const Peer& p) { return &p == &t.a ? t.b : t.a; }

Peer* peer_of(Test& t, NiceAgent* agent) { return agent == t.a.agent ? &t.a : &t.b; }

/// Copies credentials and candidates of `from` into `to` (the in-process "signaling").
bool exchange(Test& t, Peer& from, Peer& to) {
  gchar* ufrag = nullptr;
  gchar* pwd = nullptr;
  nice_agent_get_local_credentials(from.agent, from.stream, &ufrag, &pwd);
  nice_agent_set_remote_credentials(to.agent, to.stream, ufrag, pwd);
  g_free(ufrag);
  g_free(pwd);
  GSList* cands = nice_agent_get_local_candidates(from.agent, from.stream, kComponent);
  int relayed = 0;
  for (GSList* it = cands; it != nullptr; it = it->next) {
    auto* c = static_cast<NiceCandidate*>(it->data);
    gchar addr[NICE_ADDRESS_STRING_LEN];
    nice_address_to_string(&c->addr, addr);
    std::printf("%s: local candidate type %d %s:%u\n", from.name, static_cast<int>(c->type), addr,
                nice_address_get_port(&c->addr));
    if (c->type == NICE_CANDIDATE_TYPE_RELAYED) ++relayed;
  }
  const int added = nice_agent_set_remote_candidates(to.agent, to.stream, kComponent, cands);
  g_slist_free_full(cands, reinterpret_cast<GDestroyNotify>(&nice_candidate_free));
  if (relayed == 0) {
    finish(t, 1, std::string(from.name) + " gathered no relayed candidate (TURN allocation failed)");
    return false;
  }
  if (added <= 0) {
    finish(t, 1, std::string(from.name) + ": remote candidates rejected");
    return false;
  }
  return true;
}

/// Empty if `p` selected a relay/relay pair whose local candidate was allocated on t.server;
/// otherwise why not. libnice's API names the TURN server of a relayed candidate but not the
/// transport it reached it with: over tcp, SERVER_PORT is the TCP listener's (nothing answers
/// UDP there), and nice.sh checks the server's side of the connection.
std::string check_selected_pair(const Test& t, const Peer& p) {
  NiceCandidate* local = nullptr;
  NiceCandidate* remote = nullptr;
  if (!nice_agent_get_selected_pair(p.agent, p.stream, kComponent, &local, &remote)) {
    return std::string(p.name) + ": no selected pair";
  }
  if (local->type != NICE_CANDIDATE_TYPE_RELAYED || remote->type != NICE_CANDIDATE_TYPE_RELAYED) {
    return std::string(p.name) + ": selected candidate pair is " +
           nice_candidate_type_to_string(local->type) + "/" +
           nice_candidate_type_to_string(remote->type) + ", not relay/relay";
  }
  NiceAddress turn;
  nice_candidate_relay_address(local, &turn);
  gchar addr[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&turn, addr);
  std::printf("%s: selected pair relay/relay, local allocation from TURN server %s:%u\n", p.name,
              addr, nice_address_get_port(&turn));
  if (!nice_address_equal(&turn, &t.server)) {
    return std::string(p.name) + ": selected local candidate was allocated on " + addr + ":" +
           std::to_string(nice_address_get_port(&turn)) + ", not on the server under test";
  }
  return "";
}

void send_all(Test& t, Peer& p) {
  for (int i = 0; i < t.messages; ++i) {
    const std::string msg = std::string(p.name) + " message " + std::to_string(i);
    const gint sent = nice_agent_send(p.agent, p.stream, kComponent, static_cast<guint>(msg.size()),
                                      msg.c_str());
    if (sent == static_cast<gint>(msg.size())) ++p.sent;
  }
  std::printf("%s: sent %d/%d datagrams\n", p.name, p.sent, t.messages);
}

void maybe_start_sending(Test& t) {
  if (t.sending || !t.a.ready || !t.b.ready) return;
  t.sending = true;
  for (const Peer* p : {&t.a, &t.b}) {
    const std::string wrong = check_selected_pair(t, *p);
    if (!wrong.empty()) {
      finish(t, 1, wrong);
      return;
    }
  }
  send_all(t, t.a);
  send_all(t, t.b);
}

void on_gathering_done(NiceAgent* agent, guint /*stream*/, gpointer data) {
  Test& t = *static_cast<Test*>(data);
  Peer& p = *peer_of(t, agent);
  p.gathered = true;
  std::printf("%s: gathering done\n", p.name);
  if (t.a.gathered && t.b.gathered && !t.exchanged) {
    t.exchanged = true;
    if (exchange(t, t.a, t.b)) exchange(t, t.b, t.a);
  }
}

void on_state_changed(NiceAgent* agent, guint /*stream*/, guint /*component*/, guint state,
                      gpointer data) {
  Test& t = *static_cast<Test*>(data);
  Peer& p = *peer_of(t, agent);
  std::printf("%s: component state %s\n", p.name, nice_component_state_to_string(
                                                      static_cast<NiceComponentState>(state)));
  if (state == NICE_COMPONENT_STATE_FAILED) {
    finish(t, 1, std::string(p.name) + ": ICE failed");
  } else if (state == NICE_COMPONENT_STATE_READY) {
    p.ready = true;
    maybe_start_sending(t);
  }
}

void on_receive(NiceAgent* agent, guint /*stream*/, guint /*component*/, guint len, gchar* buf,
                gpointer data) {
  Test& t = *static_cast<Test*>(data);
  Peer& p = *peer_of(t, agent);
  const std::string msg(buf, len);
  const std::string expected_prefix = std::string(other(t, p).name) + " message ";
  if (msg.rfind(expected_prefix, 0) != 0) {
    finish(t, 1, std::string(p.name) + " received an unexpected datagram: " + msg);
    return;
  }
  ++p.received;
  if (t.a.received == t.messages && t.b.received == t.messages) finish(t, 0, "");
}

gboolean on_timeout(gpointer data) {
  Test& t = *static_cast<Test*>(data);
  finish(t, 1, "timeout after " + std::to_string(kTimeoutSeconds) + " s (a received " +
                   std::to_string(t.a.received) + ", b received " + std::to_string(t.b.received) +
                   ", ready a=" + std::to_string(t.a.ready) + " b=" + std::to_string(t.b.ready) +
                   ")");
  return G_SOURCE_REMOVE;
}

bool setup(Test& t, Peer& p, const char* name, bool controlling, const char* server, guint port,
           const char* user, const char* pass) {
  p.name = name;
  p.agent = nice_agent_new(g_main_loop_get_context(t.loop), NICE_COMPATIBILITY_RFC5245);
  g_object_set(G_OBJECT(p.agent), "force-relay", TRUE, "controlling-mode", controlling,
               "upnp", FALSE, "ice-tcp", FALSE, nullptr);
  // Tests use loopback only: gather on 127.0.0.1 instead of the machine's interfaces.
  NiceAddress local;
  nice_address_init(&local);
  nice_address_set_from_string(&local, "127.0.0.1");
  nice_agent_add_local_address(p.agent, &local);
  p.stream = nice_agent_add_stream(p.agent, 1);
  if (p.stream == 0) return false;
  if (!nice_agent_set_relay_info(p.agent, p.stream, kComponent, server, port, user, pass,
                                 t.relay_type)) {
    return false;
  }
  g_signal_connect(p.agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), &t);
  g_signal_connect(p.agent, "component-state-changed", G_CALLBACK(on_state_changed), &t);
  nice_agent_attach_recv(p.agent, p.stream, kComponent, g_main_loop_get_context(t.loop),
                         on_receive, &t);
  return nice_agent_gather_candidates(p.agent, p.stream);
}

/// Closes both agents (libnice releases its TURN allocations with a zero-lifetime Refresh),
/// waiting at most 3 s for the server's answers.
void close_agents(Test& t) {
  int& pending = t.closing;  // lives in Test: a late callback must not touch a dead frame
  pending = 2;
  auto on_closed = [](GObject*, GAsyncResult*, gpointer data) { --*static_cast<int*>(data); };
  nice_agent_close_async(t.a.agent, on_closed, &pending);
  nice_agent_close_async(t.b.agent, on_closed, &pending);
  auto give_up = [](gpointer data) -> gboolean {
    *static_cast<int*>(data) = 0;
    return G_SOURCE_REMOVE;
  };
  const guint timer = g_timeout_add_seconds(3, give_up, &pending);
  GMainContext* ctx = g_main_loop_get_context(t.loop);
  while (pending > 0) g_main_context_iteration(ctx, TRUE);
  if (g_main_context_find_source_by_id(ctx, timer) != nullptr) g_source_remove(timer);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string transport = argc > 6 ? argv[6] : "udp";
  if (argc < 5 || (transport != "udp" && transport != "tcp")) {
    std::fprintf(stderr,
                 "usage: %s SERVER_IP SERVER_PORT USERNAME PASSWORD [MESSAGES [udp|tcp]]\n",
                 argv[0]);
    return 2;
  }
  Test t;
  if (argc > 5) t.messages = std::atoi(argv[5]);
  if (transport == "tcp") t.relay_type = NICE_RELAY_TYPE_TURN_TCP;
  const auto port = static_cast<guint>(std::atoi(argv[2]));
  nice_address_init(&t.server);
  if (!nice_address_set_from_string(&t.server, argv[1])) {
    std::fprintf(stderr, "FAIL: bad server address %s\n", argv[1]);
    return 2;
  }
  nice_address_set_port(&t.server, port);
  t.loop = g_main_loop_new(nullptr, FALSE);
  if (!setup(t, t.a, "a", true, argv[1], port, argv[3], argv[4]) ||
      !setup(t, t.b, "b", false, argv[1], port, argv[3], argv[4])) {
    std::fprintf(stderr, "FAIL: agent setup\n");
    return 1;
  }
  g_timeout_add_seconds(kTimeoutSeconds, on_timeout, &t);
  g_main_loop_run(t.loop);
  std::printf("a received %d/%d, b received %d/%d\n", t.a.received, t.messages, t.b.received,
              t.messages);
  if (t.exit_code != 0) std::fprintf(stderr, "FAIL: %s\n", t.error.c_str());
  close_agents(t);
  g_object_unref(t.a.agent);
  g_object_unref(t.b.agent);
  g_main_loop_unref(t.loop);
  return t.exit_code;
}
