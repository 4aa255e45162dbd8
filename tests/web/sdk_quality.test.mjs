// The browser SDK's pure quality code under node (no browser): the E-model and loss classes the
// server uses too, the fallback rule, the `stats` payload built from getStats() reports, and
// the preflight's URL and TURN URI handling. Run with `node --test` (node 18 or later).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = await import(path.join(here, '..', '..', 'web', 'sdk', 'callrelay.js'));
const {
  classifyLoss, eModel, scoreInterval, FallbackRule, snapshotStats, statsInterval,
  preflightBase, classifyTurnUri, iceServersByTransport, median,
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
    remoteVideo: { packetsLost: 8 },
  }));

  it('sends deltas, jitter in ms, bitrates, the selected pair; omits what is unknown', () => {
    const second = snapshotStats(report({
      inAudio: { packetsReceived: 1247, packetsLost: 13, bytesReceived: 120000, jitter: 0.0042 },
      inVideo: { packetsReceived: 5891, packetsLost: 29, bytesReceived: 4500000,
        framesDecoded: 450, framesDropped: 3 },
      outVideo: { packetsSent: 4900, bytesSent: 3500000 },
      remoteVideo: { packetsLost: 17, jitter: 0.0031, roundTripTime: 0.0125 },
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
    assert.equal(preflightBase('https://relay.example.com:8443/'), 'https://relay.example.com:8443');
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

  it('takes the median round trip', () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});
