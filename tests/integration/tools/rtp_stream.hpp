// RTP-shaped media with known impairments through one TURN allocation, for the call quality
// tests: the relay measures loss, interarrival jitter and round-trip times on what it relays
// (README, section Call quality), and this tool knows what they must come to.
#pragma once

#include <cstdint>
#include <string>

namespace callrelay::integ {

struct RtpStreamOptions {
  std::string host;  ///< the TURN server (IPv4, numeric)
  uint16_t port = 0;
  std::string username, password;  ///< TURN credentials (a call's, for the quality tests)
  int seconds = 12;                ///< media for this long: 50 packets a second
  int skip_every = 20;             ///< every Nth sequence number is never sent (0: none)
  int jitter_ms = 8;         ///< send times move +J, -J, +J... ms around the 20 ms grid (J < 10)
  int peer_delay_ms = 30;    ///< the peer answers the client's Binding checks this late
  int client_delay_ms = 20;  ///< the client answers the peer's Binding checks this late
  int hold_seconds = 120;    ///< after the media, keep the allocation (and checks) this long
};

/// Allocates (UDP) with the credentials, opens a local UDP peer on 127.0.0.1 and binds channel
/// 0x4000 to it, then for `seconds` sends RTP over ChannelData: 12-byte header (RFC 3550
/// section 5.1: V=2, PT 111, one SSRC, sequence numbers from 1000, timestamps +960 a packet,
/// i.e. 20 ms at 48 kHz) and 160 bytes of payload, leaving out every skip_every-th sequence
/// number (never the last one sent) and moving each send time by the jitter pattern while the
/// timestamps stay regular. Every 200 ms each side sends the other an ICE connectivity check
/// through the relay and each answers the other's after its delay, so the relay can time both
/// legs. Prints (stdout, flushed) "allocated relay=IP:PORT peer=IP:PORT", then once the media
/// is done "media {JSON}": spanned, sent, skipped, loss_ratio (skipped / spanned),
/// jitter_ms_pattern (2 J, where the RFC 3550 A.8 estimator converges), jitter_ms_sent (that
/// estimator over the actual send times), peer_received, checks_to_peer and checks_to_client
/// ({sent, answered}). Then it keeps answering checks until SIGTERM/SIGINT or hold_seconds and
/// prints "stopped". Returns 0 if the allocation, the binding, every packet's relaying to the
/// peer (each exactly once) and the checks both ways succeeded; 1 otherwise (at once); 2 for
/// bad options.
int run_rtp_stream(const RtpStreamOptions& options);

}  // namespace callrelay::integ
