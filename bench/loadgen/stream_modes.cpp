#include "bench/loadgen/stream_modes.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/common/common.hpp"
#include "bench/loadgen/control.hpp"
#include "bench/loadgen/control_modes.hpp"
#include "bench/loadgen/meter.hpp"
#include "bench/loadgen/stream_client.hpp"
#include "bench/loadgen/turn_session.hpp"
#include "relay/stun/channel_data.hpp"

namespace callrelay::bench {

namespace {

constexpr uint64_t kCredentialValidityS = 86400;
constexpr uint8_t kMaxNonceRounds = 3;
constexpr uint64_t kStallNs = 200'000'000;
constexpr uint64_t kMs = 1'000'000;
constexpr int kMaxEvents = 256;

struct StreamSession {
  StreamClient conn;
  Session turn;           // control state (turn.fd mirrors conn.fd())
  uint32_t interest = 0;  // epoll events registered for conn; 0: not in the set
  bool dead = false;      // failed its setup, or its connection broke during the data run
  uint32_t inflight = 0;
  uint64_t last_rx_ns = 0;
  uint64_t next_send_ns = 0;   // --pace: when its next frame is due
  std::vector<uint8_t> frame;  // ChannelData header + payload + padding to a multiple of 4
};

// The clients and their epoll set, through setup, the data run and teardown. Over a stream the
// control exchange is simpler than ControlDriver's over UDP: no retransmissions (RFC 8489
// section 6.2.2: the transport is reliable), one connection and one allocation per client for
// the whole run, and no cycling.
class StreamFleet {
 public:
  explicit StreamFleet(const Options& o)
      : o_(o),
        ep_(epoll_create1(EPOLL_CLOEXEC)),
        rng_(std::random_device{}()) {
    if (o.transport == Transport::kTls) tls_ = std::make_unique<TlsClientContext>();
  }
  ~StreamFleet() {
    sessions_.clear();  // closes the connections (TLS: close_notify first)
    ::close(ep_);
  }
  StreamFleet(const StreamFleet&) = delete;
  StreamFleet& operator=(const StreamFleet&) = delete;

  // Opens every connection and runs the control exchanges until each client is ready or
  // failed, or the deadline. Returns how many are ready.
  size_t establish(uint64_t deadline_ns);
  int run_max();
  const ControlStats& stats() const { return stats_; }

 private:
  void handle_setup(uint32_t idx);
  void on_control_frame(uint32_t idx, std::span<const uint8_t> bytes);
  void request(uint32_t idx, Step step);
  void fail(uint32_t idx, const std::string& why);
  void handle_data(uint32_t idx, uint64_t now);
  void refill(StreamSession& s);
  /// --pace: sends the frames of `s` due by `now`, one write each, at most a window in flight.
  void pace(uint32_t idx, uint64_t now);
  void broke(StreamSession& s);
  void settle_io(uint32_t idx);

  const Options& o_;
  int ep_;
  std::mt19937_64 rng_;
  std::unique_ptr<TlsClientContext> tls_;
  std::vector<StreamSession> sessions_;
  ControlStats stats_;
  // Data run counters.
  uint64_t rx_good_ = 0, bad_ = 0, sent_ = 0, closed_ = 0;
  std::string first_close_;
};

bool settled(Step s) { return s == Step::kReady || s == Step::kFailed; }

// Watches for writability only while something waits to go out: level-triggered EPOLLOUT on an
// idle connection would wake the loop on every pass.
void StreamFleet::settle_io(uint32_t idx) {
  StreamSession& s = sessions_[idx];
  if (s.dead) {
    if (s.interest != 0) epoll_ctl(ep_, EPOLL_CTL_DEL, s.conn.fd(), nullptr);
    s.interest = 0;
    s.conn.close();
    return;
  }
  const uint32_t want = EPOLLIN | (s.conn.wants_out() ? EPOLLOUT : 0u);
  if (want == s.interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u32 = idx;
  epoll_ctl(ep_, s.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, s.conn.fd(), &ev);
  s.interest = want;
}

void StreamFleet::fail(uint32_t idx, const std::string& why) {
  StreamSession& s = sessions_[idx];
  if (s.dead) return;
  ++stats_.failed;
  if (stats_.first_failure.empty()) {
    stats_.first_failure = why + " (client " + std::to_string(idx) + ")";
  }
  s.turn.step = Step::kFailed;
  s.dead = true;  // the connection is closed by settle_io, outside any read loop over it
}

// Queues the request; the caller flushes once it has read everything.
void StreamFleet::request(uint32_t idx, Step step) {
  StreamSession& s = sessions_[idx];
  if (!build_request(s.turn, step, to_endpoint(peer_of(o_, idx)), rng_)) {
    fail(idx, "request did not fit");
    return;
  }
  s.conn.queue({s.turn.request.data(), s.turn.request_len});
  s.turn.sent_ns = now_ns();
  ++s.turn.attempts;
}

void StreamFleet::on_control_frame(uint32_t idx, std::span<const uint8_t> bytes) {
  Session& t = sessions_[idx].turn;
  if (settled(t.step)) return;
  switch (interpret_reply(t, bytes)) {
    case Reply::kIgnore:
      return;
    case Reply::kSuccess:
      t.nonce_rounds = 0;
      if (!t.response_had_integrity) ++stats_.no_integrity;
      if (t.step == Step::kChallenge) {
        fail(idx, "success without credentials");
      } else if (t.step == Step::kAllocate) {
        request(idx, Step::kPermission);
      } else if (t.step == Step::kPermission) {
        request(idx, Step::kChannel);
      } else {
        t.step = Step::kReady;
        ++stats_.ready;
      }
      return;
    case Reply::kError:
      ++stats_.errors[t.last_error];
      fail(idx, "error " + std::to_string(t.last_error));
      return;
    case Reply::kBadIntegrity:
      ++stats_.bad_integrity;
      fail(idx, "success response with bad MESSAGE-INTEGRITY or missing XOR-RELAYED-ADDRESS");
      return;
    case Reply::kNewNonce:
      if (t.step == Step::kChallenge) {
        request(idx, Step::kAllocate);
      } else if (++t.nonce_rounds > kMaxNonceRounds) {
        ++stats_.errors[t.last_error];
        fail(idx, "credentials refused with " + std::to_string(t.last_error));
      } else {
        request(idx, t.step);
      }
      return;
  }
}

void StreamFleet::handle_setup(uint32_t idx) {
  StreamSession& s = sessions_[idx];
  if (s.dead) return;
  if (!s.conn.is_open()) {
    if (!s.conn.progress()) {
      fail(idx, s.conn.error());
    } else if (s.conn.is_open()) {
      request(idx, Step::kChallenge);
    }
  }
  if (!s.dead && s.conn.is_open()) {
    const bool ok = s.conn.read_frames([&](std::span<const uint8_t> f) {
      on_control_frame(idx, f);
    }) && s.conn.flush();
    if (!ok) fail(idx, s.conn.error());
  }
  settle_io(idx);
}

size_t StreamFleet::establish(uint64_t deadline_ns) {
  const uint64_t expiry = static_cast<uint64_t>(time(nullptr)) + kCredentialValidityS;
  sessions_.reserve(o_.clients);  // handle_setup holds references into it
  for (size_t i = 0; i < o_.clients; ++i) {
    const auto idx = static_cast<uint32_t>(i);
    StreamSession& s = sessions_.emplace_back();
    s.turn.credential = make_rest_credential(o_.secret, o_.user + std::to_string(i), expiry);
    if (!s.conn.open(o_.server, tls_ ? tls_->get() : nullptr, o_.client_record_per_frame)) {
      fail(idx, s.conn.error());
      settle_io(idx);
      continue;
    }
    s.turn.fd = s.conn.fd();
    handle_setup(idx);  // a loopback connect may be done already
  }
  epoll_event events[kMaxEvents];
  auto all_settled = [&] {
    return std::all_of(sessions_.begin(), sessions_.end(),
                       [](const StreamSession& s) { return settled(s.turn.step); });
  };
  while (!all_settled() && !stop_requested() && now_ns() < deadline_ns) {
    const int n = epoll_wait(ep_, events, kMaxEvents, 5);
    for (int i = 0; i < n; ++i) handle_setup(events[i].data.u32);
  }
  for (uint32_t idx = 0; idx < sessions_.size(); ++idx) {
    if (settled(sessions_[idx].turn.step)) continue;
    ++stats_.timeouts;
    fail(idx, "no answer");
    settle_io(idx);
  }
  return stats_.ready;
}

void StreamFleet::refill(StreamSession& s) {
  const size_t want = o_.window - s.inflight;
  // One write for the whole refill, as sendmmsg batches it for UDP clients: the frames reach
  // the kernel in one send() (over TLS a record each, or one record with --client-records
  // packed) and the server usually reads them in one go.
  for (size_t i = 0; i < want; ++i) s.conn.queue(s.frame);
  s.inflight += static_cast<uint32_t>(want);
  sent_ += want;
}

void StreamFleet::pace(uint32_t idx, uint64_t now) {
  StreamSession& s = sessions_[idx];
  if (s.dead || s.next_send_ns > now) return;
  const auto period = static_cast<uint64_t>(1e9 / o_.pace);
  // Behind by more than a window (the generator was descheduled): the schedule resumes from
  // now instead of sending the missed frames in one burst.
  if (now - s.next_send_ns > period * o_.window) s.next_send_ns = now;
  while (s.next_send_ns <= now) {
    s.next_send_ns += period;
    if (s.inflight >= o_.window) continue;  // the frame is skipped, as a full window would
    s.conn.queue(s.frame);
    ++s.inflight;
    ++sent_;
    if (!s.conn.flush()) {  // one write per frame: what a paced sender's kernel sees
      broke(s);
      break;
    }
  }
  settle_io(idx);
}

void StreamFleet::handle_data(uint32_t idx, uint64_t now) {
  StreamSession& s = sessions_[idx];
  if (s.dead) return;
  size_t got = 0;
  bool ok = s.conn.read_frames([&](std::span<const uint8_t> f) {
    ++got;
    const auto cd = stun::parse_channel_data(f);  // accepts the stream's padding
    uint32_t index = 0;
    const bool framed = cd && cd->channel == kBenchChannel && cd->payload.size() == o_.payload;
    if (framed) std::memcpy(&index, cd->payload.data() + 8, 4);
    if (!framed || index != idx) {
      ++bad_;  // a late STUN answer, or someone else's frame: a relay bug
      return;
    }
    ++rx_good_;
  });
  if (got > 0) {
    s.inflight -= static_cast<uint32_t>(std::min<size_t>(got, s.inflight));
    s.last_rx_ns = now;
    if (o_.pace == 0) refill(s);
  }
  if (!ok || !s.conn.flush()) broke(s);
  settle_io(idx);
}

// The server closed the connection or sent garbage: counted and reported, and the run goes on
// without that client.
void StreamFleet::broke(StreamSession& s) {
  ++closed_;
  if (first_close_.empty()) first_close_ = s.conn.error();
  s.dead = true;
}

int StreamFleet::run_max() {
  const Meter meter(o_);
  const size_t frame_size = stun::kChannelDataHeaderSize + ((o_.payload + 3) & ~size_t{3});
  std::string tls = "none";
  for (uint32_t idx = 0; idx < sessions_.size(); ++idx) {
    StreamSession& s = sessions_[idx];
    if (s.dead) continue;
    // Payload layout as over UDP: [0,8) filler (the rate mode's send time), [8,12) client
    // index; the padding RFC 8656 section 12.5 asks for over streams stays zero.
    s.frame.assign(frame_size, 0);
    std::fill_n(s.frame.begin() + stun::kChannelDataHeaderSize, o_.payload, uint8_t{0x5A});
    stun::write_channel_data_header(std::span<uint8_t, stun::kChannelDataHeaderSize>(
                                        s.frame.data(), stun::kChannelDataHeaderSize),
                                    kBenchChannel, static_cast<uint16_t>(o_.payload));
    std::memcpy(s.frame.data() + stun::kChannelDataHeaderSize + 8, &idx, 4);
    if (tls == "none") tls = s.conn.tls_description();
  }
  const uint64_t start = now_ns();
  for (uint32_t idx = 0; idx < sessions_.size(); ++idx) {
    StreamSession& s = sessions_[idx];
    if (s.dead) continue;
    s.last_rx_ns = start;
    if (o_.pace > 0) {
      // Spread over one period, so that the clients' frames do not arrive in step.
      s.next_send_ns = start + static_cast<uint64_t>(1e9 / o_.pace) * idx / sessions_.size();
      continue;
    }
    refill(s);
    if (!s.conn.flush()) broke(s);
    settle_io(idx);
  }
  const uint64_t window_start = start + static_cast<uint64_t>(o_.warmup_s * 1e9);
  const uint64_t end = window_start + static_cast<uint64_t>(o_.duration_s * 1e9);
  Snapshot a{}, b{};
  uint64_t rx_at_a = 0, stalls = 0;
  bool opened = false;
  uint64_t next_check = start + 50 * kMs;
  epoll_event events[kMaxEvents];
  while (!stop_requested()) {
    const uint64_t now = now_ns();
    if (!opened && now >= window_start) {
      a = meter.take();
      rx_at_a = rx_good_;
      opened = true;
    }
    if (now >= end) break;
    if (now >= next_check) {  // the stream is reliable, but the UDP legs to the peer are not
      for (uint32_t idx = 0; idx < sessions_.size(); ++idx) {
        StreamSession& s = sessions_[idx];
        if (s.dead || s.inflight == 0 || now - s.last_rx_ns <= kStallNs) continue;
        ++stalls;
        s.inflight = 0;
        s.last_rx_ns = now;
        if (o_.pace > 0) continue;  // the schedule sends the next frame
        refill(s);
        if (!s.conn.flush()) broke(s);
        settle_io(idx);
      }
      next_check = now + 50 * kMs;
    }
    if (o_.pace > 0) {
      for (uint32_t idx = 0; idx < sessions_.size(); ++idx) pace(idx, now);
    }
    const int n = epoll_wait(ep_, events, kMaxEvents, o_.pace > 0 ? 0 : 5);
    for (int i = 0; i < n; ++i) handle_data(events[i].data.u32, now);
    if (o_.pace > 0 && n == 0) {
      // Nothing to read: a pause of 50 µs instead of a spin, short beside a period.
      const timespec pause{0, 50'000};
      nanosleep(&pause, nullptr);
    }
  }
  b = meter.take();
  std::printf(
      "result mode=max transport=%s clients=%zu payload=%zu window=%zu pace=%g sent=%llu "
      "bad=%llu stalls=%llu closed=%llu tls=%s",
      transport_name(o_.transport), static_cast<size_t>(stats_.ready), o_.payload, o_.window,
      o_.pace,
      static_cast<unsigned long long>(sent_), static_cast<unsigned long long>(bad_),
      static_cast<unsigned long long>(stalls), static_cast<unsigned long long>(closed_),
      tls.c_str());
  print_relayed(meter, a, b, rx_good_ - rx_at_a);
  if (!first_close_.empty())
    std::fprintf(stderr, "first broken connection: %s\n", first_close_.c_str());
  return opened && closed_ == 0 ? 0 : 1;
}

}  // namespace

int run_stream_max_mode(const Options& o) {
  // OpenSSL writes to the socket with write(): a connection the server reset must be an error
  // to report, not a SIGPIPE that kills the generator mid-run.
  std::signal(SIGPIPE, SIG_IGN);
  StreamFleet fleet(o);
  const size_t ready = fleet.establish(now_ns() + static_cast<uint64_t>(o.timeout_s * 1e9));
  std::printf("setup");
  print_control_stats(fleet.stats());
  std::printf(" complete=%d\n", ready == o.clients ? 1 : 0);
  if (ready != o.clients) {
    std::fprintf(stderr, "bench_loadgen: only %zu of %zu clients ready\n", ready, o.clients);
  }
  if (ready == 0) return 1;
  const int rc = fleet.run_max();
  return ready == o.clients ? rc : 1;
}

}  // namespace callrelay::bench
