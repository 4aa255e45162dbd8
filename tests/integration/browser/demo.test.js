// The demo page served by callrelay (/demo/, demo.enabled) in headless Chromium: two users sign
// in, see each other online, the connection check passes over UDP, a relay-only video call is
// answered and hung up, and the end-of-call summary shows. With demo.enabled off, the page and
// its endpoints do not exist. Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');
const { logConfigLine, lineRe, listeningPort } = require('../lib/server_log.js');

const TURN_SECRET = 'demo-test-turn-secret';
const TOKEN_SECRET = 'demo-test-signaling-secret-0123456789abcdef';

/// Starts callrelay with `demo.enabled: demo` on loopback ports; resolves to
/// { httpPort, log(), alive(), stop() } once it logged "ready".
async function startCallrelay(workDir, demo) {
  const bin = process.env.CALLRELAY_BIN;
  assert.ok(bin && fs.existsSync(bin), `CALLRELAY_BIN (${bin}) must name the built callrelay`);
  const dir = fs.mkdtempSync(path.join(workDir, 'server-'));
  const config = path.join(dir, 'callrelay.yaml');
  fs.writeFileSync(config, [
    // Kernel-chosen UDP port and no TCP listener: the TURN URIs (UDP only) are derived from it.
    'listen: {udp: ["127.0.0.1:0"], tcp: []}',
    'relay: {ports: {min: 61000, max: 65000}}',
    'workers: 1',
    `state_dir: ${path.join(dir, 'state')}`,
    `auth: {secrets: ["${TURN_SECRET}"]}`,
    'peers: {allow: ["127.0.0.0/8"]}   # two browsers on this machine: test config only',
    'http: {listen: "127.0.0.1:0"}',
    `calls: {token_secret: "${TOKEN_SECRET}", records: {path: "${path.join(dir, 'calls.sqlite3')}"}}`,
    `demo: {enabled: ${demo}}`,
    logConfigLine('info'),
    '',
  ].join('\n'));
  const child = childProcess.spawn(bin, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = null;
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exit = new Promise((resolve) => child.on('exit', (code) => { exited = code; resolve(); }));
  const deadline = Date.now() + 10000;
  while (!lineRe('ready').test(output)) {
    if (exited !== null) throw new Error(`callrelay exited (${exited}):\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`callrelay not ready within 10 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const httpPort = listeningPort(output, 'http', '127\\.0\\.0\\.1');
  assert.ok(httpPort, `no 'listening http' line:\n${output}`);
  return {
    kind: 'callrelay',
    httpPort,
    log: () => output,
    alive: () => exited === null,
    exitStatus: () => exited,
    async stop() {
      if (exited !== null) return;
      // SIGINT stops at once; SIGTERM would drain while the browsers' allocations live.
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}

describe('the demo page (/demo/) in Chromium', () => {
  let workDir;
  let server;
  let browser;
  let failed = false;
  const guarded = (fn) => harness.guarded(() => { failed = true; }, fn);

  before(async () => {
    workDir = harness.makeWorkDir();
    server = await startCallrelay(workDir, true);
    const { chromium } = harness.loadPlaywright();
    browser = await chromium.launch({
      executablePath: harness.CHROMIUM, headless: true,
      args: [...harness.CHROMIUM_ARGS, ...harness.FAKE_MEDIA_ARGS],
    });
  });

  after(async () => {
    if (browser) await browser.close();
    await harness.teardown({ server, workDir }, failed);
  });

  async function signIn(user) {
    const context = await browser.newContext();
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.log(`[${user}] page error: ${err}`));
    await page.goto(`http://127.0.0.1:${server.httpPort}/demo/`);
    await page.fill('#user', user);
    await page.click('#signin-button');
    await page.waitForSelector('#view-lobby:not([hidden])', { timeout: 10000 });
    assert.equal(await page.textContent('#me-name'), user);
    return page;
  }

  it('warns at startup that the demo is on', () => {
    assert.match(server.log(), /demo: demo\.enabled is on/);
  });

  it('signs in two users who see each other, checks the relay, and makes a relay-only call',
    () => guarded(async () => {
      const alice = await signIn('alice');
      const bob = await signIn('bob');
      // Each sees the other within a few polls.
      await alice.waitForSelector('#people li:has-text("bob")', { timeout: 10000 });
      await bob.waitForSelector('#people li:has-text("alice")', { timeout: 10000 });
      // The connection check: UDP reaches the relay; TCP and TLS are not offered here.
      await alice.waitForSelector('#checks li[data-transport="udp"].ok', { timeout: 30000 });
      assert.match(await alice.textContent('#checks li[data-transport="udp"] .state'), /^OK · /);
      assert.equal(await alice.textContent('#checks li[data-transport="tcp"] .state'),
        'Not offered');
      assert.equal(await alice.isChecked('#relay-only'), true, 'relay only is on by default');

      await alice.click('#people li:has-text("bob") button.primary');
      await bob.waitForSelector('#incoming:not([hidden])', { timeout: 10000 });
      assert.equal(await bob.textContent('#incoming-title'), 'alice is calling');
      await bob.click('#accept');
      for (const page of [alice, bob]) {
        await page.waitForFunction(
          () => document.getElementById('bar-state').textContent === 'Connected', null,
          { timeout: 20000 });
      }
      await alice.click('#hangup');
      for (const page of [alice, bob]) {
        await page.waitForSelector('#summary:not([hidden])', { timeout: 10000 });
        assert.match(await page.textContent('#summary-list'), /Completed/);
      }
      await alice.context().close();
      await bob.context().close();
    }));
});

describe('demo.enabled off', () => {
  it('has neither the page nor its endpoints', async () => {
    const workDir = harness.makeWorkDir();
    const server = await startCallrelay(workDir, false);
    try {
      const base = `http://127.0.0.1:${server.httpPort}`;
      assert.equal((await fetch(`${base}/demo/`)).status, 404);
      const token = await fetch(`${base}/demo/api/token`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"user":"eve"}',
      });
      assert.equal(token.status, 404);
      assert.equal((await fetch(`${base}/demo/api/online`)).status, 404);
      assert.doesNotMatch(server.log(), /demo: demo\.enabled is on/);
    } finally {
      await harness.teardown({ server, workDir }, false);
    }
  });
});
