// Call quality in headless Chromium with real components: ONE Chromium (a browser context per
// user) and one callrelay with UDP, TCP and TLS listeners (a test certificate), calls, records
// and an API key; the SDK served by callrelay. The caller's TURN traffic goes through a lossy
// UDP proxy (udp_proxy.js; the page rewrites that user's iceServers to it), which drops a
// fraction of the RTP it forwards to the relay. Scenarios:
//  (a) a relay-only audio+video call with the fallback off and 25% of the caller's RTP dropped:
//      the caller's outbound video intervals ('quality' events) are poor or fair, the other
//      direction clean; the record has relay and client summaries, with the loss in the lossy
//      direction only; /metrics counts poor intervals and relay-source intervals;
//  (b) the same with the fallback on: the caller stops its video ('video-fallback'), the callee
//      gets 'peer-media' video false; once the loss stops, 'video-recoverable', resumeVideo()
//      and 'video-restored' (the callee gets video true); the record lists the fallback,
//      restored;
//  (c) preflight() against this server: udp, tcp and tls work; against a second server whose
//      UDP URI leads nowhere (a socket that never answers, as behind a network dropping UDP):
//      udp fails, tcp and tls work; callrelay_preflight_total on each server says so.
// Stats every 2 s (statsIntervalMs) so that three poor intervals come quickly; the server
// scores relay intervals every 5 s. Every wait is bounded; no assertion is on how long
// something took. Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');
const signal = require('./signal.js');
const { startUdpProxy, startUdpBlackHole } = require('./udp_proxy.js');
const { parseMetrics, checkSummary } = require('../quality/quality_lib.js');

const { show } = harness;
const API_KEY = 'quality-browser-test-api-key-0123456789';
const TOKEN_SECRET = 'quality-browser-test-signaling-secret-0123456789';
const STATS_MS = 2000;
const DROP = 0.25;   // of the caller's RTP to the relay
const MEDIA = { audio: true, video: true, relayOnly: true };

/// A self-signed P-256 certificate for 127.0.0.1 and localhost; returns { cert, key, spki }.
function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  childProcess.execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
    'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'pipe' });
  const spki = childProcess.execSync(`openssl x509 -in '${cert}' -pubkey -noout | ` +
    'openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64').toString().trim();
  return { cert, key, spki };
}

function callsConfig(dir) {
  return {
    enabled: true, ring_timeout_s: 20, connect_timeout_s: 20, grace_s: 5, max_duration_s: 600,
    credential_ttl_s: 600, token_secret: TOKEN_SECRET, max_token_ttl_s: 3600,
    records: { path: path.join(dir, 'calls.sqlite3') },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Polls check() until it returns a value other than undefined; fails naming what after ms.
async function waitFor(what, check, ms, describe = () => '') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`waited ${ms / 1000} s for ${what}; ${describe()}`);
    await sleep(250);
  }
}

async function scrape(server) {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/metrics`);
  assert.equal(res.status, 200, 'GET /metrics');
  return parseMetrics(await res.text());
}

function total(samples, name, match = {}) {
  return samples.filter((s) => s.name === name &&
    Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

describe('call quality in Chromium (lossy uplink, fallback, preflight)', {
  skip: process.env.CALLRELAY_TEST_SERVER === 'coturn' ? 'calls need callrelay' : false,
}, () => {
  let workDir;
  let certificate;
  let server;
  let server2;
  let web;
  let browser;
  let failed = false;
  const closers = [];

  before(async () => {
    workDir = harness.makeWorkDir();
    certificate = makeCertificate(workDir);
    web = await harness.startWebServer();
    fs.mkdirSync(path.join(workDir, 's1'));
    server = await harness.startServer(path.join(workDir, 's1'), {
      streams: { cert: certificate.cert, key: certificate.key }, apiKey: API_KEY,
      calls: callsConfig(path.join(workDir, 's1')),
    });
    const { chromium } = harness.loadPlaywright();
    browser = await chromium.launch({
      executablePath: harness.CHROMIUM, headless: true,
      args: [...harness.CHROMIUM_ARGS, ...harness.FAKE_MEDIA_ARGS,
        `--ignore-certificate-errors-spki-list=${certificate.spki}`],
    });
  });

  after(async () => {
    if (browser) await browser.close();
    for (const close of closers.reverse()) await close().catch(() => {});
    if (server2) await harness.stopServerChecked(server2, failed);
    await harness.teardown({ web, server, workDir }, failed);
  });

  const guarded = (fn) => harness.guarded(() => { failed = true; }, fn);

  // A page for `user` on `srv`, its SDK connected (stats every STATS_MS). With `via`, the
  // user's UDP TURN traffic goes to that port instead of the relay's; with udpOnly (the default)
  // the peer connections' iceServers keep only the UDP URI, so both users relay over UDP.
  async function openUser(user, { srv = server, via = null, udpOnly = true, options = {} } = {}) {
    const context = await browser.newContext();
    closers.push(() => context.close());
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.on('console', (msg) => console.log(`[${user}] ${msg.text()}`));
    page.on('pageerror', (err) => console.log(`[${user}] page error: ${err}`));
    await page.goto(`${web.origin}/quality_test.html`);
    await page.waitForFunction(() => window.qualityTest !== undefined, null, { timeout: 10000 });
    if (udpOnly) {
      await page.evaluate(([from, to]) => window.qualityTest.proxyUdp(from, to),
        [`127.0.0.1:${srv.port}`, `127.0.0.1:${via ?? srv.port}`]);
    }
    await page.evaluate((u) => window.qualityTest.load(u),
      `http://127.0.0.1:${srv.httpPort}/sdk/callrelay.js`);
    const url = `ws://127.0.0.1:${srv.httpPort}/api/v1/signal`;
    const token = signal.mintToken(TOKEN_SECRET, user);
    const welcome = await page.evaluate(([u, t, o]) => window.qualityTest.connect(u, t, o),
      [url, token, { statsIntervalMs: STATS_MS, ...options }]);
    assert.equal(welcome.user, user, show(welcome));
    const run = (fn, arg) => page.evaluate(fn, arg);
    return {
      user, page, url, token,
      call: (to, o) => run(([t, opts]) => window.qualityTest.call(t, opts), [to, o]),
      waitIncoming: (n = 1) => run((k) => window.qualityTest.waitIncoming(k), n),
      accept: (id, o) => run(([i, opts]) => window.qualityTest.accept(i, opts), [id, o]),
      waitState: (id, s) => run(([i, st]) => window.qualityTest.waitState(i, st), [id, s]),
      waitEnded: (id) => run((i) => window.qualityTest.waitEnded(i), id),
      hangup: (id) => run((i) => window.qualityTest.hangup(i), id),
      info: (id) => run((i) => window.qualityTest.info(i), id),
      pair: (id) => run((i) => window.qualityTest.pair(i), id),
      resumeVideo: (id) => run((i) => window.qualityTest.resumeVideo(i), id),
      videoSent: (id) => run((i) => window.qualityTest.videoSent(i), id),
      preflight: (u, t, ms) => run(([a, b, c]) => window.qualityTest.preflight(a, b, c), [u, t, ms]),
    };
  }

  // caller calls callee with `options` on both sides; resolves to the call id once active.
  async function establish(caller, callee, options) {
    const { id } = await caller.call(callee.user, { ...MEDIA, ...options });
    const inc = await callee.waitIncoming();
    assert.equal(inc.id, id);
    await callee.accept(id, { ...MEDIA, ...options });
    await caller.waitState(id, 'active');
    await callee.waitState(id, 'active');
    return id;
  }

  async function record(id) {
    return waitFor(`the record of ${id}`, async () => {
      const r = await signal.apiRequest(server.httpPort, 'GET', `/api/v1/calls/${id}`, API_KEY);
      if (r.status === 404) return undefined;
      assert.equal(r.status, 200, `GET /api/v1/calls/${id}: ${r.text}`);
      return r.body.record || r.body;
    }, 15000);
  }

  const qualityEvents = (info, direction, kind) => info.events
    .filter((e) => e.name === 'quality' && e.data.direction === direction && e.data.kind === kind)
    .map((e) => e.data);

  const lossy = (e) => e.class === 'poor' || e.class === 'fair';
  const classes = (events) => events.map((e) => `${e.class}/${e.lossRatio.toFixed(3)}`).join(' ');

  it('(a) a lossy uplink: poor outbound video for the caller, a clean other direction, the record and metrics', { timeout: 90000 }, () => guarded(async () => {
    const proxy = await startUdpProxy(server.port, { dropRatio: DROP, seed: 7 });
    closers.push(() => proxy.close());
    const alice = await openUser('a-alice', { via: proxy.port });
    const bob = await openUser('a-bob');
    const id = await establish(alice, bob, { fallback: false });
    const [pairA, pairB] = [await alice.pair(id), await bob.pair(id)];
    harness.assertRelayPair(pairA, 'alice', 'udp');
    harness.assertRelayPair(pairB, 'bob', 'udp');
    assert.equal(pairA.url, `turn:127.0.0.1:${proxy.port}?transport=udp`, 'alice relays through the proxy');
    assert.equal(pairB.url, `turn:127.0.0.1:${server.port}?transport=udp`, 'bob relays directly');
    // Six of alice's outbound video intervals (12 s: two relay samples at least).
    await waitFor('six outbound video intervals of alice', async () =>
      (qualityEvents(await alice.info(id), 'outbound', 'video').length >= 6 ? true : undefined), 45000);
    const [infoA, infoB] = [await alice.info(id), await bob.info(id)];
    const seen = {};
    for (const [who, info] of [['alice', infoA], ['bob', infoB]]) {
      for (const dir of ['outbound', 'inbound']) {
        for (const kind of ['audio', 'video']) {
          seen[`${who} ${dir} ${kind}`] = qualityEvents(info, dir, kind);
          console.log(`${who} ${dir} ${kind}: ${classes(seen[`${who} ${dir} ${kind}`])}`);
        }
      }
    }
    // The lossy direction, as alice's sender sees it (remote-inbound-rtp) and as bob receives it.
    for (const key of ['alice outbound video', 'bob inbound video', 'bob inbound audio']) {
      const events = seen[key];
      assert.ok(events.filter(lossy).length >= Math.max(3, events.length - 2),
        `${key}: poor or fair intervals under ${DROP * 100}% loss: ${classes(events)}`);
    }
    // The other direction is clean.
    for (const key of ['bob outbound video', 'bob outbound audio', 'alice inbound video',
      'alice inbound audio']) {
      assert.ok(seen[key].length >= 3, `${key}: intervals: ${classes(seen[key])}`);
      assert.ok(seen[key].every((e) => e.lossRatio <= 0.01), `${key}: no loss: ${classes(seen[key])}`);
    }
    const counts = proxy.counts();
    assert.ok(counts.rtp > 500 && Math.abs(counts.dropped / counts.rtp - DROP) < 0.05,
      `the proxy dropped about ${DROP} of alice's RTP: ${show(counts)}`);
    await alice.hangup(id);
    await bob.waitEnded(id);

    const rec = await record(id);
    console.log(`record quality (a): ${JSON.stringify(rec.quality)}`);
    const qual = rec.quality;
    for (const dir of ['caller_to_callee', 'callee_to_caller']) {
      for (const kind of ['audio', 'video']) {
        for (const src of ['relay', 'client']) checkSummary(qual[dir][kind][src], `${dir}.${kind}.${src}`);
      }
    }
    for (const kind of ['audio', 'video']) {
      const relay = qual.caller_to_callee[kind].relay;
      assert.ok(Math.abs(relay.loss_ratio - DROP) <= 0.08,
        `caller_to_callee.${kind}.relay: the relay counts the proxy's drops: ${show(relay)}`);
      assert.ok(relay.ms_in_class.poor > 0, `caller_to_callee.${kind}.relay poor: ${show(relay)}`);
      const client = qual.caller_to_callee[kind].client;
      assert.ok(client.loss_ratio >= 0.05, `caller_to_callee.${kind}.client: bob saw loss: ${show(client)}`);
      for (const src of ['relay', 'client']) {
        const s = qual.callee_to_caller[kind][src];
        assert.ok(s.loss_ratio <= 0.01, `callee_to_caller.${kind}.${src}: no loss: ${show(s)}`);
      }
    }
    assert.deepEqual(qual.video_fallbacks, [], 'no fallback with fallback: false');

    const samples = await scrape(server);
    const intervals = (m) => total(samples, 'callrelay_call_quality_intervals_total', m);
    assert.ok(intervals({ class: 'poor', source: 'relay' }) > 0, 'poor relay intervals counted');
    assert.ok(intervals({ class: 'poor', source: 'client' }) > 0, 'poor client intervals counted');
    assert.ok(intervals({ source: 'relay', kind: 'video' }) >= 2, 'relay video intervals counted');
    assert.ok(intervals({ class: 'excellent', source: 'relay' }) > 0,
      'the clean direction counted excellent');

    // An outbound interval is what the receiver reported: one without a new receiver report
    // (audio RTCP comes every ~5 s, stats every 2 s here) has no measurement, so it must not
    // read as a loss-free (excellent) interval while a quarter of the packets are lost.
    const outAudio = seen['alice outbound audio'];
    assert.ok(outAudio.length >= 2 && outAudio.every(lossy),
      `alice outbound audio under ${DROP * 100}% loss: ${classes(outAudio)}`);
  }));

  it('(b) sustained loss: the caller falls back to audio only, then restores its video', { timeout: 120000 }, () => guarded(async () => {
    const proxy = await startUdpProxy(server.port, { dropRatio: 0.3, seed: 11 });
    closers.push(() => proxy.close());
    const alice = await openUser('b-alice', { via: proxy.port });
    const bob = await openUser('b-bob');
    const id = await establish(alice, bob, {});
    const named = (info, name) => info.events.filter((e) => e.name === name);
    const fallbackInfo = await waitFor('alice\'s video-fallback', async () => {
      const info = await alice.info(id);
      return named(info, 'video-fallback').length > 0 ? info : undefined;
    }, 60000, () => 'no fallback');
    const fallback = named(fallbackInfo, 'video-fallback')[0];
    assert.deepEqual(fallback.data, { reason: 'poor-quality' });
    assert.equal(fallbackInfo.videoFallback, true);
    // The rule: three poor outbound video intervals in a row, the last just before it.
    const before = qualityEvents({ events: fallbackInfo.events.filter((e) => e.at <= fallback.at) },
      'outbound', 'video');
    assert.deepEqual(before.slice(-3).map((e) => e.class), ['poor', 'poor', 'poor'],
      `alice's outbound video before the fallback: ${classes(before)}`);
    const peerOff = await waitFor('bob\'s peer-media video:false', async () =>
      named(await bob.info(id), 'peer-media').find((e) => e.data.video === false), 15000);
    assert.equal(peerOff.data.reason, 'poor-quality', show(peerOff));
    assert.equal((await bob.info(id)).peerMedia.video, false, 'bob: call.peerMedia.video');
    // No more video from alice: her sender's frame count stands still.
    const sent = await alice.videoSent(id);
    await sleep(3000);
    const later = await alice.videoSent(id);
    assert.ok(later.frames - sent.frames <= 1,
      `alice sends no video frames after the fallback: ${show([sent, later])}`);

    // The loss stops: after good audio intervals the SDK offers video back; resume it.
    proxy.setDropRatio(0);
    await waitFor('alice\'s video-recoverable', async () =>
      (named(await alice.info(id), 'video-recoverable').length > 0 ? true : undefined), 60000);
    assert.equal(await alice.resumeVideo(id), true, 'resumeVideo() after video-recoverable');
    assert.equal(named(await alice.info(id), 'video-restored').length, 1, 'video-restored');
    const peerOn = await waitFor('bob\'s peer-media video:true', async () =>
      named(await bob.info(id), 'peer-media').find((e) => e.data.video === true), 15000);
    assert.equal(peerOn.data.reason, 'quality-restored', show(peerOn));
    const resumed = await alice.videoSent(id);
    await waitFor('alice\'s video frames again', async () =>
      ((await alice.videoSent(id)).frames - resumed.frames > 20 ? true : undefined), 15000);
    await alice.hangup(id);
    await bob.waitEnded(id);

    const rec = await record(id);
    console.log(`record quality (b): ${JSON.stringify(rec.quality)}`);
    const fallbacks = rec.quality.video_fallbacks;
    assert.equal(fallbacks.length, 1, `one fallback: ${show(fallbacks)}`);
    assert.equal(fallbacks[0].party, 'caller');
    assert.ok(fallbacks[0].at > 0 && fallbacks[0].restored >= fallbacks[0].at, show(fallbacks));
    const samples = await scrape(server);
    assert.equal(total(samples, 'callrelay_call_video_fallbacks_total'), 1,
      'callrelay_call_video_fallbacks_total counts the one fallback');
  }));

  it('(c) preflight(): udp, tcp and tls; then a server whose UDP is unreachable', { timeout: 90000 }, () => guarded(async () => {
    const carol = await openUser('c-carol', { udpOnly: false });
    const r1 = await carol.preflight(carol.url, carol.token, 8000);
    console.log(`preflight 1: ${JSON.stringify(r1)}`);
    assert.equal(r1.error, undefined, show(r1));
    assert.match(r1.id, /^p_[A-Za-z0-9_-]{22}$/, show(r1));
    assert.equal(r1.posted, true, `the result was posted: ${show(r1)}`);
    for (const t of ['udp', 'tcp', 'tls']) {
      assert.equal(r1.transports[t].ok, true, `${t} works: ${show(r1)}`);
      assert.ok(r1.transports[t].rttMs >= 0 && r1.transports[t].gatherMs >= 0, `${t}: ${show(r1)}`);
    }

    const blackHole = await startUdpBlackHole();
    closers.push(() => blackHole.close());
    fs.mkdirSync(path.join(workDir, 's2'));
    server2 = await harness.startServer(path.join(workDir, 's2'), {
      streams: { cert: certificate.cert, key: certificate.key }, apiKey: API_KEY,
      calls: callsConfig(path.join(workDir, 's2')), unreachableUdpPort: blackHole.port,
    });
    const dave = await openUser('c-dave', { srv: server2, udpOnly: false });
    const r2 = await dave.preflight(dave.url, dave.token, 4000);
    console.log(`preflight 2: ${JSON.stringify(r2)}`);
    assert.equal(r2.posted, true, `the result was posted: ${show(r2)}`);
    assert.equal(r2.transports.udp.ok, false, `udp fails: ${show(r2)}`);
    assert.ok(r2.transports.udp.error, `udp failure says why: ${show(r2)}`);
    assert.equal(r2.transports.tcp.ok, true, `tcp works: ${show(r2)}`);
    assert.equal(r2.transports.tls.ok, true, `tls works: ${show(r2)}`);
    assert.ok(blackHole.received() > 0, 'the browser tried the UDP URI');

    const want = [
      [server, { udp: [1, 0], tcp: [1, 0], tls: [1, 0] }],
      [server2, { udp: [0, 1], tcp: [1, 0], tls: [1, 0] }],
    ];
    for (const [srv, byTransport] of want) {
      await waitFor('the preflight counted', async () => {
        const samples = await scrape(srv);
        for (const [t, [ok, bad]] of Object.entries(byTransport)) {
          const got = [total(samples, 'callrelay_preflight_total', { transport: t, outcome: 'ok' }),
            total(samples, 'callrelay_preflight_total', { transport: t, outcome: 'failed' })];
          if (got[0] !== ok || got[1] !== bad) return undefined;
          assert.equal(total(samples, 'callrelay_preflight_gather_seconds_count', { transport: t }), ok);
          assert.equal(total(samples, 'callrelay_preflight_rtt_seconds_count', { transport: t }), ok);
        }
        return true;
      }, 10000, () => `wanted ${show(byTransport)}`);
    }
  }));
});
