// Headless Chromium through callrelay over IPv6: iceServers `turn:[::1]:PORT?transport=udp`
// (the server listens on 127.0.0.1 and [::1]), relay-only, a data-channel exchange between two
// peer connections whose selected pairs are relay/relay, and the server must have seen the
// clients on [::1]. One short test (a few seconds) to keep browser time low. Run with
// `node --test` (node 18 or later); callrelay only.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');

const CHROMIUM = process.env.CALLRELAY_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection',
];

function show(value) {
  return JSON.stringify(value, null, 1);
}

describe('Chromium through callrelay over turn:[::1] (UDP)', {
  skip: process.env.CALLRELAY_TEST_SERVER === 'coturn' ? 'callrelay only' : false,
}, () => {
  let workDir;
  let server;
  let web;
  let context;
  let page;
  let failed = false;

  before(async () => {
    const { chromium } = harness.loadPlaywright();
    assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}`);
    workDir = harness.makeWorkDir();
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, { ipv6: true });
    context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
    });
    page = await context.newPage();
    page.on('console', (msg) => console.log(`[page] ${msg.text()}`));
    await page.goto(web.url);
    await page.waitForFunction(() => window.relayTest !== undefined, null, { timeout: 10000 });
  });

  after(async () => {
    if (context) await context.close();
    if (web) await web.close();
    if (server) {
      const wasAlive = server.alive();
      await server.stop();
      if (failed || !wasAlive) console.log(`---- callrelay log ----\n${server.log().slice(-8000)}`);
      assert.ok(wasAlive, `callrelay died during the test: ${show(server.exitStatus())}`);
      assert.doesNotMatch(server.log(), /AddressSanitizer|LeakSanitizer|runtime error:/, 'sanitizer report in the server log');
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('data channel exchange over relay/relay via turn:[::1]', { timeout: 60000 }, async () => {
    try {
      const cred = harness.mintCredential('browser-v6', 3600);
      const servers = [{ urls: [`turn:[::1]:${server.udp6Port}?transport=udp`], username: cred.username, credential: cred.credential }];
      const r = await page.evaluate(([s, n]) => window.relayTest.runDataChannel(s, n), [servers, 20]);
      console.log(`data channel over [::1]: ${show(r)}`);
      assert.equal(r.error, undefined, `page error: ${r.error}; ${show(r.info)}`);
      assert.equal(r.receivedByB, 20, 'messages received by b');
      assert.equal(r.echoedToA, 20, 'echoes received by a');
      for (const [who, pair] of [['a', r.pairA], ['b', r.pairB]]) {
        assert.ok(pair, `peer ${who}: no selected candidate pair`);
        assert.equal(pair.local, 'relay', `peer ${who}: local candidate not relay: ${show(pair)}`);
        assert.equal(pair.remote, 'relay', `peer ${who}: remote candidate not relay: ${show(pair)}`);
      }
      // The allocations were made by clients that reached the server on [::1]: stopping the
      // server ends them, and each ended allocation is logged with its client and server.
      const alive = server.alive();
      await server.stop();
      const log = server.log();
      const done = server;
      server = null;  // stopped and checked here, not in after()
      assert.ok(alive, `callrelay died during the test: ${show(done.exitStatus())}`);
      assert.doesNotMatch(log, /AddressSanitizer|LeakSanitizer|runtime error:/, 'sanitizer report in the server log');
      const ended = log.split('\n').filter((l) => l.includes('"event":"allocation_ended"'));
      assert.ok(ended.length >= 2, `fewer than two allocations logged:\n${log.slice(-4000)}`);
      for (const line of ended) {
        assert.match(line, /"client":"\[::1\]:\d+"/, `allocation not made over [::1]: ${line}`);
        assert.match(line, new RegExp(`"server":"\\[::1\\]:${done.udp6Port}"`), `not on the [::1] listener: ${line}`);
      }
    } catch (err) {
      failed = true;
      throw err;
    }
  });
});
