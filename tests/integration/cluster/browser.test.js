// A relay-only call in Chromium between two users on different callrelay instances (A and B),
// with a third (C) on the same Redis and PostgreSQL: each user is a page in its own context of
// ONE Chromium, driving the SDK. The call is set up across A and B, Redis restarts while it is
// active (media keeps flowing, signaling recovers: the hang-up from B reaches the call's owner
// A), and its record, with the relay's bytes both ways, is read from C.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('../browser/harness.js');
const signal = require('../browser/signal.js');
const { logConfigLine, lineRe, listeningPort } = require('../lib/server_log.js');

const TOKEN_SECRET = 'cluster-browser-test-signaling-secret-0123456789';
const API_KEY = 'cluster-browser-test-api-key-0123456789';
const MEDIA = { audio: true, video: true, relayOnly: true };
const show = harness.show;
const REDIS = path.join(__dirname, '..', 'redis', 'redis_server.sh');
const PG = path.join(__dirname, '..', 'postgres', 'pg_server.sh');

/// Starts callrelay instance `name` in cluster mode; resolves to { name, httpPort, log(), stop() }.
async function startInstance(workDir, name, urls, origin) {
  const dir = path.join(workDir, name);
  fs.mkdirSync(path.join(dir, 'state'), { recursive: true });
  const config = path.join(dir, 'callrelay.yaml');
  fs.writeFileSync(config, [
    // Kernel-chosen UDP port and no TCP listener: the TURN URIs (UDP only) are derived from it.
    'listen: {udp: ["127.0.0.1:0"], tcp: []}',
    'relay: {ports: {min: 61000, max: 65000}}',
    'workers: 2',
    `state_dir: ${path.join(dir, 'state')}`,
    'realm: callrelay',
    'auth: {secrets: ["testsecret"], separator: ":"}',
    'peers: {allow: ["127.0.0.0/8", "::1/128"]}   # loopback peers: test config only',
    logConfigLine('info'),
    'http: {listen: "127.0.0.1:0"}',
    'api:',
    `  keys: [{name: cluster-test, key: "${API_KEY}", max_ttl: 3600, allowed_origins: ["${origin}"]}]`,
    `calls: ${JSON.stringify({ enabled: true, token_secret: TOKEN_SECRET, grace_s: 5, ring_timeout_s: 30, credential_ttl_s: 600 })}`,
    `cluster: ${JSON.stringify({ instance_id: `relay-${name}`, postgres_url: urls.pg, redis_url: urls.redis })}`,
    '',
  ].join('\n'));
  const child = childProcess.spawn(process.env.CALLRELAY_BIN, ['--config', config],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = null;
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exit = new Promise((r) => child.on('exit', (code, sig) => { exited = { code, sig }; r(); }));
  for (const deadline = Date.now() + 10000; !lineRe('ready').test(output);) {
    if (exited || Date.now() > deadline) throw new Error(`instance ${name} did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const httpPort = listeningPort(output, 'http', '127\\.0\\.0\\.1');
  return {
    name, httpPort, log: () => output, alive: () => exited === null,
    async stop() {
      if (exited) return;
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    },
  };
}

const subscribed = (inst) => (inst.log().match(/subscribed to its signaling channel/g) || []).length;

describe('a call across callrelay instances in Chromium (Redis, PostgreSQL)', () => {
  let workDir;
  let web;
  let browser;
  let failed = false;
  const inst = {};
  const contexts = [];

  before(async () => {
    assert.ok(process.env.CALLRELAY_BIN, 'CALLRELAY_BIN is not set');
    workDir = harness.makeWorkDir();
    if (process.getuid() === 0) fs.chmodSync(workDir, 0o755);
    const urls = {
      pg: childProcess.execFileSync('bash', [PG, 'start', path.join(workDir, 'pg')]).toString().trim(),
      redis: childProcess.execFileSync('bash', [REDIS, 'start', path.join(workDir, 'redis')]).toString().trim(),
    };
    web = await harness.startWebServer();
    for (const n of ['a', 'b', 'c']) inst[n] = await startInstance(workDir, n, urls, web.origin);
    const { chromium } = harness.loadPlaywright();
    browser = await chromium.launch({
      executablePath: harness.CHROMIUM, headless: true,
      args: [...harness.CHROMIUM_ARGS, ...harness.FAKE_MEDIA_ARGS],
    });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    if (web) await web.close();
    for (const i of Object.values(inst)) {
      const wasAlive = i.alive();
      await i.stop();
      if (failed || !wasAlive) console.log(`---- instance ${i.name} log ----\n${i.log().slice(-6000)}`);
      assert.doesNotMatch(i.log(), /AddressSanitizer|LeakSanitizer|runtime error:/);
    }
    if (workDir) {
      childProcess.spawnSync('bash', [REDIS, 'stop', path.join(workDir, 'redis')]);
      childProcess.spawnSync('bash', [PG, 'stop', path.join(workDir, 'pg')]);
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  });

  async function openDevice(user, instance) {
    const context = await browser.newContext();
    contexts.push(context);
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.on('console', (msg) => console.log(`[${user}] ${msg.text()}`));
    await page.goto(`${web.origin}/calls_test.html`);
    await page.waitForFunction(() => window.callsTest !== undefined, null, { timeout: 10000 });
    await page.evaluate((u) => window.callsTest.load(u), `http://127.0.0.1:${instance.httpPort}/sdk/callrelay.js`);
    const welcome = await page.evaluate(([u, t]) => window.callsTest.connect(u, t),
      [`ws://127.0.0.1:${instance.httpPort}/api/v1/signal`, signal.mintToken(TOKEN_SECRET, user)]);
    assert.equal(welcome.user, user);
    const run = (fn, arg) => page.evaluate(fn, arg);
    return {
      user, device: welcome.device,
      call: (to) => run(([t, o]) => window.callsTest.call(t, o), [to, MEDIA]),
      waitIncoming: () => run(() => window.callsTest.waitIncoming(1)),
      accept: (id) => run(([i, o]) => window.callsTest.accept(i, o), [id, MEDIA]),
      hangup: (id) => run((i) => window.callsTest.hangup(i), id),
      waitState: (id, s) => run(([i, st]) => window.callsTest.waitState(i, st), [id, s]),
      waitEnded: (id) => run((i) => window.callsTest.waitEnded(i), id),
      media: (id) => run((i) => window.callsTest.media(i), id),
    };
  }

  async function assertMediaFlows(device, id) {
    const m = await device.media(id);
    assert.equal(m.error, undefined, `${device.user}: ${show(m)}`);
    harness.assertRelayPair(m.pair, device.user);
  }

  it('alice on A calls bob on B relay-only; Redis restarts mid-call; the record is read from C',
    { timeout: 150000 }, () => harness.guarded(() => { failed = true; }, async () => {
      const alice = await openDevice('x-alice', inst.a);
      const bob = await openDevice('x-bob', inst.b);
      const out = await alice.call('x-bob');
      const inc = await bob.waitIncoming();
      assert.equal(inc.id, out.id, 'bob on B is rung for the call alice made on A');
      assert.equal(inc.from, 'x-alice');
      const accepted = await bob.accept(out.id);
      assert.equal(accepted.ok, true, `accept: ${show(accepted)}`);
      await alice.waitState(out.id, 'active');
      await bob.waitState(out.id, 'active');
      await assertMediaFlows(alice, out.id);
      await assertMediaFlows(bob, out.id);

      // Redis restarts (empty): media goes on through the relay meanwhile.
      const before = { a: subscribed(inst.a), b: subscribed(inst.b) };
      childProcess.execFileSync('bash', [REDIS, 'restart', path.join(workDir, 'redis')]);
      await assertMediaFlows(alice, out.id);
      await assertMediaFlows(bob, out.id);
      for (const deadline = Date.now() + 15000; ;) {
        if (subscribed(inst.a) > before.a && subscribed(inst.b) > before.b) break;
        assert.ok(Date.now() < deadline, 'A and B subscribe again within 15 s of the restart');
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1500));  // a heartbeat writes presence again
      await assertMediaFlows(bob, out.id);

      // Signaling recovered: bob's hang-up on B reaches the owner A, both hear `ended`.
      await bob.hangup(out.id);
      const endA = await alice.waitEnded(out.id);
      const endB = await bob.waitEnded(out.id);
      assert.equal(endA.ended.outcome, 'completed', show(endA));
      assert.equal(endB.ended.outcome, 'completed', show(endB));
      assert.equal(endA.ended.by, 'callee', show(endA));

      let rec = null;
      for (const deadline = Date.now() + 15000; !rec;) {
        const r = await signal.apiRequest(inst.c.httpPort, 'GET', `/api/v1/calls/${out.id}`, API_KEY);
        if (r.status === 200) rec = r.body && r.body.record ? r.body.record : r.body;
        else assert.equal(r.status, 404, r.text);
        assert.ok(rec || Date.now() < deadline, `C has no record of ${out.id} within 15 s`);
        if (!rec) await new Promise((res) => setTimeout(res, 200));
      }
      console.log(`record read from C: ${show(rec)}`);
      assert.equal(rec.outcome, 'completed');
      assert.equal(rec.caller, 'x-alice');
      assert.equal(rec.callee, 'x-bob');
      assert.equal(rec.answered_device, bob.device);
      assert.ok(rec.relay.bytes_caller_to_callee > 0, `relay: ${show(rec.relay)}`);
      assert.ok(rec.relay.bytes_callee_to_caller > 0, `relay: ${show(rec.relay)}`);
    }));
});
