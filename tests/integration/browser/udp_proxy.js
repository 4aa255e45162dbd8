// A lossy UDP proxy in front of callrelay's UDP listener, for the call quality test: what a
// browser behind a bad network sends to the relay. Privileges for `tc netem` are not needed:
// the test points one user's TURN URI at this proxy (quality_test.js rewrites its iceServers).
// Each browser socket gets its own upstream socket, so the relay sees one 5-tuple per client
// socket as it would through a NAT. Client-to-relay ChannelData carrying RTP (RFC 8656 section
// 12.4 framing, RFC 3550 version 2, not an RTCP packet type of RFC 5761 section 4) is dropped
// with the configured probability; STUN, TURN control, DTLS, RTCP and everything from the relay
// pass untouched, so ICE, consent and the receiver's reports keep working. Runs on node 18.
'use strict';

const dgram = require('node:dgram');

/// RTP inside ChannelData: channel numbers 0x4000-0x4FFF, then V=2, and a payload type outside
/// 64-95 (RTCP packet types 192-223 with the marker bit, RFC 5761 section 4).
function isRtpChannelData(msg) {
  if (msg.length < 4 + 12 || (msg[0] & 0xC0) !== 0x40) return false;
  const pt = msg[5] & 0x7F;
  return (msg[4] & 0xC0) === 0x80 && (pt < 64 || pt > 95);
}

/// A deterministic generator (mulberry32), so a run drops the same packets each time.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/// Starts the proxy on 127.0.0.1:<kernel port> forwarding to 127.0.0.1:targetPort. Resolves to
/// { port, setDropRatio(r), counts(), close() }; counts() = { rtp, dropped, forwarded, clients }.
function startUdpProxy(targetPort, { dropRatio = 0, seed = 7 } = {}) {
  const front = dgram.createSocket('udp4');
  const upstreams = new Map();  // "address:port" of a browser socket -> its upstream socket
  const random = prng(seed);
  let ratio = dropRatio;
  const counts = { rtp: 0, dropped: 0, forwarded: 0 };
  front.on('message', (msg, from) => {
    const key = `${from.address}:${from.port}`;
    let up = upstreams.get(key);
    if (!up) {
      up = dgram.createSocket('udp4');
      up.on('message', (back) => front.send(back, from.port, from.address));
      up.on('error', () => {});
      up.bind(0, '127.0.0.1');
      upstreams.set(key, up);
    }
    if (isRtpChannelData(msg)) {
      ++counts.rtp;
      if (random() < ratio) {
        ++counts.dropped;
        return;
      }
    }
    ++counts.forwarded;
    up.send(msg, targetPort, '127.0.0.1');
  });
  front.on('error', () => {});
  return new Promise((resolve) => {
    front.bind(0, '127.0.0.1', () => resolve({
      port: front.address().port,
      setDropRatio(r) { ratio = r; },
      counts: () => ({ ...counts, clients: upstreams.size }),
      close: () => new Promise((r) => {
        for (const up of upstreams.values()) up.close();
        front.close(r);
      }),
    }));
  });
}

/// A UDP socket on 127.0.0.1 that takes every datagram and answers none: a network that drops
/// UDP. Resolves to { port, received(), close() }.
function startUdpBlackHole() {
  const socket = dgram.createSocket('udp4');
  let received = 0;
  socket.on('message', () => { ++received; });
  return new Promise((resolve) => {
    socket.bind(0, '127.0.0.1', () => resolve({
      port: socket.address().port,
      received: () => received,
      close: () => new Promise((r) => socket.close(r)),
    }));
  });
}

module.exports = { startUdpProxy, startUdpBlackHole, isRtpChannelData };
