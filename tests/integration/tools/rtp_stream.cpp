// RTP-shaped media with known loss, jitter and check delays through one allocation (see
// rtp_stream.hpp). One thread, one loop: every action (a packet, a check, a delayed answer) has
// a due time; the loop sleeps until the earliest and polls both sockets in between.
#include "tests/integration/tools/rtp_stream.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "tests/integration/tools/ice_checks.hpp"
#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr uint16_t kChannel = 0x4000;
constexpr auto kPacketInterval = milliseconds(20);
constexpr auto kCheckInterval = milliseconds(200);
constexpr uint16_t kFirstSeq = 1000;
constexpr uint32_t kFirstTimestamp = 0x12345678;
constexpr uint32_t kTicksPerPacket = 960;  // 20 ms at Opus' 48 kHz RTP clock (RFC 7587 4.1)
constexpr double kClockHz = 48000;
constexpr uint32_t kSsrc = 0x51A7E5C1;
constexpr uint8_t kPayloadType = 111;
constexpr size_t kRtpHeader = 12, kRtpPayload = 160;
// ICE credentials of the two agents (RFC 8445 section 7.2.2: USERNAME is "remote:local").
const std::string kClientUfrag = "clnt", kPeerUfrag = "peer";
const std::string kClientPassword = "client-ice-password-0123",
                  kPeerPassword = "peer-ice-pwd-0123456789";

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

/// Where a connectivity check goes: from the client to the peer, or the other way.
enum class Side : uint8_t { kClient, kPeer };

struct DelayedAnswer {
  Clock::time_point due;
  Side from;  ///< who answers
  TransactionId id;
};

struct CheckCounts {
  uint64_t sent = 0, answered = 0;
  std::set<TransactionId> outstanding;
};

/// RFC 3550 appendix A.8 interarrival jitter, in RTP timestamp units.
struct JitterEstimator {
  bool started = false;
  double previous_transit = 0, jitter = 0;
  void add(double arrival_ticks, uint32_t timestamp) {
    const double transit = arrival_ticks - timestamp;
    if (started) jitter += (std::fabs(transit - previous_transit) - jitter) / 16;
    previous_transit = transit;
    started = true;
  }
  double ms() const { return jitter / kClockHz * 1000; }
};

std::vector<uint8_t> rtp_packet(uint16_t seq, uint32_t timestamp, bool marker) {
  std::vector<uint8_t> p(kRtpHeader + kRtpPayload);
  p[0] = 0x80;  // V=2, no padding, no extension, no CSRC
  p[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | kPayloadType);
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq);
  for (int i = 0; i < 4; ++i) {
    p[4 + static_cast<size_t>(i)] = static_cast<uint8_t>(timestamp >> (24 - 8 * i));
    p[8 + static_cast<size_t>(i)] = static_cast<uint8_t>(kSsrc >> (24 - 8 * i));
  }
  for (size_t i = kRtpHeader; i < p.size(); ++i) p[i] = static_cast<uint8_t>(seq + i);
  return p;
}

/// The sequence number of one of our RTP packets, or nothing for anything else.
std::optional<uint16_t> our_rtp_seq(std::span<const uint8_t> d) {
  if (d.size() != kRtpHeader + kRtpPayload || (d[0] & 0xC0) != 0x80 ||
      (d[1] & 0x7F) != kPayloadType) {
    return std::nullopt;
  }
  const uint32_t ssrc =
      (uint32_t{d[8]} << 24) | (uint32_t{d[9]} << 16) | (uint32_t{d[10]} << 8) | d[11];
  if (ssrc != kSsrc) return std::nullopt;
  return static_cast<uint16_t>((d[2] << 8) | d[3]);
}

class RtpStream {
 public:
  RtpStream(const RtpStreamOptions& o, TurnClient& client, UdpSocket& peer,
            Ipv4Endpoint peer_ep)
      : o_(o),
        client_(client),
        peer_(peer),
        peer_ep_(std::move(peer_ep)),
        total_(static_cast<uint32_t>(o.seconds) * 50),
        rng_(std::random_device{}()),
        buf_(65536) {}

  /// The media phase; false if a packet or a check failed to go out.
  bool run_media();
  /// Answers checks (and keeps sending them) until stopped or hold_seconds.
  void hold();
  /// The "media" line's JSON, and whether everything arrived.
  bool report();

 private:
  bool skipped(uint32_t index) const {
    return o_.skip_every > 0 && index + 1 < total_ &&
           index % static_cast<uint32_t>(o_.skip_every) == static_cast<uint32_t>(o_.skip_every) / 2;
  }
  Clock::time_point packet_due(uint32_t index) const {
    const auto offset = milliseconds(sent_ % 2 == 0 ? o_.jitter_ms : -o_.jitter_ms);
    return start_ + kPacketInterval * index + offset;
  }
  bool send_packet(uint32_t index);
  bool send_check(Side from);
  bool answer(const DelayedAnswer& a);
  void poll_sockets();
  void on_datagram(Side at, std::span<const uint8_t> d);
  /// One loop turn: run what is due by `limit`, else sleep until the earliest due (<= 1 ms).
  bool turn(Clock::time_point next_packet);

  const RtpStreamOptions& o_;
  TurnClient& client_;
  UdpSocket& peer_;
  Ipv4Endpoint peer_ep_;
  const uint32_t total_;
  Clock::time_point start_, next_check_[2];
  uint32_t next_index_ = 0, sent_ = 0, skipped_ = 0, last_sent_ = 0;
  JitterEstimator estimator_;
  std::vector<DelayedAnswer> answers_;
  CheckCounts checks_[2];  ///< [Side of the sender]
  std::set<uint16_t> peer_seqs_;
  uint64_t peer_duplicates_ = 0, peer_foreign_ = 0;
  std::mt19937 rng_;
  std::vector<uint8_t> buf_;
};

bool RtpStream::send_packet(uint32_t index) {
  const auto seq = static_cast<uint16_t>(kFirstSeq + index);
  const auto ts = static_cast<uint32_t>(kFirstTimestamp + kTicksPerPacket * index);
  const auto packet = rtp_packet(seq, ts, index == 0);
  const auto at = std::chrono::duration_cast<microseconds>(Clock::now() - start_).count();
  if (!client_.send_channel_data(kChannel, packet)) return false;
  estimator_.add(static_cast<double>(at) * kClockHz / 1e6, ts);
  ++sent_;
  last_sent_ = index;
  return true;
}

bool RtpStream::send_check(Side from) {
  TransactionId id{};
  for (auto& b : id) b = static_cast<uint8_t>(rng_());
  auto& counts = checks_[static_cast<size_t>(from)];
  counts.outstanding.insert(id);
  ++counts.sent;
  if (from == Side::kClient) {
    const auto req = ice_binding_request(id, kPeerUfrag + ":" + kClientUfrag, kPeerPassword, true);
    return client_.send_channel_data(kChannel, req);
  }
  const auto req = ice_binding_request(id, kClientUfrag + ":" + kPeerUfrag, kClientPassword, false);
  return peer_.send_to(client_.relayed().ip, client_.relayed().port, req.data(), req.size());
}

bool RtpStream::answer(const DelayedAnswer& a) {
  if (a.from == Side::kPeer) {  // the peer saw the check come from the relayed address
    const auto resp = ice_binding_success(a.id, client_.relayed(), kPeerPassword);
    return peer_.send_to(client_.relayed().ip, client_.relayed().port, resp.data(), resp.size());
  }
  const auto resp = ice_binding_success(a.id, peer_ep_, kClientPassword);
  return client_.send_channel_data(kChannel, resp);
}

void RtpStream::on_datagram(Side at, std::span<const uint8_t> d) {
  if (const auto stun = parse_stun(d)) {
    if (stun->kind == StunInfo::Kind::kBindingRequest) {
      const int delay = at == Side::kPeer ? o_.peer_delay_ms : o_.client_delay_ms;
      answers_.push_back({Clock::now() + milliseconds(delay), at, stun->id});
    } else if (stun->kind == StunInfo::Kind::kBindingSuccess) {
      auto& counts = checks_[static_cast<size_t>(at)];  // an answer to `at`'s own check
      if (counts.outstanding.erase(stun->id) == 1) ++counts.answered;
    }
    return;
  }
  if (at == Side::kPeer) {
    if (const auto seq = our_rtp_seq(d)) {
      if (!peer_seqs_.insert(*seq).second) ++peer_duplicates_;
    } else {
      ++peer_foreign_;
    }
  }
}

void RtpStream::poll_sockets() {
  while (const auto payload = client_.receive_channel_data(0)) on_datagram(Side::kClient, *payload);
  while (const auto got = peer_.receive(buf_, 0)) {
    on_datagram(Side::kPeer, std::span<const uint8_t>(buf_.data(), *got));
  }
}

bool RtpStream::turn(Clock::time_point next_packet) {
  poll_sockets();
  const auto now = Clock::now();
  auto earliest = std::min(next_packet, now + milliseconds(1));
  for (size_t i = 0; i < answers_.size();) {
    if (answers_[i].due <= now) {
      if (!answer(answers_[i])) return false;
      answers_.erase(answers_.begin() + static_cast<long>(i));
      continue;
    }
    earliest = std::min(earliest, answers_[i].due);
    ++i;
  }
  for (Side side : {Side::kClient, Side::kPeer}) {
    auto& due = next_check_[static_cast<size_t>(side)];
    if (due <= now) {
      if (!send_check(side)) return false;
      due += kCheckInterval;
    }
    earliest = std::min(earliest, due);
  }
  if (earliest > now) std::this_thread::sleep_until(earliest);
  return true;
}

bool RtpStream::run_media() {
  start_ = Clock::now() + milliseconds(20);
  next_check_[0] = start_ + milliseconds(100);
  next_check_[1] = start_ + milliseconds(200);
  while (next_index_ < total_ && g_stop == 0) {
    if (skipped(next_index_)) {
      ++skipped_;
      ++next_index_;
      continue;
    }
    const auto due = packet_due(next_index_);
    if (Clock::now() >= due) {
      if (!send_packet(next_index_)) return false;
      ++next_index_;
      continue;
    }
    if (!turn(due)) return false;
  }
  // The last packets and answers in flight (loopback: well within this).
  const auto settle =
      Clock::now() + milliseconds(300 + std::max(o_.peer_delay_ms, o_.client_delay_ms));
  while (Clock::now() < settle) {
    if (!turn(settle)) return false;
  }
  return g_stop == 0;
}

void RtpStream::hold() {
  const auto until = Clock::now() + std::chrono::seconds(o_.hold_seconds);
  while (g_stop == 0 && Clock::now() < until) {
    if (!turn(until)) return;
  }
}

bool RtpStream::report() {
  const uint32_t spanned = last_sent_ + 1;
  const auto& to_peer = checks_[static_cast<size_t>(Side::kClient)];
  const auto& to_client = checks_[static_cast<size_t>(Side::kPeer)];
  std::printf(
      "media {\"spanned\": %u, \"sent\": %u, \"skipped\": %u, \"loss_ratio\": %.6f, "
      "\"jitter_ms_pattern\": %d, \"jitter_ms_sent\": %.4f, \"peer_received\": %zu, "
      "\"peer_duplicates\": %llu, \"peer_foreign\": %llu, "
      "\"checks_to_peer\": {\"sent\": %llu, \"answered\": %llu}, "
      "\"checks_to_client\": {\"sent\": %llu, \"answered\": %llu}}\n",
      spanned, sent_, skipped_, static_cast<double>(skipped_) / spanned, 2 * o_.jitter_ms,
      estimator_.ms(), peer_seqs_.size(), static_cast<unsigned long long>(peer_duplicates_),
      static_cast<unsigned long long>(peer_foreign_), static_cast<unsigned long long>(to_peer.sent),
      static_cast<unsigned long long>(to_peer.answered),
      static_cast<unsigned long long>(to_client.sent),
      static_cast<unsigned long long>(to_client.answered));
  std::fflush(stdout);
  bool ok = true;
  const auto complain = [&ok](const char* what) {
    std::fprintf(stderr, "integ_tool: rtp-stream: %s\n", what);
    ok = false;
  };
  if (peer_seqs_.size() != sent_) complain("the peer did not receive every packet sent");
  if (peer_duplicates_ != 0) complain("the peer received duplicates");
  if (peer_foreign_ != 0) complain("the peer received datagrams that are neither RTP nor STUN");
  // Every check is answered but those still in flight when the media ended.
  if (to_peer.sent == 0 || to_peer.answered + 2 < to_peer.sent) {
    complain("the client's checks were not answered by the peer");
  }
  if (to_client.sent == 0 || to_client.answered + 2 < to_client.sent) {
    complain("the peer's checks were not answered by the client");
  }
  return ok;
}

}  // namespace

int run_rtp_stream(const RtpStreamOptions& o) {
  if (o.seconds < 1 || o.seconds > 600 || o.skip_every < 0 || o.skip_every == 1 ||
      o.jitter_ms < 0 || o.jitter_ms >= 10 || o.peer_delay_ms < 0 || o.peer_delay_ms > 1000 ||
      o.client_delay_ms < 0 || o.client_delay_ms > 1000 || o.hold_seconds < 0) {
    std::fprintf(stderr, "integ_tool: rtp-stream: an option is out of range\n");
    return 2;
  }
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  TurnClient client(o.host, o.port, o.username, o.password);
  UdpSocket peer("127.0.0.1", 0);
  if (!client.ok() || !peer.ok()) return 1;
  const Ipv4Endpoint peer_ep{"127.0.0.1", peer.local_port()};
  const auto allocated = client.allocate();
  if (allocated != 200) {
    std::fprintf(stderr, "integ_tool: rtp-stream: Allocate answered %d\n",
                 allocated ? *allocated : -1);
    return 1;
  }
  if (client.relayed().port == 0 || client.mapped().port == 0) {
    std::fprintf(stderr, "integ_tool: rtp-stream: Allocate success without IPv4 "
                         "XOR-RELAYED-ADDRESS and XOR-MAPPED-ADDRESS\n");
    return 1;
  }
  const auto bound = client.channel_bind(kChannel, peer_ep.ip, peer_ep.port);
  if (bound != 200) {
    std::fprintf(stderr, "integ_tool: rtp-stream: ChannelBind answered %d\n", bound ? *bound : -1);
    return 1;
  }
  std::printf("allocated relay=%s peer=%s\n", client.relayed().text().c_str(),
              peer_ep.text().c_str());
  std::fflush(stdout);
  RtpStream stream(o, client, peer, peer_ep);
  if (!stream.run_media()) {
    std::fprintf(stderr, "integ_tool: rtp-stream: stopped or a send failed during the media\n");
    return 1;
  }
  if (!stream.report()) return 1;
  stream.hold();
  std::printf("stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace callrelay::integ
