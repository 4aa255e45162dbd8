// Headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) through the TURN
// server over turn:127.0.0.1:PORT?transport=udp, relay-only: a data-channel exchange, a
// 5-second fake audio+video call with relay/relay selected pairs and media received, and 401
// for a wrong and an expired credential; then (callrelay only) the data-channel exchange again
// with iceServers the page fetched from callrelay's credential endpoint (CORS, API key) and
// passed unchanged to RTCPeerConnection. Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');

// The credential endpoint's API key for the page (test config only; 16 characters at least).
const API_KEY = 'browser-test-api-key-0123456789';
const API_TTL = 600;

const { show } = harness;

function iceServers(port, cred) {
  return [{ urls: [`turn:127.0.0.1:${port}?transport=udp`], username: cred.username, credential: cred.credential }];
}

describe(`Chromium through ${process.env.CALLRELAY_TEST_SERVER || 'callrelay'} (TURN over UDP)`, () => {
  let workDir;
  let server;
  let web;
  let context;
  let page;
  let failed = false;

  before(async () => {
    workDir = harness.makeWorkDir();
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, {
      credentialApi: { key: API_KEY, origin: new URL(web.url).origin },
    });
    ({ context, page } = await harness.openTestPage(workDir, web.url, harness.FAKE_MEDIA_ARGS));
  });

  after(() => harness.teardown({ context, web, server, workDir }, failed));

  // Marks the run failed (to print the server log) and rethrows.
  const guarded = (fn) => harness.guarded(() => { failed = true; }, fn);

  it('data channel exchange over relay/relay', { timeout: 60000 }, () => guarded(async () => {
    const cred = harness.mintCredential('browser-dc', 3600);
    const r = await page.evaluate(([servers, n]) => window.relayTest.runDataChannel(servers, n),
      [iceServers(server.port, cred), 20]);
    console.log(`data channel: ${show(r)}`);
    harness.assertDataChannelExchange(r, 20);
  }));

  it('5-second fake audio+video call over relay/relay', { timeout: 90000 }, () => guarded(async () => {
    const cred = harness.mintCredential('browser-call', 3600);
    const r = await page.evaluate(([servers, s]) => window.relayTest.runCall(servers, s),
      [iceServers(server.port, cred), 5]);
    console.log(`call: ${show(r)}`);
    harness.assertCallMedia(r);
  }));

  for (const [name, cred] of [
    ['wrong credential', () => harness.mintCredential('browser-bad', 3600, 'not-the-secret')],
    ['expired credential', () => harness.mintCredential('browser-old', -3600)],
  ]) {
    it(`${name} fails with 401`, { timeout: 60000 }, () => guarded(async () => {
      const r = await page.evaluate(([servers, ms]) => window.relayTest.runGatherOnly(servers, ms),
        [iceServers(server.port, cred()), 20000]);
      console.log(`${name}: ${show(r)}`);
      assert.equal(r.error, undefined, `page error: ${r.error}`);
      assert.deepEqual(r.candidates.filter((t) => t === 'relay'), [], 'a relay candidate was gathered');
      assert.ok(r.errors.some((e) => e.errorCode === 401), `no icecandidateerror 401: ${show(r.errors)}`);
    }));
  }

  it('data channel with iceServers from the credential endpoint', {
    timeout: 60000,
    skip: process.env.CALLRELAY_TEST_SERVER === 'coturn' ? 'coturn has no credential endpoint' : false,
  }, () => guarded(async () => {
    const user = 'browser-api';
    const url = `http://127.0.0.1:${server.httpPort}/api/v1/turn/credentials?service=turn&username=${user}&ttl=${API_TTL}`;
    const before = Math.floor(Date.now() / 1000);
    const r = await page.evaluate(([u, key, n]) => window.relayTest.runDataChannelFromEndpoint(u, key, n),
      [url, API_KEY, 20]);
    console.log(`data channel, endpoint credentials: ${show({ ...r, response: r.response && r.response.status })}`);
    assert.equal(r.error, undefined, `page error: ${r.error}; ${show(r.response || r.info)}`);
    const body = r.response.body;
    const [expiry, name] = body.username.split(':');
    assert.equal(name, user, `username ${body.username}`);
    assert.ok(Number(expiry) >= before + API_TTL - 1 && Number(expiry) <= before + API_TTL + 60,
      `expiry ${expiry} is not now + ttl ${API_TTL}`);
    assert.equal(body.ttl, API_TTL);
    const uris = [`turn:127.0.0.1:${server.port}?transport=udp`];
    assert.deepEqual(body.uris, uris);
    assert.deepEqual(body.iceServers, [{ urls: uris, username: body.username, credential: body.password }]);
    harness.assertDataChannelExchange(r, 20);
  }));
});
