// Headless Chromium through callrelay over TURN over TCP (turn:127.0.0.1:PORT?transport=tcp)
// and TURN over TLS (turns:localhost:PORT?transport=tcp, a self-signed certificate made at test
// time and trusted through --ignore-certificate-errors-spki-list): the relay-only data-channel
// exchange over each, and a short audio+video call over TLS. The relay candidates must use
// the stream transport (relayProtocol), and the server log must show the connections.
// Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');

const CHROMIUM = process.env.CALLRELAY_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

function show(value) {
  return JSON.stringify(value, null, 1);
}

/// A self-signed P-256 certificate for localhost; returns { cert, key, spki }.
function makeCertificate(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  childProcess.execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
    'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert],
  { stdio: 'pipe' });
  const spki = childProcess.execSync(`openssl x509 -in '${cert}' -pubkey -noout | ` +
    'openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64').toString().trim();
  return { cert, key, spki };
}

function assertRelayPair(pair, who, protocol) {
  assert.ok(pair, `${who}: no selected candidate pair`);
  assert.equal(pair.local, 'relay', `${who}: local candidate not relay: ${show(pair)}`);
  assert.equal(pair.remote, 'relay', `${who}: remote candidate not relay: ${show(pair)}`);
  assert.equal(pair.relayProtocol, protocol, `${who}: relay reached over ${pair.relayProtocol}: ${show(pair)}`);
}

describe('Chromium through callrelay over TURN over TCP and TLS', {
  skip: process.env.CALLRELAY_TEST_SERVER === 'coturn' ? 'stream tests run against callrelay only' : false,
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
    const certificate = makeCertificate(workDir);
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, {
      streams: { cert: certificate.cert, key: certificate.key }, logLevel: 'debug',
    });
    context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
      executablePath: CHROMIUM, headless: true,
      args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${certificate.spki}`],
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

  async function guarded(fn) {
    try {
      await fn();
    } catch (err) {
      failed = true;
      throw err;
    }
  }

  const variants = [
    ['turn: over TCP', 'tcp', () => `turn:127.0.0.1:${server.tcpPort}?transport=tcp`],
    ['turns: over TLS', 'tls', () => `turns:localhost:${server.tlsPort}?transport=tcp`],
  ];
  for (const [name, protocol, url] of variants) {
    it(`data channel exchange over relay/relay, ${name}`, { timeout: 60000 }, () => guarded(async () => {
      const cred = harness.mintCredential(`browser-${protocol}`, 3600);
      const servers = [{ urls: [url()], username: cred.username, credential: cred.credential }];
      const r = await page.evaluate(([s, n]) => window.relayTest.runDataChannel(s, n), [servers, 20]);
      console.log(`data channel ${name}: ${show(r)}`);
      assert.equal(r.error, undefined, `page error: ${r.error}; ${show(r.info)}`);
      assert.equal(r.receivedByB, 20, 'messages received by b');
      assert.equal(r.echoedToA, 20, 'echoes received by a');
      assertRelayPair(r.pairA, 'peer a', protocol);
      assertRelayPair(r.pairB, 'peer b', protocol);
      assert.match(server.log(), new RegExp(`${protocol} 127\\.0\\.0\\.1:\\d+: connected to`),
        `no ${protocol} connection in the server log`);
    }));
  }

  it('3-second fake audio+video call over relay/relay, turns: over TLS', { timeout: 60000 }, () => guarded(async () => {
    const cred = harness.mintCredential('browser-tls-call', 3600);
    const servers = [{ urls: [`turns:localhost:${server.tlsPort}?transport=tcp`], username: cred.username, credential: cred.credential }];
    const r = await page.evaluate(([s, secs]) => window.relayTest.runCall(s, secs), [servers, 3]);
    console.log(`call over TLS: ${show(r)}`);
    assert.equal(r.error, undefined, `page error: ${r.error}; ${show(r.info)}`);
    assertRelayPair(r.pairA, 'peer a', 'tls');
    assertRelayPair(r.pairB, 'peer b', 'tls');
    for (const [who, inbound] of [['a', r.inboundA], ['b', r.inboundB]]) {
      for (const kind of ['audio', 'video']) {
        assert.ok(inbound[kind], `peer ${who}: no inbound-rtp ${kind} stats`);
        assert.ok(inbound[kind].bytesReceived > 0, `peer ${who}: no ${kind} bytes received: ${show(inbound)}`);
      }
    }
    assert.match(server.log(), /tls 127\.0\.0\.1:\d+: TLSv1\.[23] .*SNI localhost/, 'no TLS handshake with SNI localhost logged');
  }));
});
