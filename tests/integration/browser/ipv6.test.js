// Headless Chromium through callrelay over IPv6: iceServers `turn:[::1]:PORT?transport=udp`
// (the server listens on 127.0.0.1 and [::1]), relay-only, a data-channel exchange between two
// peer connections whose selected pairs are relay/relay, and the server must have seen the
// clients on [::1]. One short test (a few seconds) to keep browser time low. Run with
// `node --test` (node 18 or later); callrelay only.
'use strict';

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');

const { show } = harness;

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
    workDir = harness.makeWorkDir();
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, { ipv6: true });
    ({ context, page } = await harness.openTestPage(workDir, web.url));
  });

  after(() => harness.teardown({ context, web, server, workDir }, failed));

  it('data channel exchange over relay/relay via turn:[::1]', { timeout: 60000 }, async () => {
    try {
      const cred = harness.mintCredential('browser-v6', 3600);
      const servers = [{ urls: [`turn:[::1]:${server.udp6Port}?transport=udp`], username: cred.username, credential: cred.credential }];
      const r = await page.evaluate(([s, n]) => window.relayTest.runDataChannel(s, n), [servers, 20]);
      console.log(`data channel over [::1]: ${show(r)}`);
      harness.assertDataChannelExchange(r, 20);
      // The allocations were made by clients that reached the server on [::1]: stopping the
      // server ends them, and each ended allocation is logged with its client and server.
      const done = server;
      server = null;  // stopped and checked here, not in after()
      const log = await harness.stopServerChecked(done);
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
