#include "bench/loadgen/data_modes.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "bench/common/common.hpp"
#include "bench/loadgen/meter.hpp"
#include "bench/loadgen/turn_session.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::bench {

namespace {

constexpr size_t kRxBatch = 64;
constexpr size_t kRxBufferSize = 2048;
constexpr uint64_t kStallNs = 200'000'000;
constexpr uint64_t kMs = 1'000'000;

// Payload layout: [0,8) send time in ns, [8,12) client index, the rest filler. With --rtp an
// RTP header (12 bytes) comes first and the layout follows it.
constexpr size_t kRtpHeader = 12;
constexpr uint8_t kOpus = 111;
constexpr uint32_t kOpusStep = 960;  // 20 ms at 48 kHz

struct DataClient {
  int fd = -1;
  uint32_t index = 0;
  uint32_t inflight = 0;
  uint64_t last_rx_ns = 0;
  uint64_t next_send_ns = 0;
  std::vector<uint8_t> packet;  // ChannelData header + payload
  /// --rtp: one packet per slot of the window, so that one sendmmsg carries distinct sequence
  /// numbers; and the next sequence number.
  std::vector<std::vector<uint8_t>> rtp_packets;
  uint16_t rtp_seq = 0;
};

/// Where the send time and client index start in a payload.
size_t layout_offset(const Options& o) { return o.rtp ? kRtpHeader : 0; }

void put_u32(uint8_t* p, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

/// The next RTP packet of client `c` in its window slot `slot` (its header, in place).
const std::vector<uint8_t>& next_rtp(DataClient& c, size_t slot) {
  std::vector<uint8_t>& p = c.rtp_packets[slot];
  uint8_t* rtp = p.data() + stun::kChannelDataHeaderSize;
  const uint16_t seq = c.rtp_seq++;
  rtp[2] = static_cast<uint8_t>(seq >> 8);
  rtp[3] = static_cast<uint8_t>(seq);
  put_u32(rtp + 4, uint32_t{seq} * kOpusStep);
  return p;
}

std::vector<DataClient> make_clients(const Options& o, const std::vector<int>& fds) {
  std::vector<DataClient> clients(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    DataClient& c = clients[i];
    c.fd = fds[i];
    c.index = static_cast<uint32_t>(i);
    c.packet.assign(stun::kChannelDataHeaderSize + o.payload, 0x5A);
    stun::write_channel_data_header(std::span<uint8_t, stun::kChannelDataHeaderSize>(
                                        c.packet.data(), stun::kChannelDataHeaderSize),
                                    kBenchChannel, static_cast<uint16_t>(o.payload));
    std::memcpy(c.packet.data() + stun::kChannelDataHeaderSize + layout_offset(o) + 8, &c.index,
                4);
    if (o.rtp) {
      uint8_t* rtp = c.packet.data() + stun::kChannelDataHeaderSize;
      rtp[0] = 0x80;  // version 2, no padding, extension or CSRCs
      rtp[1] = kOpus;
      put_u32(rtp + 8, 0x5500'0000u + c.index);  // SSRC
      c.rtp_packets.assign(o.window, c.packet);
    }
  }
  return clients;
}

int make_epoll(const std::vector<DataClient>& clients) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  for (const auto& c : clients) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = c.index;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }
  return ep;
}

void stamp(DataClient& c, uint64_t t) {
  std::memcpy(c.packet.data() + stun::kChannelDataHeaderSize, &t, 8);
}

// Receives one batch on a client socket. For each well-formed echo (right channel, length and
// client index) calls on_packet(send_ns); counts the rest in *bad. Returns packets received.
template <typename F>
size_t receive(DataClient& c, MsgBatch& rx, const Options& o, uint64_t* bad, F&& on_packet) {
  for (size_t i = 0; i < rx.capacity(); ++i) rx.prepare_recv(i);
  const int n =
      recvmmsg(c.fd, rx.hdrs(), static_cast<unsigned>(rx.capacity()), MSG_DONTWAIT, nullptr);
  if (n <= 0) return 0;
  size_t good = 0;
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    const auto cd = stun::parse_channel_data({rx.buffer(i), rx.hdr(i).msg_len});
    uint32_t index = 0;
    uint64_t sent = 0;
    const bool framed = cd && cd->channel == kBenchChannel && cd->payload.size() == o.payload;
    if (framed) {
      std::memcpy(&sent, cd->payload.data() + layout_offset(o), 8);
      std::memcpy(&index, cd->payload.data() + layout_offset(o) + 8, 4);
    }
    if (!framed || index != c.index) {
      ++*bad;  // garbage, a late STUN answer, or someone else's packet: a relay bug
      continue;
    }
    ++good;
    on_packet(sent);
  }
  return static_cast<size_t>(n);
}

}  // namespace

int run_max_mode(const Options& o, const std::vector<int>& fds) {
  auto clients = make_clients(o, fds);
  const int ep = make_epoll(clients);
  const Meter meter(o);
  MsgBatch rx(kRxBatch, kRxBufferSize);
  MsgBatch tx(o.window, 0);
  uint64_t rx_good = 0, bad = 0, stalls = 0, sent = 0;

  auto refill = [&](DataClient& c) {
    const size_t want = o.window - c.inflight;
    for (size_t i = 0; i < want; ++i) {
      const std::vector<uint8_t>& p = o.rtp ? next_rtp(c, i) : c.packet;
      tx.prepare_send(i, p.data(), p.size(), nullptr);
    }
    const size_t n = send_all(c.fd, tx.hdrs(), want);
    c.inflight += static_cast<uint32_t>(n);
    sent += n;
  };
  const uint64_t start = now_ns();
  for (auto& c : clients) {
    c.last_rx_ns = start;
    refill(c);
  }
  const uint64_t window_start = start + static_cast<uint64_t>(o.warmup_s * 1e9);
  const uint64_t end = window_start + static_cast<uint64_t>(o.duration_s * 1e9);
  Snapshot a{}, b{};
  uint64_t rx_at_a = 0;
  bool opened = false;
  uint64_t next_check = start + 50 * kMs;
  epoll_event events[kRxBatch];
  while (!stop_requested()) {
    const uint64_t now = now_ns();
    if (!opened && now >= window_start) {
      a = meter.take();
      rx_at_a = rx_good;
      opened = true;
    }
    if (now >= end) break;
    if (now >= next_check) {  // a client whose whole window was lost starts a new one
      for (auto& c : clients) {
        if (c.inflight > 0 && now - c.last_rx_ns > kStallNs) {
          ++stalls;
          c.inflight = 0;
          c.last_rx_ns = now;
          refill(c);
        }
      }
      next_check = now + 50 * kMs;
    }
    const int n = epoll_wait(ep, events, static_cast<int>(kRxBatch), 5);
    for (int i = 0; i < n; ++i) {
      DataClient& c = clients[events[i].data.u32];
      const size_t got = receive(c, rx, o, &bad, [&](uint64_t) { ++rx_good; });
      if (got == 0) continue;
      c.inflight -= static_cast<uint32_t>(std::min<size_t>(got, c.inflight));
      c.last_rx_ns = now;
      refill(c);
    }
  }
  b = meter.take();
  std::printf("result mode=max clients=%zu payload=%zu window=%zu rtp=%d sent=%llu bad=%llu "
              "stalls=%llu",
              clients.size(), o.payload, o.window, o.rtp ? 1 : 0, static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(bad), static_cast<unsigned long long>(stalls));
  print_relayed(meter, a, b, rx_good - rx_at_a);
  return opened ? 0 : 1;
}

int run_rate_mode(const Options& o, const std::vector<int>& fds) {
  auto clients = make_clients(o, fds);
  const int ep = make_epoll(clients);
  const Meter meter(o);
  MsgBatch rx(kRxBatch, kRxBufferSize);
  const auto interval = static_cast<uint64_t>(1e9 / o.pps);
  const uint64_t start = now_ns();
  for (auto& c : clients) c.next_send_ns = start + interval * c.index / clients.size();
  const uint64_t window_start = start + static_cast<uint64_t>(o.warmup_s * 1e9);
  const uint64_t window_end = window_start + static_cast<uint64_t>(o.duration_s * 1e9);
  const uint64_t end = window_end + 200 * kMs;  // grace for the last answers
  std::vector<uint32_t> rtt_ns;
  rtt_ns.reserve(static_cast<size_t>(o.pps * o.duration_s * static_cast<double>(clients.size())) +
                 16);
  uint64_t sent_in_window = 0, bad = 0, rx_total = 0;
  Snapshot a{}, b{};
  bool opened = false, closed = false;
  epoll_event events[kRxBatch];
  while (!stop_requested()) {
    uint64_t now = now_ns();
    if (!opened && now >= window_start) {
      a = meter.take();
      opened = true;
    }
    if (!closed && now >= window_end) {
      b = meter.take();
      closed = true;
    }
    if (now >= end) break;
    uint64_t next = end;
    for (auto& c : clients) {
      if (now < window_end && c.next_send_ns <= now) {
        stamp(c, now);
        if (send(c.fd, c.packet.data(), c.packet.size(), MSG_DONTWAIT) > 0 && now >= window_start) {
          ++sent_in_window;
        }
        c.next_send_ns = std::max(c.next_send_ns + interval, now - interval);
      }
      if (now < window_end) next = std::min(next, c.next_send_ns);
    }
    const uint64_t wait = next > now ? std::min<uint64_t>(next - now, 5 * kMs) : 0;
    const timespec ts{0, static_cast<long>(wait)};
    const int n = epoll_pwait2(ep, events, static_cast<int>(kRxBatch), &ts, nullptr);
    now = now_ns();
    for (int i = 0; i < n; ++i) {
      rx_total += receive(clients[events[i].data.u32], rx, o, &bad, [&](uint64_t sent) {
        if (sent >= window_start && sent < window_end && now > sent) {
          rtt_ns.push_back(static_cast<uint32_t>(std::min<uint64_t>(now - sent, UINT32_MAX)));
        }
      });
    }
  }
  if (!closed) b = meter.take();
  std::sort(rtt_ns.begin(), rtt_ns.end());
  auto pct = [&](double p) {
    if (rtt_ns.empty()) return 0.0;
    const auto i = static_cast<size_t>(p * static_cast<double>(rtt_ns.size() - 1));
    return static_cast<double>(rtt_ns[i]) / 1e3;
  };
  std::printf(
      "result mode=rate clients=%zu payload=%zu pps_per_client=%.0f received=%llu sent=%llu "
      "samples=%zu "
      "lost=%lld bad=%llu rtt_p50_us=%.1f rtt_p99_us=%.1f rtt_max_us=%.1f %s\n",
      clients.size(), o.payload, o.pps, static_cast<unsigned long long>(rx_total),
      static_cast<unsigned long long>(sent_in_window), rtt_ns.size(),
      static_cast<long long>(sent_in_window) - static_cast<long long>(rtt_ns.size()),
      static_cast<unsigned long long>(bad), pct(0.5), pct(0.99), pct(1.0),
      meter.describe(a, b).c_str());
  return rtt_ns.empty() ? 1 : 0;
}

}  // namespace callrelay::bench
