// Headless Chromium through callrelay over TURN over TCP (turn:127.0.0.1:PORT?transport=tcp)
// and TURN over TLS (turns:localhost:PORT?transport=tcp, a self-signed certificate made at test
// time and trusted through --ignore-certificate-errors-spki-list): the relay-only data-channel
// exchange over each, and a short audio+video call over TLS, once with a TLS record per frame
// (the default) and once with frames packed into records (tls.records: packed), which the
// browser must reframe from the stream as RFC 8656 section 12.5 asks. The relay candidates must use
// the stream transport (relayProtocol), and the server log must show the connections.
// Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');

const { show } = harness;

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

/// Resolves once the server's log matches `pattern`; fails with `message` (and the log) after 5 s.
async function waitForLog(server, pattern, message) {
  const deadline = Date.now() + 5000;
  while (!pattern.test(server.log())) {
    if (Date.now() > deadline) assert.match(server.log(), pattern, message);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Chromium through callrelay over TURN over TCP and TLS', {
  skip: process.env.CALLRELAY_TEST_SERVER === 'coturn' ? 'stream tests run against callrelay only' : false,
}, () => {
  let workDir;
  let server;
  let packedServer;  // tls.records: packed
  let web;
  let context;
  let page;
  let failed = false;

  before(async () => {
    workDir = harness.makeWorkDir();
    const certificate = makeCertificate(workDir);
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, {
      streams: { cert: certificate.cert, key: certificate.key }, logLevel: 'debug',
    });
    packedServer = await harness.startServer(path.join(workDir, 'packed'), {
      streams: { cert: certificate.cert, key: certificate.key, records: 'packed' }, logLevel: 'debug',
    });
    ({ context, page } = await harness.openTestPage(workDir, web.url,
      [...harness.FAKE_MEDIA_ARGS, `--ignore-certificate-errors-spki-list=${certificate.spki}`]));
  });

  after(async () => {
    if (packedServer) await harness.stopServerChecked(packedServer, failed);
    await harness.teardown({ context, web, server, workDir }, failed);
  });

  const guarded = (fn) => harness.guarded(() => { failed = true; }, fn);

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
      harness.assertDataChannelExchange(r, 20, protocol);
      // The server's log reaches us through its writer thread and a pipe: wait for the line.
      await waitForLog(server, new RegExp(`${protocol} 127\\.0\\.0\\.1:\\d+: connected to`),
        `no ${protocol} connection in the server log`);
    }));
  }

  const calls = [
    ['a record per frame', () => server],
    ['frames packed into records', () => packedServer],
  ];
  for (const [records, which] of calls) {
    it(`3-second fake audio+video call over relay/relay, turns: over TLS, ${records}`, { timeout: 60000 }, () => guarded(async () => {
      const s = which();
      const cred = harness.mintCredential('browser-tls-call', 3600);
      const servers = [{ urls: [`turns:localhost:${s.tlsPort}?transport=tcp`], username: cred.username, credential: cred.credential }];
      const r = await page.evaluate(([v, secs]) => window.relayTest.runCall(v, secs), [servers, 3]);
      console.log(`call over TLS, ${records}: ${show(r)}`);
      harness.assertCallMedia(r, 'tls');
      await waitForLog(s, /tls 127\.0\.0\.1:\d+: TLSv1\.[23] .*SNI localhost/, 'no TLS handshake with SNI localhost logged');
    }));
  }
});
