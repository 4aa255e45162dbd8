// Helper of the configuration reload test: a counted packet stream through one allocation
// (every packet numbered, every echo accounted for), and single ChannelBind outcomes for the
// peer policy. Uses the integration tools' own TURN client (independent of the server's codec);
// only loopback addresses from the command line; every wait bounded.
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/tools/turn_client.hpp"

namespace {

using callrelay::integ::TurnClient;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kChannel = 0x4000;
constexpr auto kSendInterval = std::chrono::milliseconds(5);  // 200 packets a second
constexpr size_t kPayloadBytes = 160;                         // one 20 ms G.711 frame
constexpr uint64_t kFlowingAfter = 50;                        // echoes before "flowing"
constexpr auto kTailWait = std::chrono::seconds(5);           // for echoes still in flight

volatile std::sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

int usage() {
  std::fprintf(stderr,
               "usage: reload_tool stream HOST PORT PEER_IP PEER_PORT USERNAME PASSWORD MAX_S\n"
               "       reload_tool bind HOST PORT USERNAME PASSWORD PEER_IP PEER_PORT\n");
  return 2;
}

void put_seq(std::vector<uint8_t>& payload, uint64_t seq) {
  for (int i = 0; i < 8; ++i) payload[static_cast<size_t>(i)] = static_cast<uint8_t>(seq >> (8 * i));
}

std::optional<uint64_t> get_seq(std::span<const uint8_t> payload) {
  if (payload.size() != kPayloadBytes) return std::nullopt;
  uint64_t seq = 0;
  for (int i = 0; i < 8; ++i) seq |= static_cast<uint64_t>(payload[static_cast<size_t>(i)]) << (8 * i);
  return seq;
}

/// Counts the echoes of numbered packets: each once, whatever order they come in.
struct Tally {
  std::vector<bool> seen;
  uint64_t received = 0, duplicates = 0, foreign = 0;

  void take(std::span<const uint8_t> payload) {
    const auto seq = get_seq(payload);
    if (!seq || *seq >= seen.size()) {
      ++foreign;
      return;
    }
    if (seen[*seq]) {
      ++duplicates;
      return;
    }
    seen[*seq] = true;
    ++received;
  }
};

/// Allocate, ChannelBind to the echo peer, then one numbered packet every 5 ms until SIGTERM
/// or max_s; then waits for the echoes in flight and asks for the allocation's release. Prints
/// "allocated", "flowing" (after the first echoes) and the final tally with the release's
/// code. 0 when every packet sent came back exactly once.
int stream(const std::string& host, uint16_t port, const std::string& peer_ip, uint16_t peer_port,
           const std::string& user, const std::string& password, int max_s) {
  std::signal(SIGTERM, on_stop);
  std::signal(SIGINT, on_stop);
  TurnClient client(host, port, user, password);
  if (!client.ok()) return 1;
  const auto alloc = client.allocate();
  const auto bind = alloc == 200 ? client.channel_bind(kChannel, peer_ip, peer_port) : alloc;
  if (alloc != 200 || bind != 200) {
    std::fprintf(stderr, "reload_tool: Allocate %d, ChannelBind %d\n", alloc ? *alloc : -1,
                 bind ? *bind : -1);
    return 1;
  }
  std::printf("allocated %s\n", client.relayed().text().c_str());
  std::fflush(stdout);

  Tally tally;
  tally.seen.assign(static_cast<size_t>(max_s) * 1000 / 5 + 1, false);
  std::vector<uint8_t> payload(kPayloadBytes, 0x5a);
  uint64_t sent = 0;
  bool flowing = false;
  const auto deadline = Clock::now() + std::chrono::seconds(max_s);
  auto next_send = Clock::now();
  while (g_stop == 0 && Clock::now() < deadline && sent < tally.seen.size()) {
    put_seq(payload, sent);
    if (client.send_channel_data(kChannel, payload)) ++sent;
    next_send += kSendInterval;
    while (auto got = client.receive_channel_data(0)) tally.take(*got);
    if (!flowing && tally.received >= kFlowingAfter) {
      flowing = true;
      std::printf("flowing\n");
      std::fflush(stdout);
    }
    std::this_thread::sleep_until(next_send);
  }
  const auto tail_end = Clock::now() + kTailWait;
  while (tally.received < sent && Clock::now() < tail_end) {
    if (auto got = client.receive_channel_data(100)) tally.take(*got);
  }
  const auto released = client.refresh(0);
  std::printf("sent=%llu received=%llu missing=%llu duplicates=%llu foreign=%llu released=%d\n",
              static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(tally.received),
              static_cast<unsigned long long>(sent - tally.received),
              static_cast<unsigned long long>(tally.duplicates),
              static_cast<unsigned long long>(tally.foreign), released ? *released : -1);
  std::fflush(stdout);
  // The release is reported, not judged: credentials whose secret a reload removed can no
  // longer refresh (401), though the allocation relays until its lifetime ends.
  return sent > 0 && tally.received == sent && tally.duplicates == 0 ? 0 : 1;
}

/// Allocate and ChannelBind to a peer: prints the ChannelBind code (403: the peer policy
/// refused it), or "allocate CODE" when the Allocate itself failed. Releases what it made.
int bind(const std::string& host, uint16_t port, const std::string& user,
         const std::string& password, const std::string& peer_ip, uint16_t peer_port) {
  TurnClient client(host, port, user, password);
  if (!client.ok()) return 1;
  const auto alloc = client.allocate();
  if (!alloc) return 1;
  if (*alloc != 200) {
    std::printf("allocate %d\n", *alloc);
    return 0;
  }
  const auto code = client.channel_bind(kChannel, peer_ip, peer_port);
  client.refresh(0);
  if (!code) return 1;
  std::printf("%d\n", *code);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  const auto port = [](const std::string& s) { return static_cast<uint16_t>(std::stoi(s)); };
  if (a.size() == 8 && a[0] == "stream")
    return stream(a[1], port(a[2]), a[3], port(a[4]), a[5], a[6], std::stoi(a[7]));
  if (a.size() == 7 && a[0] == "bind") return bind(a[1], port(a[2]), a[3], a[4], a[5], port(a[6]));
  return usage();
}
