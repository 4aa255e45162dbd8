// Live ChannelData traffic through TURN allocations until stopped (see stream.hpp).
#include "tests/integration/tools/stream.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "tests/integration/tools/turn_client.hpp"

namespace callrelay::integ {
namespace {

constexpr uint16_t kChannel = 0x4000;
constexpr auto kSendInterval = std::chrono::milliseconds(20);

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

struct Stream {
  std::unique_ptr<TurnClient> client;
  std::vector<uint8_t> payload;
  uint64_t sent = 0, received = 0;
};

bool expect_200(const std::optional<int>& code, const char* what, size_t index) {
  if (code == 200) return true;
  std::fprintf(stderr, "integ_tool: allocation %zu: %s answered %d\n", index, what,
               code ? *code : -1);
  return false;
}

}  // namespace

int run_stream(const std::string& host, uint16_t port, const std::string& peer_ip,
               uint16_t peer_port, int max_seconds,
               const std::vector<std::pair<std::string, std::string>>& credentials) {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::vector<Stream> streams;
  for (size_t i = 0; i < credentials.size(); ++i) {
    Stream s;
    s.client =
        std::make_unique<TurnClient>(host, port, credentials[i].first, credentials[i].second);
    s.payload.assign((i + 1) * 100, static_cast<uint8_t>('a' + i % 26));
    if (!s.client->ok() || !expect_200(s.client->allocate(), "Allocate", i) ||
        !expect_200(s.client->channel_bind(kChannel, peer_ip, peer_port), "ChannelBind", i)) {
      for (auto& done : streams) done.client->refresh(0);
      return 1;
    }
    streams.push_back(std::move(s));
  }
  std::printf("allocated %zu\n", streams.size());
  std::fflush(stdout);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  auto next_send = std::chrono::steady_clock::now();
  while (g_stop == 0 && std::chrono::steady_clock::now() < deadline) {
    for (auto& s : streams) {
      if (s.client->send_channel_data(kChannel, s.payload)) ++s.sent;
    }
    next_send += kSendInterval;
    // Collect the echoes until the next send is due.
    for (auto& s : streams) {
      while (s.client->receive_channel_data(0)) ++s.received;
    }
    std::this_thread::sleep_until(next_send);
  }

  bool ok = true;
  uint64_t sent = 0, received = 0;
  for (size_t i = 0; i < streams.size(); ++i) {
    ok = expect_200(streams[i].client->refresh(0), "Refresh(0)", i) && ok;
    sent += streams[i].sent;
    received += streams[i].received;
    if (streams[i].received == 0) {
      std::fprintf(stderr, "integ_tool: allocation %zu: no echo came back\n", i);
      ok = false;
    }
  }
  std::printf("released %zu sent=%llu received=%llu\n", streams.size(),
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received));
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace callrelay::integ
