// Calls through callrelay from headless Chromium: every user (and each device of a user) is a
// page in its own browser context of ONE Chromium, importing the SDK from callrelay's own HTTP
// origin; ONE callrelay serves every scenario (short ring timeout and grace period). All calls
// are relay-only with fake audio and video. Scenarios: a completed call (relay/relay pairs,
// media both ways, the record's outcome, setup time and relayed bytes), decline, cancel, missed,
// busy, two devices accepting at once, an intruder's messages, a signaling cut resumed within the
// grace period and one beyond it, and invalid input (malformed messages, oversized messages,
// bad tokens on the upgrade). Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');
const signal = require('./signal.js');

const { show } = harness;
const API_KEY = 'calls-test-api-key-0123456789';
const TOKEN_SECRET = 'calls-test-signaling-secret-0123456789abcdef';
const RING_TIMEOUT_S = 4;
const GRACE_S = 4;
const MEDIA = { audio: true, video: true, relayOnly: true };

describe('calls through callrelay in Chromium (SDK, signaling, relay, records)', () => {
  let workDir;
  let server;
  let web;
  let browser;
  let failed = false;
  const contexts = new Set();
  const proxies = new Set();

  before(async () => {
    workDir = harness.makeWorkDir();
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, {
      credentialApi: { key: API_KEY, origin: web.origin },
      calls: {
        enabled: true, ring_timeout_s: RING_TIMEOUT_S, connect_timeout_s: 20, grace_s: GRACE_S,
        max_duration_s: 600, call_waiting: false, credential_ttl_s: 600,
        token_secret: TOKEN_SECRET, max_token_ttl_s: 3600, max_message_bytes: 65536,
        max_connections: 200, messages_per_second: 50,
        records: { path: path.join(workDir, 'calls.sqlite3') },
      },
    });
    const { chromium } = harness.loadPlaywright();
    browser = await chromium.launch({
      executablePath: harness.CHROMIUM, headless: true,
      args: [...harness.CHROMIUM_ARGS, ...harness.FAKE_MEDIA_ARGS],
    });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    for (const p of proxies) await p.close();
    await harness.teardown({ web, server, workDir }, failed);
  });

  const guarded = (fn) => harness.guarded(() => { failed = true; }, fn);
  const sdkUrl = () => `http://127.0.0.1:${server.httpPort}/sdk/callrelay.js`;
  const signalUrl = (port = server.httpPort) => `ws://127.0.0.1:${port}/api/v1/signal`;

  // A page for one device of `user`, connected through the SDK (through `proxy` if given).
  async function openDevice(user, { token, proxy } = {}) {
    const context = await browser.newContext();
    contexts.add(context);
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.on('console', (msg) => console.log(`[${user}] ${msg.text()}`));
    page.on('pageerror', (err) => console.log(`[${user}] page error: ${err}`));
    await page.goto(`${web.origin}/calls_test.html`);
    await page.waitForFunction(() => window.callsTest !== undefined, null, { timeout: 10000 });
    const exports = await page.evaluate((u) => window.callsTest.load(u), sdkUrl());
    for (const name of ['Call', 'CallClient', 'preflight', 'scoreInterval', 'FallbackRule']) {
      assert.ok(exports.includes(name), `the SDK module exports ${name}: ${exports}`);
    }
    const url = signalUrl(proxy ? proxy.port : server.httpPort);
    const jwt = token || signal.mintToken(TOKEN_SECRET, user);
    const welcome = await page.evaluate(([u, t]) => window.callsTest.connect(u, t), [url, jwt]);
    assert.equal(welcome.user, user, `welcome names the user: ${show(welcome)}`);
    assert.ok(welcome.device, `welcome names the device: ${show(welcome)}`);
    const run = (fn, arg) => page.evaluate(fn, arg);
    return {
      user, context, page, device: welcome.device,
      call: (to, opts = MEDIA) => run(([t, o]) => window.callsTest.call(t, o), [to, opts]),
      waitIncoming: (n = 1) => run((k) => window.callsTest.waitIncoming(k), n),
      accept: (id, opts = MEDIA) => run(([i, o]) => window.callsTest.accept(i, o), [id, opts]),
      decline: (id) => run((i) => window.callsTest.decline(i), id),
      cancel: (id) => run((i) => window.callsTest.cancel(i), id),
      hangup: (id) => run((i) => window.callsTest.hangup(i), id),
      waitState: (id, s) => run(([i, st]) => window.callsTest.waitState(i, st), [id, s]),
      waitStates: (id, s) => run(([i, st]) => window.callsTest.waitStates(i, st), [id, s]),
      waitEvents: (id, e) => run(([i, ev]) => window.callsTest.waitEvents(i, ev), [id, e]),
      waitEnded: (id) => run((i) => window.callsTest.waitEnded(i), id),
      info: (id) => run((i) => window.callsTest.info(i), id),
      media: (id) => run((i) => window.callsTest.media(i), id),
      localTracks: (id) => run((i) => window.callsTest.localTracks(i), id),
      incomingCount: () => run(() => window.callsTest.incomingCount()),
      clientEvents: () => run(() => window.callsTest.clientEvents()),
    };
  }

  async function closeDevices(...devices) {
    for (const d of devices) {
      contexts.delete(d.context);
      await d.context.close();
    }
  }

  // caller calls callee; callee's device answers; both wait for 'active'. Returns the call id.
  async function establish(caller, callee) {
    const rung = await callee.incomingCount();
    const out = await caller.call(callee.user);
    assert.match(out.id, /^c_[A-Za-z0-9_-]{22}$/, `call id: ${show(out)}`);
    const inc = await callee.waitIncoming(rung + 1);
    assert.equal(inc.id, out.id, 'the callee is rung for the call the caller made');
    assert.equal(inc.from, caller.user);
    assert.deepEqual(inc.media, { audio: true, video: true });
    const accepted = await callee.accept(out.id);
    assert.equal(accepted.ok, true, `accept: ${show(accepted)}`);
    await caller.waitState(out.id, 'active');
    await callee.waitState(out.id, 'active');
    return out.id;
  }

  // Relay/relay selected pair and audio and video bytes still arriving, on this device.
  async function assertMediaFlows(device, id) {
    const m = await device.media(id);
    assert.equal(m.error, undefined, `${device.user}: ${show(m)}`);
    harness.assertRelayPair(m.pair, device.user);
  }

  async function assertEnded(device, id, outcome) {
    const s = await device.waitEnded(id);
    assert.equal(s.ended.outcome, outcome, `${device.user}: ${show(s)}`);
    const tracks = await device.localTracks(id);
    assert.ok(tracks.every((t) => t.readyState === 'ended'), `${device.user}: tracks stopped: ${show(tracks)}`);
    return s.ended;
  }

  // The call's record (GET /api/v1/calls/{id}); records are written asynchronously, so this
  // polls until it exists.
  async function record(id) {
    const deadline = Date.now() + 10000;
    for (;;) {
      const r = await signal.apiRequest(server.httpPort, 'GET', `/api/v1/calls/${id}`, API_KEY);
      if (r.status === 200) {
        const rec = r.body && r.body.record ? r.body.record : r.body;
        assert.equal(rec.id, id, `record: ${r.text}`);
        return rec;
      }
      assert.equal(r.status, 404, `GET /api/v1/calls/${id}: ${r.status} ${r.text}`);
      if (Date.now() > deadline) assert.fail(`no record for ${id} within 10 s`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  it('(a) a relay-only call from invite to hang-up, media both ways, its record', { timeout: 90000 }, () => guarded(async () => {
    // One token from callrelay's token endpoint, the other minted here.
    const minted = await signal.apiRequest(server.httpPort, 'POST', '/api/v1/signal/token', API_KEY,
      { user: 'a-alice', ttl: 300 });
    assert.equal(minted.status, 200, `POST /api/v1/signal/token: ${minted.text}`);
    assert.equal(minted.body.user, 'a-alice');
    const alice = await openDevice('a-alice', { token: minted.body.token });
    const bob = await openDevice('a-bob');
    const id = await establish(alice, bob);
    assert.deepEqual((await alice.info(id)).states, ['ringing', 'connecting', 'active']);
    await assertMediaFlows(alice, id);
    await assertMediaFlows(bob, id);
    assert.ok((await bob.info(id)).events.includes('remote-stream'), 'bob got the remote stream');
    await alice.hangup(id);
    const endA = await assertEnded(alice, id, 'completed');
    const endB = await assertEnded(bob, id, 'completed');
    assert.equal(endA.reason, 'user-hangup');
    assert.equal(endB.by, 'caller');
    const rec = await record(id);
    console.log(`record (a): ${show(rec)}`);
    assert.equal(rec.outcome, 'completed');
    assert.equal(rec.caller, 'a-alice');
    assert.equal(rec.callee, 'a-bob');
    assert.equal(rec.answered_device, bob.device);
    assert.ok(rec.setup_ms > 0, `setup_ms: ${rec.setup_ms}`);
    assert.ok(rec.relay.bytes_caller_to_callee > 0, `relay: ${show(rec.relay)}`);
    assert.ok(rec.relay.bytes_callee_to_caller > 0, `relay: ${show(rec.relay)}`);
    await closeDevices(alice, bob);
  }));

  it('(b) the callee declines', { timeout: 60000 }, () => guarded(async () => {
    const alice = await openDevice('b-alice');
    const bob = await openDevice('b-bob');
    const { id } = await alice.call('b-bob');
    await bob.waitIncoming();
    await bob.decline(id);
    await assertEnded(alice, id, 'declined');
    await assertEnded(bob, id, 'declined');
    assert.equal((await record(id)).outcome, 'declined');
    await closeDevices(alice, bob);
  }));

  it('(c) the caller cancels while it rings', { timeout: 60000 }, () => guarded(async () => {
    const alice = await openDevice('c-alice');
    const bob = await openDevice('c-bob');
    const { id } = await alice.call('c-bob');
    await bob.waitIncoming();
    await alice.cancel(id);
    await assertEnded(alice, id, 'cancelled');
    await assertEnded(bob, id, 'cancelled');
    assert.equal((await record(id)).outcome, 'cancelled');
    await closeDevices(alice, bob);
  }));

  it('(d) nobody answers: missed after the ring timeout', { timeout: 60000 }, () => guarded(async () => {
    const alice = await openDevice('d-alice');
    const bob = await openDevice('d-bob');
    const { id } = await alice.call('d-bob');
    await bob.waitIncoming();
    const end = await assertEnded(alice, id, 'missed');
    assert.equal(end.by, 'server');
    await assertEnded(bob, id, 'missed');
    assert.equal((await record(id)).outcome, 'missed');
    await closeDevices(alice, bob);
  }));

  it('(e) busy: a third caller gets busy, the call in progress is unharmed', { timeout: 90000 }, () => guarded(async () => {
    const alice = await openDevice('e-alice');
    const bob = await openDevice('e-bob');
    const carol = await openDevice('e-carol');
    const id = await establish(alice, bob);
    const rungBefore = await bob.incomingCount();
    const { id: carolId } = await carol.call('e-bob');
    await assertEnded(carol, carolId, 'busy');
    assert.equal(await bob.incomingCount(), rungBefore, 'bob was not rung');
    assert.equal((await alice.info(id)).state, 'active');
    assert.equal((await bob.info(id)).state, 'active');
    await assertMediaFlows(alice, id);
    await assertMediaFlows(bob, id);
    await bob.hangup(id);
    await assertEnded(alice, id, 'completed');
    await assertEnded(bob, id, 'completed');
    assert.equal((await record(carolId)).outcome, 'busy');
    assert.equal((await record(id)).outcome, 'completed');
    await closeDevices(alice, bob, carol);
  }));

  it('(f) two devices of the callee accept at once: exactly one wins', { timeout: 90000 }, () => guarded(async () => {
    const alice = await openDevice('f-alice');
    const bob1 = await openDevice('f-bob');
    const bob2 = await openDevice('f-bob');
    assert.notEqual(bob1.device, bob2.device, 'two devices of one user');
    const { id } = await alice.call('f-bob');
    await bob1.waitIncoming();
    await bob2.waitIncoming();
    const results = await Promise.all([bob1.accept(id), bob2.accept(id)]);
    console.log(`accepts: ${show(results)}`);
    assert.equal(results.filter((r) => r.ok).length, 1, `exactly one accept succeeds: ${show(results)}`);
    const [live, loser] = results[0].ok ? [bob1, bob2] : [bob2, bob1];
    await assertEnded(loser, id, 'answered-elsewhere');
    await alice.waitState(id, 'active');
    await live.waitState(id, 'active');
    await assertMediaFlows(live, id);
    await alice.hangup(id);
    await assertEnded(alice, id, 'completed');
    await assertEnded(live, id, 'completed');
    const rec = await record(id);
    assert.equal(rec.outcome, 'completed');
    assert.equal(rec.answered_device, live.device);
    await closeDevices(alice, bob1, bob2);
  }));

  it('(g) an intruder\'s offer, answer and candidate are refused; the call goes on', { timeout: 90000 }, () => guarded(async () => {
    const alice = await openDevice('g-alice');
    const bob = await openDevice('g-bob');
    const id = await establish(alice, bob);
    const mallory = await openDevice('g-mallory');
    const token = signal.mintToken(TOKEN_SECRET, 'g-mallory');
    const raw = await mallory.page.evaluate((u) => window.callsTest.rawOpen(u),
      `${signalUrl()}?token=${token}`);
    assert.equal(raw.first && raw.first.type, 'welcome', `raw socket: ${show(raw)}`);
    // Well-formed messages (RFC 8866 SDP shape), so that only who sends them is wrong.
    const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' +
      'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n';
    const attacks = [
      { type: 'offer', seq: 1, call: id, payload: { sdp, restart: false } },
      { type: 'answer', seq: 2, call: id, payload: { sdp } },
      { type: 'candidate', seq: 3, call: id, payload: { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 } },
      { type: 'hangup', seq: 4, call: id, payload: { reason: 'user-hangup' } },
    ];
    for (const a of attacks) {
      await mallory.page.evaluate(([h, t]) => window.callsTest.rawSend(h, t), [raw.handle, JSON.stringify(a)]);
    }
    const got = await mallory.page.evaluate((h) => window.callsTest.rawTake(h, 4), raw.handle);
    assert.equal(got.error, undefined, show(got));
    for (const [i, a] of attacks.entries()) {
      const m = got.messages[i];
      assert.equal(m.type, 'error', `${a.type}: ${show(m)}`);
      assert.equal(m.seq, a.seq, `${a.type}: ${show(m)}`);
      assert.equal(m.code, 'not-participant', `${a.type}: ${show(m)}`);
    }
    assert.equal((await alice.info(id)).state, 'active');
    assert.equal((await bob.info(id)).state, 'active');
    await assertMediaFlows(alice, id);
    await assertMediaFlows(bob, id);
    await alice.hangup(id);
    await assertEnded(bob, id, 'completed');
    assert.equal((await record(id)).outcome, 'completed');
    await closeDevices(alice, bob, mallory);
  }));

  it('(h) the callee\'s signaling is cut and resumes within the grace period', { timeout: 90000 }, () => guarded(async () => {
    const proxy = await signal.startTcpProxy(server.httpPort);
    proxies.add(proxy);
    const alice = await openDevice('h-alice');
    const bob = await openDevice('h-bob', { proxy });
    const id = await establish(alice, bob);
    assert.equal(proxy.connections(), 1, 'bob signals through the proxy');
    proxy.sever(1500);
    const s = await bob.waitStates(id, ['active', 'reconnecting', 'active']);
    console.log(`bob after the cut: ${show(s)}`);
    assert.equal(s.state, 'active');
    const a = await alice.waitEvents(id, ['peer-reconnecting', 'peer-resumed']);
    assert.equal(a.state, 'active', `alice: ${show(a)}`);
    await assertMediaFlows(alice, id);
    await assertMediaFlows(bob, id);
    assert.deepEqual(await bob.clientEvents(), [], 'no disconnect and no error on bob\'s client');
    await bob.hangup(id);  // through the resumed session
    await assertEnded(alice, id, 'completed');
    await assertEnded(bob, id, 'completed');
    const rec = await record(id);
    assert.equal(rec.outcome, 'completed');
    assert.ok(rec.reconnects >= 1, `reconnects: ${rec.reconnects}`);
    await closeDevices(alice, bob);
  }));

  it('(i) the callee\'s signaling is cut beyond the grace period', { timeout: 90000 }, () => guarded(async () => {
    const proxy = await signal.startTcpProxy(server.httpPort);
    proxies.add(proxy);
    const alice = await openDevice('i-alice');
    const bob = await openDevice('i-bob', { proxy });
    const id = await establish(alice, bob);
    proxy.sever((GRACE_S + 4) * 1000);
    const endA = await assertEnded(alice, id, 'peer-disconnected');
    assert.equal(endA.by, 'server');
    await assertEnded(bob, id, 'peer-disconnected');
    const events = await bob.clientEvents();
    assert.ok(events.some((e) => e.type === 'disconnected'), `bob's client: ${show(events)}`);
    assert.equal((await record(id)).outcome, 'peer-disconnected');
    await closeDevices(alice, bob);
  }));

  it('(j) invalid input is refused message by message; bad tokens get 401; calls still work', { timeout: 90000 }, () => guarded(async () => {
    const eve = await openDevice('j-eve');
    const token = signal.mintToken(TOKEN_SECRET, 'j-eve');
    const raw = await eve.page.evaluate((u) => window.callsTest.rawOpen(u), `${signalUrl()}?token=${token}`);
    assert.equal(raw.first && raw.first.type, 'welcome', show(raw));
    const bad = [
      '{', 'not json', '[]', '42', '"invite"', 'null', '{}',
      '{"type": 5, "seq": 1}',
      '{"type": "invite"}',
      '{"type": "invite", "seq": "2", "payload": {"to": "j-bob", "media": {"audio": true, "video": false}}}',
      '{"type": "invite", "seq": 3, "payload": {"to": 5, "media": {"audio": true, "video": false}}}',
      '{"type": "invite", "seq": 4, "payload": {"to": "j-bob", "media": {"audio": "yes"}}}',
      '{"type": "invite", "seq": 5, "payload": []}',
      '{"type": "no-such-type", "seq": 6}',
      '{"type": "offer", "seq": 7, "call": "not-a-call-id", "payload": {"sdp": "v=0"}}',
      '{"type": "offer", "seq": 8, "call": "c_AAAAAAAAAAAAAAAAAAAAAA", "payload": {"sdp": 17}}',
      '{"type": "candidate", "seq": 9, "call": "c_AAAAAAAAAAAAAAAAAAAAAA", "payload": {"candidate": ["x"]}}',
      '{"type": "hangup", "seq": 10, "call": "c_AAAAAAAAAAAAAAAAAAAAAA", "payload": {"reason": 3}}',
      '{"type": "invite", "seq": -1, "payload": {"to": "j-bob", "media": {"audio": true, "video": false}}}',
      '{"type": "invite", "seq": 1.5, "payload": {"to": "j-bob", "media": {"audio": true, "video": false}}}',
      '{"type": "invite", "seq": 9007199254740993, "payload": {"to": "j-bob", "media": {"audio": true, "video": false}}}',
      '\u0000\u0001\u0002',
    ];
    for (const text of bad) {
      await eve.page.evaluate(([h, t]) => window.callsTest.rawSend(h, t), [raw.handle, text]);
    }
    const got = await eve.page.evaluate(([h, n]) => window.callsTest.rawTake(h, n), [raw.handle, bad.length]);
    assert.equal(got.error, undefined, show(got));
    assert.equal(got.closed, null, `the socket stays open through invalid messages: ${show(got)}`);
    for (const [i, text] of bad.entries()) {
      const m = got.messages[i];
      assert.equal(m.type, 'error', `${JSON.stringify(text)}: ${show(m)}`);
      assert.equal(m.code, 'invalid', `${JSON.stringify(text)}: ${show(m)}`);
      assert.ok(m.reason, `${JSON.stringify(text)}: a reason: ${show(m)}`);
    }
    // Over calls.max_message_bytes: the connection closes with 1009 (RFC 6455 section 7.4.1).
    const big = JSON.stringify({ type: 'invite', seq: 11, payload: { to: 'j-bob', pad: 'x'.repeat(70000) } });
    await eve.page.evaluate(([h, t]) => window.callsTest.rawSend(h, t), [raw.handle, big]);
    const closed = await eve.page.evaluate((h) => window.callsTest.rawClosed(h), raw.handle);

    // Upgrades without a valid token are refused before the upgrade.
    const refused = {
      'no token': '/api/v1/signal',
      'empty token': '/api/v1/signal?token=',
      'expired': `/api/v1/signal?token=${signal.mintToken(TOKEN_SECRET, 'j-eve', { ttl: -60 })}`,
      'wrong signature': `/api/v1/signal?token=${signal.mintToken(`${TOKEN_SECRET}-other`, 'j-eve')}`,
      'alg none': `/api/v1/signal?token=${signal.mintToken(TOKEN_SECRET, 'j-eve', { alg: 'none' })}`,
      'no sub': `/api/v1/signal?token=${signal.mintToken(TOKEN_SECRET, 'j-eve', { sub: null })}`,
      'garbage': '/api/v1/signal?token=not.a.jwt',
      'unknown resume': '/api/v1/signal?resume=nosuchresumetoken&last_sseq=0',
    };
    for (const [what, target] of Object.entries(refused)) {
      const r = await signal.upgradeRequest(server.httpPort, target);
      assert.equal(r.status, 401, `${what}: ${r.status} ${r.body}`);
      assert.ok(JSON.parse(r.body).error, `${what}: {"error": ...} body: ${r.body}`);
    }
    const ok = await signal.upgradeRequest(server.httpPort, `/api/v1/signal?token=${signal.mintToken(TOKEN_SECRET, 'j-probe')}`);
    assert.equal(ok.status, 101, 'a valid token upgrades');

    // And a normal call still completes.
    const alice = await openDevice('j-alice');
    const bob = await openDevice('j-bob');
    const id = await establish(alice, bob);
    await assertMediaFlows(bob, id);
    await bob.hangup(id);
    await assertEnded(alice, id, 'completed');
    assert.equal((await record(id)).outcome, 'completed');

    // The oversized message's close code, checked last so that the rest is checked either way.
    assert.equal(closed.closed && closed.closed.code, 1009, show(closed));
    await closeDevices(eve, alice, bob);
  }));
});
