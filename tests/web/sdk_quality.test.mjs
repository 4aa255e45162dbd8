// The browser SDK's pure quality code under node (no browser): the E-model and loss classes the
// server uses too, the fallback rule, the `stats` payload built from getStats() reports, and
// the preflight's URL and TURN URI handling. Run with `node --test` (node 18 or later).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readFileSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
// The SDK is an ES module in a .js file with no package.json to say so: node 18 would load it
// as CommonJS, so it is imported as module source (it imports nothing, so no base URL needed).
const source = readFileSync(path.join(here, '..', '..', 'web', 'sdk', 'callrelay.js'), 'utf8');
const sdk = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
const {
  classifyLoss, eModel, scoreInterval, FallbackRule, snapshotStats, statsInterval,
  preflightBase, classifyTurnUri, iceServersByTransport, CallClient,
} = sdk;

const near = (actual, expected, digits, what) =>
  assert.equal(actual.toFixed(digits), expected.toFixed(digits), `${what}: ${actual}`);

describe('E-model and classes (the server\'s formula)', () => {
  it('scores a perfect interval 4.40', () => {
    const s = scoreInterval({ lossRatio: 0, jitterMs: 0, rttMs: 0 });
    near(s.r, 92.95, 2, 'R');
    near(s.mos, 4.40, 2, 'MOS');
    assert.equal(s.class, 'excellent');
  });

  it('takes RTT above 160 ms of effective latency on the steeper slope', () => {
    const s = scoreInterval({ lossRatio: 0, jitterMs: 0, rttMs: 500 });
    near(s.r, 54.2, 2, 'R');
    near(s.mos, 2.80, 2, 'MOS');
  });

  it('takes 2.5 R per loss percent', () => {
    const s = scoreInterval({ lossRatio: 0.01, jitterMs: 0, rttMs: 0 });
    near(s.r, 90.45, 2, 'R');
    near(s.mos, 4.35, 2, 'MOS');
    assert.equal(s.class, 'good');
  });

  it('counts jitter twice in the latency', () => {
    near(eModel({ rttMs: 20, jitterMs: 15, lossRatio: 0 }).r, 93.2 - 60 / 40, 6, 'R');
    near(eModel({ rttMs: 100, jitterMs: 30, lossRatio: 0 }).r, 93.2 - (170 - 120) / 10, 6, 'R');
  });

  it('is continuous at 160 ms', () => {
    near(eModel({ rttMs: 149.999 }).r, eModel({ rttMs: 150 }).r, 3, 'R at the knee');
  });

  it('clamps R to 0..100 and MOS to 1..4.5', () => {
    const worst = eModel({ rttMs: 5000, jitterMs: 1000, lossRatio: 1 });
    assert.equal(worst.r, 0);
    assert.equal(worst.mos, 1);
    const lossOnly = eModel({ lossRatio: 0.5 });
    assert.equal(lossOnly.r, 0);
    assert.equal(lossOnly.mos, 1);
    const beyond = eModel({ lossRatio: 7 });  // a ratio over 1 is clamped, not extrapolated
    assert.equal(beyond.r, 0);
  });

  it('scores unknown or nonsense inputs as 0', () => {
    const base = eModel({ rttMs: 0, jitterMs: 0, lossRatio: 0 });
    assert.deepEqual(eModel({ rttMs: null, jitterMs: undefined, lossRatio: NaN }), base);
    assert.deepEqual(eModel({ rttMs: -5, jitterMs: -1, lossRatio: -0.2 }), base);
    assert.deepEqual(eModel(), base);
  });

  it('classifies by loss: under 1% excellent, 3% good, 5% fair, else poor', () => {
    const cases = [
      [0, 'excellent'], [0.0099, 'excellent'], [0.01, 'good'], [0.0299, 'good'],
      [0.03, 'fair'], [0.0499, 'fair'], [0.05, 'poor'], [0.5, 'poor'], [1, 'poor'],
      [3 / 300, 'good'], [-1, 'excellent'], [NaN, 'excellent'], [undefined, 'excellent'],
    ];
    for (const [loss, cls] of cases) assert.equal(classifyLoss(loss), cls, `loss ${loss}`);
  });
});

describe('FallbackRule', () => {
  it('drops video after 3 poor outbound video intervals in a row, not before', () => {
    const rule = new FallbackRule();
    assert.equal(rule.onInterval('poor', true), 'none');
    assert.equal(rule.onInterval('poor', true), 'none');
    assert.equal(rule.onInterval('fair', true), 'none');  // the run is broken
    assert.equal(rule.onInterval('poor', true), 'none');
    assert.equal(rule.onInterval('poor', true), 'none');
    assert.equal(rule.onInterval('poor', true), 'drop-video');
  });

  it('offers video back after 6 good-or-excellent audio intervals, once per run', () => {
    const rule = new FallbackRule();
    for (let i = 0; i < 5; i += 1) assert.equal(rule.onInterval('good', false), 'none');
    assert.equal(rule.onInterval('fair', false), 'none');  // broken: starts over
    for (let i = 0; i < 5; i += 1) {
      assert.equal(rule.onInterval(i % 2 ? 'good' : 'excellent', false), 'none');
    }
    assert.equal(rule.onInterval('excellent', false), 'offer-video');
    assert.equal(rule.onInterval('excellent', false), 'none');
    assert.equal(rule.onInterval('poor', false), 'none');
    for (let i = 0; i < 5; i += 1) assert.equal(rule.onInterval('good', false), 'none');
    assert.equal(rule.onInterval('good', false), 'offer-video');
  });

  it('starts over after reset and when video comes back', () => {
    const rule = new FallbackRule();
    rule.onInterval('poor', true);
    rule.onInterval('poor', true);
    rule.reset();
    assert.equal(rule.onInterval('poor', true), 'none');
    for (let i = 0; i < 5; i += 1) rule.onInterval('good', false);
    assert.equal(rule.onInterval('poor', true), 'none');  // video on again: the good run is gone
    for (let i = 0; i < 5; i += 1) assert.equal(rule.onInterval('good', false), 'none');
  });

  it('takes other thresholds', () => {
    const rule = new FallbackRule({ poorIntervals: 1, goodIntervals: 2 });
    assert.equal(rule.onInterval('poor', true), 'drop-video');
    assert.equal(rule.onInterval('good', false), 'none');
    assert.equal(rule.onInterval('good', false), 'offer-video');
  });
});

// A getStats() report as Chromium writes it: one audio and one video stream each way over a
// relay/relay pair selected through the transport.
function report({ inAudio = {}, inVideo = {}, outVideo = {}, remoteVideo = {}, pair = {} } = {}) {
  const stats = [
    { id: 'IT01A', type: 'inbound-rtp', kind: 'audio', packetsReceived: 0, packetsLost: 0,
      jitter: 0.002, bytesReceived: 0, ...inAudio },
    { id: 'IT01V', type: 'inbound-rtp', kind: 'video', packetsReceived: 0, packetsLost: 0,
      jitter: 0.004, bytesReceived: 0, framesDecoded: 0, framesDropped: 0, ...inVideo },
    { id: 'OT01V', type: 'outbound-rtp', kind: 'video', packetsSent: 0, bytesSent: 0,
      ...outVideo },
    { id: 'RI01V', type: 'remote-inbound-rtp', kind: 'video', packetsLost: 0, jitter: 0.003,
      roundTripTime: 0.025, fractionLost: 0, ...remoteVideo },
    { id: 'T01', type: 'transport', selectedCandidatePairId: 'CP1' },
    { id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1',
      state: 'succeeded', nominated: true, currentRoundTripTime: 0.0102, ...pair },
    { id: 'CP2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R1',
      state: 'succeeded', nominated: true, currentRoundTripTime: 0.5 },
    { id: 'L1', type: 'local-candidate', candidateType: 'relay', protocol: 'udp',
      relayProtocol: 'tls' },
    { id: 'L2', type: 'local-candidate', candidateType: 'host', protocol: 'udp' },
    { id: 'R1', type: 'remote-candidate', candidateType: 'relay', protocol: 'udp' },
    { id: 'C1', type: 'codec', mimeType: 'video/VP8' },
  ];
  return new Map(stats.map((s) => [s.id, s]));
}

describe('stats intervals (the `stats` message)', () => {
  const first = snapshotStats(report({
    inAudio: { packetsReceived: 1000, packetsLost: 10, bytesReceived: 100000 },
    inVideo: { packetsReceived: 5000, packetsLost: 20, bytesReceived: 4000000,
      framesDecoded: 300, framesDropped: 1 },
    outVideo: { packetsSent: 4000, bytesSent: 3000000 },
    remoteVideo: { packetsLost: 8, reportsReceived: 4 },
  }));

  it('sends deltas, jitter in ms, bitrates, the selected pair; omits what is unknown', () => {
    const second = snapshotStats(report({
      inAudio: { packetsReceived: 1247, packetsLost: 13, bytesReceived: 120000, jitter: 0.0042 },
      inVideo: { packetsReceived: 5891, packetsLost: 29, bytesReceived: 4500000,
        framesDecoded: 450, framesDropped: 3 },
      outVideo: { packetsSent: 4900, bytesSent: 3500000 },
      // The receiver's latest report: 1% lost since its previous one (RFC 3550 6.4.2).
      remoteVideo: { packetsLost: 17, jitter: 0.0031, roundTripTime: 0.0125, fractionLost: 0.01,
        reportsReceived: 9 },
    }));
    const { payload, measures } = statsInterval(first, second, 5000.4);
    assert.deepEqual(payload, {
      interval_ms: 5000,
      inbound: [
        { kind: 'audio', packets_received: 247, packets_lost: 3, jitter_ms: 4.2,
          bitrate_bps: 31997 },  // over the measured 5000.4 ms
        { kind: 'video', packets_received: 891, packets_lost: 9, jitter_ms: 4,
          bitrate_bps: 799936, frames_decoded: 150, frames_dropped: 2 },
      ],
      outbound: [
        { kind: 'video', packets_sent: 900, bitrate_bps: 799936, rtt_ms: 12.5,
          remote_packets_lost: 9, remote_jitter_ms: 3.1 },
      ],
      pair: { local_type: 'relay', remote_type: 'relay', protocol: 'udp', relay_protocol: 'tls',
        rtt_ms: 10.2 },
    });
    assert.deepEqual(measures.map((m) => `${m.direction} ${m.kind}`),
      ['inbound audio', 'inbound video', 'outbound video']);
    const [audio, , outVideo] = measures;
    near(audio.lossRatio, 3 / 250, 9, 'inbound audio loss');
    near(audio.jitterMs, 4.2, 9, 'inbound audio jitter');
    assert.equal(audio.rttMs, 10.2, 'inbound RTT is the pair\'s');
    near(outVideo.lossRatio, 9 / 900, 9, 'outbound video loss (receiver reports)');
    assert.equal(outVideo.rttMs, 12.5, 'outbound RTT is the receiver report\'s');
    near(outVideo.jitterMs, 3.1, 9, 'outbound jitter');
  });

  it('clamps a loss counter that went down at 0 and does not count it twice later', () => {
    const dup = snapshotStats(report({
      inAudio: { packetsReceived: 1250, packetsLost: 6 },  // duplicates arrived: lost 10 -> 6
    }));
    const a = statsInterval(first, dup, 5000);
    assert.equal(a.payload.inbound[0].packets_lost, 0);
    const later = snapshotStats(report({ inAudio: { packetsReceived: 1500, packetsLost: 12 } }));
    const b = statsInterval(a.baseline, later, 5000);
    assert.equal(b.payload.inbound[0].packets_lost, 2, 'counted from the highest value, 10');
  });

  it('leaves out kinds that moved no packets and streams without a receiver report', () => {
    const same = snapshotStats(report({
      inAudio: { packetsReceived: 1000, packetsLost: 10, bytesReceived: 100000 },
      inVideo: { packetsReceived: 5000, packetsLost: 20, bytesReceived: 4000000,
        framesDecoded: 300, framesDropped: 1 },
      outVideo: { packetsSent: 4000, bytesSent: 3000000 },
      remoteVideo: { packetsLost: 8 },
    }));
    const { payload, measures } = statsInterval(first, same, 5000);
    assert.deepEqual(Object.keys(payload), ['interval_ms', 'pair']);
    assert.deepEqual(measures, []);
    const noReport = new Map([...report({ outVideo: { packetsSent: 100, bytesSent: 9 } })]
      .filter(([id]) => id !== 'RI01V'));
    const r = statsInterval(null, snapshotStats(noReport), 5000);
    assert.deepEqual(r.payload.outbound, [{ kind: 'video', packets_sent: 100, bitrate_bps: 14 }]);
    assert.deepEqual(r.measures, [], 'no receiver report, nothing to score outbound');
  });

  it('clamps into the ranges the server takes', () => {
    const huge = snapshotStats(report({
      inAudio: { packetsReceived: 5e8, packetsLost: 2e7, jitter: 100, bytesReceived: 1e13 },
      pair: { currentRoundTripTime: 120 },
    }));
    const { payload, measures } = statsInterval(null, huge, 200);
    assert.equal(payload.interval_ms, 1000);
    assert.deepEqual(payload.inbound[0], { kind: 'audio', packets_received: 1e7,
      packets_lost: 1e7, jitter_ms: 60000, bitrate_bps: 1e10 });
    assert.equal(payload.pair.rtt_ms, 60000);
    assert.equal(statsInterval(null, huge, 600000).payload.interval_ms, 60000);
    assert.equal(measures[0].jitterMs, 100000, 'the score takes the real figure');
  });

  it('finds the nominated succeeded pair without a transport, and drops unknown values', () => {
    const r = report({ pair: { state: 'in-progress' } });
    r.delete('T01');
    r.set('L2', { id: 'L2', type: 'local-candidate', candidateType: 'weird', protocol: 'sctp',
      relayProtocol: 'udp' });
    const { payload } = statsInterval(null, snapshotStats(r), 5000);
    assert.deepEqual(payload.pair, { remote_type: 'relay', rtt_ms: 500 });
    const none = new Map([...r].filter(([, s]) => s.type !== 'candidate-pair'));
    assert.equal(statsInterval(null, snapshotStats(none), 5000).payload.pair, undefined);
  });

  it('reads the older mediaType and ignores streams of other kinds', () => {
    const r = new Map([
      ['a', { id: 'a', type: 'inbound-rtp', mediaType: 'audio', packetsReceived: 50 }],
      ['b', { id: 'b', type: 'inbound-rtp', kind: 'data', packetsReceived: 50 }],
    ]);
    const { payload } = statsInterval(null, snapshotStats(r), 1000);
    assert.deepEqual(payload.inbound, [{ kind: 'audio', packets_received: 50 }]);
  });
});

describe('preflight helpers', () => {
  it('derives the HTTP base from the signaling URL', () => {
    assert.equal(preflightBase('ws://127.0.0.1:9641/api/v1/signal'), 'http://127.0.0.1:9641');
    assert.equal(preflightBase('wss://relay.example.com/api/v1/signal?x=1'),
      'https://relay.example.com');
    assert.equal(preflightBase('https://relay.example.com:8443/'),
      'https://relay.example.com:8443');
    assert.equal(preflightBase('ws://[::1]:9641/api/v1/signal'), 'http://[::1]:9641');
    assert.throws(() => preflightBase('ftp://x'), TypeError);
    assert.throws(() => preflightBase('not a url'), TypeError);
  });

  it('classifies TURN URIs by transport', () => {
    const cases = [
      ['turn:relay.example.com:3478?transport=udp', 'udp'],
      ['turn:relay.example.com:3478', 'udp'],
      ['TURN:[2001:db8::1]:3478?transport=UDP', 'udp'],
      ['turn:relay.example.com:3478?transport=tcp', 'tcp'],
      ['turns:relay.example.com:5349?transport=tcp', 'tls'],
      ['turns:relay.example.com:5349', 'tls'],
      ['turns:relay.example.com:5349?transport=udp', null],
      ['turn:relay.example.com?transport=sctp', null],
      ['stun:relay.example.com:3478', null],
      ['turn:', null],
      ['', null],
    ];
    for (const [uri, transport] of cases) assert.equal(classifyTurnUri(uri), transport, uri);
  });

  it('splits iceServers by transport, keeping credentials', () => {
    const servers = [
      { urls: ['turn:a:3478?transport=udp', 'turn:a:3478?transport=tcp', 'turns:a:5349',
        'stun:a:3478'], username: 'u', credential: 'p' },
      { urls: 'turn:b:3478', username: 'v', credential: 'q' },
      null, { urls: [7] },
    ];
    assert.deepEqual(iceServersByTransport(servers), {
      udp: [{ urls: ['turn:a:3478?transport=udp'], username: 'u', credential: 'p' },
        { urls: ['turn:b:3478'], username: 'v', credential: 'q' }],
      tcp: [{ urls: ['turn:a:3478?transport=tcp'], username: 'u', credential: 'p' }],
      tls: [{ urls: ['turns:a:5349'], username: 'u', credential: 'p' }],
    });
    assert.deepEqual(iceServersByTransport(undefined), { udp: [], tcp: [], tls: [] });
  });
});

// --- a Call driven through the real CallClient with fake WebRTC objects ----------------------
// No socket: the client keeps every message it sends until acknowledged (client._unacked), which
// is what these tests read; server messages go in through client._onMessage.

class FakeTrack {
  constructor(kind) {
    this.kind = kind;
    this.enabled = true;
    this.stopped = false;
  }
  stop() { this.stopped = true; }
}

class FakeStream {
  constructor(tracks) { this.tracks = tracks; }
  getTracks() { return [...this.tracks]; }
  getAudioTracks() { return this.tracks.filter((t) => t.kind === 'audio'); }
  getVideoTracks() { return this.tracks.filter((t) => t.kind === 'video'); }
}

class FakeSender {
  constructor(track) {
    this.track = track;
    this.replaced = [];
  }
  async replaceTrack(track) {
    this.replaced.push(track);
    this.track = track;
  }
}

class FakePeerConnection {
  constructor(config) {
    this.config = config;
    this.senders = [];
    this.reports = [];
    this.closed = false;
    this.connectionState = 'new';
    FakePeerConnection.last = this;
  }
  addTrack(track) {
    const sender = new FakeSender(track);
    this.senders.push(sender);
    return sender;
  }
  addTransceiver() {}
  async createOffer() { return { type: 'offer', sdp: 'v=0\r\n' }; }
  async setLocalDescription(d) { this.localDescription = d; }
  async setRemoteDescription(d) { this.remoteDescription = d; }
  async getStats() { return this.reports.length > 1 ? this.reports.shift() : this.reports[0]; }
  close() { this.closed = true; }
}

globalThis.RTCPeerConnection = FakePeerConnection;
Object.defineProperty(globalThis, 'navigator', {
  configurable: true,
  value: {
    mediaDevices: {
      getUserMedia: async (c) => new FakeStream([
        ...(c.audio ? [new FakeTrack('audio')] : []), ...(c.video ? [new FakeTrack('video')] : []),
      ]),
    },
  },
});

// Waits for queued work (promise chains, zero-delay timers) to reach `cond`.
async function until(cond, what) {
  for (let i = 0; i < 500; i += 1) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.fail(`never happened: ${what}`);
}

// Cumulative stats of an outgoing audio and video call: `sent` and `lost` per kind as the
// receiver's reports tell, plus received audio.
function callReport({ audioSent, videoSent, audioLost = 0, videoLost = 0, received = 0,
  reports = 0, audioFraction = 0, videoFraction = 0 }) {
  const stats = [
    { id: 'OA', type: 'outbound-rtp', kind: 'audio', packetsSent: audioSent, bytesSent: 0 },
    { id: 'OV', type: 'outbound-rtp', kind: 'video', packetsSent: videoSent, bytesSent: 0 },
    { id: 'RA', type: 'remote-inbound-rtp', kind: 'audio', packetsLost: audioLost, jitter: 0.002,
      roundTripTime: 0.02, fractionLost: audioFraction, reportsReceived: reports },
    { id: 'RV', type: 'remote-inbound-rtp', kind: 'video', packetsLost: videoLost, jitter: 0.002,
      roundTripTime: 0.02, fractionLost: videoFraction, reportsReceived: reports },
    { id: 'IA', type: 'inbound-rtp', kind: 'audio', packetsReceived: received, packetsLost: 0,
      jitter: 0.001 },
  ];
  return new Map(stats.map((s) => [s.id, s]));
}

// An outgoing audio and video call up to active, its stats baseline taken.
async function activeCall(options = {}) {
  const client = new CallClient({ url: 'ws://127.0.0.1:1/api/v1/signal', token: 't' });
  client.user = 'alice';
  const sent = () => [...client._unacked.values()].map((e) => JSON.parse(e.text));
  const events = [];
  const calling = client.call('bob', { audio: true, video: true, ...options });
  await until(() => client._unacked.size === 1, 'the invite');
  client._onMessage({ type: 'ack', seq: 1, call: 'c_1' });
  const call = await calling;
  for (const name of ['quality', 'peer-media', 'video-fallback', 'video-recoverable',
    'video-restored']) {
    call.on(name, (arg) => events.push([name, arg]));
  }
  if (options.beforeConnecting) options.beforeConnecting(call);
  client._onMessage({ type: 'accepted', call: 'c_1', sseq: 1,
    payload: { media: { audio: true, video: false }, ice_servers: [] } });
  client._onMessage({ type: 'state', call: 'c_1', sseq: 2, payload: { state: 'connecting' } });
  await until(() => FakePeerConnection.last?.localDescription, 'the offer');
  const pc = FakePeerConnection.last;
  pc.reports.push(callReport({ audioSent: 0, videoSent: 0 }));
  client._onMessage({ type: 'state', call: 'c_1', sseq: 3, payload: { state: 'active' } });
  await until(() => call._stats.baseline, 'the stats baseline');
  const counters = { audioSent: 0, videoSent: 0, audioLost: 0, videoLost: 0, received: 0,
    reports: 0 };
  // One interval: packets sent since the last one, and one receiver report per kind saying how
  // many of them were lost (fractionLost: since the receiver's previous report).
  const interval = async ({ audio = 250, video = 900, audioLost = 0, videoLost = 0,
    newReport = true } = {}) => {
    if (newReport) {
      counters.reports += 1;
      counters.audioFraction = audio > 0 ? audioLost / audio : 0;
      counters.videoFraction = video > 0 ? videoLost / video : 0;
    }
    counters.audioSent += audio;
    counters.videoSent += video;
    counters.audioLost += audioLost;
    counters.videoLost += videoLost;
    counters.received += 250;
    pc.reports.splice(0, pc.reports.length, callReport(counters));
    await call._sampleStats();
  };
  const messages = (type) => sent().filter((m) => m.type === type).map((m) => m.payload);
  const named = (n) => events.filter((e) => e[0] === n);
  return { client, call, pc, events, interval, messages, named };
}

describe('a call\'s stats, quality events and media state (fake WebRTC)', () => {
  it('sends `stats` per interval and scores each kind and direction', async () => {
    const t = await activeCall({ statsIntervalMs: 60000 });
    try {
      await t.interval({ videoLost: 18 });
      const [stats] = t.messages('stats');
      assert.equal(stats.outbound.length, 2);
      assert.deepEqual(stats.outbound[1], { kind: 'video', packets_sent: 900, bitrate_bps: 0,
        rtt_ms: 20, remote_packets_lost: 18, remote_jitter_ms: 2 });
      assert.deepEqual(stats.inbound, [{ kind: 'audio', packets_received: 250, packets_lost: 0,
        jitter_ms: 1 }]);
      const quality = t.named('quality').map(([, q]) => `${q.direction} ${q.kind} ${q.class}`);
      assert.deepEqual(quality, ['inbound audio excellent', 'outbound audio excellent',
        'outbound video good']);
      const video = t.call.quality.outbound.video;
      assert.equal(video.lossRatio, 0.02);
      assert.equal(video.rttMs, 20);
      assert.equal(video.mos, scoreInterval({ lossRatio: 0.02, jitterMs: 2, rttMs: 20 }).mos);
      assert.equal(t.call.quality.inbound.video, null, 'no inbound video: nothing scored');
    } finally {
      t.client.close();
    }
    assert.equal(t.call._stats.timer, null, 'the timer stops with the call');
  });

  it('scores no outbound interval without a new receiver report', async () => {
    const t = await activeCall({ statsIntervalMs: 60000 });
    try {
      await t.interval({ videoLost: 225, newReport: false });
      const outbound = t.named('quality').filter(([, q]) => q.direction === 'outbound');
      assert.deepEqual(outbound, [], 'nothing measured: no outbound quality event');
      await t.interval({ videoLost: 225 });
      const video = t.call.quality.outbound.video;
      assert.equal(video.lossRatio, 0.25, 'the new report\'s fraction lost');
      assert.equal(video.class, 'poor');
    } finally {
      t.client.close();
    }
  });

  it('falls back to audio after 3 poor video intervals, offers video after 6 good', async () => {
    const t = await activeCall({ statsIntervalMs: 60000 });
    try {
      const videoSender = t.pc.senders.find((s) => s.track.kind === 'video');
      const camera = videoSender.track;
      await t.interval({ videoLost: 90 });
      await t.interval({ videoLost: 90 });
      assert.equal(t.named('video-fallback').length, 0, 'two poor intervals are not enough');
      await t.interval({ videoLost: 90 });
      assert.deepEqual(t.named('video-fallback'), [['video-fallback', { reason: 'poor-quality' }]]);
      assert.deepEqual(t.messages('media'), [{ video: false, reason: 'poor-quality' }]);
      assert.deepEqual(videoSender.replaced, [null], 'replaceTrack(null): no video packets');
      assert.equal(camera.enabled, true, 'the camera track is kept to restore');
      assert.equal(t.call.videoFallback, true);
      assert.deepEqual(t.call.localMedia, { audio: true, video: false });
      for (let i = 0; i < 5; i += 1) await t.interval({ video: 0 });
      await t.interval({ video: 0, audioLost: 10 });  // fair audio: the run starts over
      for (let i = 0; i < 5; i += 1) await t.interval({ video: 0 });
      assert.equal(t.named('video-recoverable').length, 0);
      await t.interval({ video: 0 });
      assert.deepEqual(t.named('video-recoverable'), [['video-recoverable', {}]]);
      for (let i = 0; i < 8; i += 1) await t.interval({ video: 0 });
      assert.equal(t.named('video-recoverable').length, 1, 'once per fallback');
      assert.equal(await t.call.resumeVideo(), true);
      assert.deepEqual(videoSender.replaced, [null, camera]);
      assert.deepEqual(t.messages('media')[1], { video: true, reason: 'quality-restored' });
      assert.deepEqual(t.named('video-restored'), [['video-restored', {}]]);
      assert.equal(t.call.videoFallback, false);
      assert.equal(await t.call.resumeVideo(), false, 'nothing to resume');
      await t.interval({ videoLost: 90 });
      await t.interval({ videoLost: 90 });
      assert.equal(t.named('video-fallback').length, 1, 'the rule started over');
    } finally {
      t.client.close();
    }
  });

  it('disables the camera track where replaceTrack fails, and enables it again', async () => {
    const t = await activeCall({ statsIntervalMs: 60000 });
    try {
      const sender = t.pc.senders.find((s) => s.track.kind === 'video');
      const camera = sender.track;
      sender.replaceTrack = async () => { throw new Error('InvalidModificationError'); };
      for (let i = 0; i < 3; i += 1) await t.interval({ videoLost: 90 });
      assert.equal(t.named('video-fallback').length, 1);
      assert.equal(camera.enabled, false, 'black frames rather than the camera');
      t.call.setCameraEnabled(true);  // remembered, but video stays stopped
      assert.equal(camera.enabled, false);
      assert.deepEqual(t.call.localMedia, { audio: true, video: false });
      assert.equal(await t.call.resumeVideo(), true);
      assert.equal(camera.enabled, true);
      assert.deepEqual(t.messages('media').at(-1), { video: true, reason: 'quality-restored' });
    } finally {
      t.client.close();
    }
  });

  it('keeps video with fallback: false, and leaves a camera the user turned off', async () => {
    const off = await activeCall({ statsIntervalMs: 60000, fallback: false });
    try {
      for (let i = 0; i < 5; i += 1) await off.interval({ videoLost: 300 });
      assert.equal(off.named('video-fallback').length, 0);
      assert.equal(off.named('quality').length, 5 * 3, 'still scored');
    } finally {
      off.client.close();
    }
    const user = await activeCall({ statsIntervalMs: 60000 });
    try {
      user.call.setCameraEnabled(false);
      for (let i = 0; i < 5; i += 1) await user.interval({ videoLost: 300 });
      assert.equal(user.named('video-fallback').length, 0);
    } finally {
      user.client.close();
    }
  });

  it('mutes, turns the camera off and follows the other side\'s media', async () => {
    const t = await activeCall({ statsIntervalMs: 60000 });
    try {
      const [audio, video] = [t.call.localStream.getAudioTracks()[0],
        t.call.localStream.getVideoTracks()[0]];
      assert.deepEqual(t.call.peerMedia, { audio: true, video: false }, 'from the accept');
      t.call.setMuted(true);
      t.call.setCameraEnabled(false);
      assert.equal(audio.enabled, false);
      assert.equal(video.enabled, false);
      assert.equal(t.call.muted, true);
      assert.equal(t.call.cameraEnabled, false);
      t.call.setMuted(false);
      assert.deepEqual(t.messages('media'), [{ audio: false, reason: 'user' },
        { video: false, reason: 'user' }, { audio: true, reason: 'user' }]);
      t.client._onMessage({ type: 'peer-media', call: 'c_1', sseq: 4,
        payload: { video: true, reason: 'quality-restored' } });
      t.client._onMessage({ type: 'peer-media', call: 'c_1', sseq: 5,
        payload: { audio: false, reason: 'user' } });
      await until(() => t.named('peer-media').length === 2, 'two peer-media events');
      assert.deepEqual(t.named('peer-media').map(([, e]) => e), [
        { audio: true, video: true, reason: 'quality-restored' },
        { audio: false, video: true, reason: 'user' }]);
      assert.deepEqual(t.call.peerMedia, { audio: false, video: true });
    } finally {
      t.client.close();
    }
  });

  it('tells the other side on connecting what changed while the call rang', async () => {
    const t = await activeCall({
      statsIntervalMs: 60000,
      beforeConnecting: (call) => {
        call.setMuted(true);  // ringing: the server would refuse `media` now
        assert.equal(call.localStream.getAudioTracks()[0].enabled, false);
      },
    });
    try {
      assert.deepEqual(t.messages('media'), [{ audio: false, reason: 'user' }]);
    } finally {
      t.client.close();
    }
  });
});
