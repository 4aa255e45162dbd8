// Shared by the `callrelay ctl` integration tests: a callrelay on loopback (port 0 everywhere,
// its own state directory), `callrelay ctl` run as a child process, a relayed UDP flow and a
// call made over signaling.
'use strict';

const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { TurnClient, restPassword } = require('../ops/turn_udp.js');
const { waitFor: opsWaitFor } = require('../ops/ops_lib.js');
const { SignalClient, mintToken, expectAck } = require('../lib/signal_client.js');
const { logConfigLine, lineRe, listeningPort, checkJsonLog } = require('../lib/server_log.js');

const SECRET = 'ctl-test-rest-secret';
const ADMIN_KEY = 'ctl-admin-key-0123456789abcdef';
const APP_KEY = 'ctl-app-key-0123456789abcdef';
const TOKEN_SECRET = 'ctl-token-secret-0123456789abcdef0123456789';

/// ops_lib's poller with this suite's longer defaults (every test here starts a call too).
const waitFor = (what, cond, timeoutMs = 30000, everyMs = 100) =>
  opsWaitFor(what, cond, timeoutMs, everyMs);

/// Starts callrelay with admin and app keys, calls and `lines`; resolves to
/// { dir, configPath, stateDir, udpPort, httpPort, url, log(), stop() }.
async function startServer({ lines = [], scheme = 'http', http = '{listen: "127.0.0.1:0"}' } = {}) {
  const bin = process.env.CALLRELAY_BIN;
  assert.ok(bin && fs.existsSync(bin), 'CALLRELAY_BIN must point to the callrelay binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callrelay-ctl-'));
  const stateDir = path.join(dir, 'state');
  const configPath = path.join(dir, 'callrelay.yaml');
  fs.writeFileSync(configPath, [
    'listen: {udp: ["127.0.0.1:0"]}',
    'relay: {ports: {min: 61000, max: 65000}}',
    'workers: 2',
    `state_dir: ${stateDir}`,
    'realm: callrelay',
    `auth: {secrets: ["${SECRET}"], separator: ":"}`,
    'peers: {allow: ["127.0.0.0/8"]}   # loopback peers: test config only',
    `http: ${http}`,
    'api:',
    `  keys: [{name: ops-admin, key: "${ADMIN_KEY}", admin: true},`,
    `         {name: ops-app, key: "${APP_KEY}"}]`,
    `calls: {token_secret: "${TOKEN_SECRET}"}`,
    logConfigLine('info'),
    ...lines,
  ].join('\n') + '\n');
  const child = spawn(bin, ['--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = null;
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exitPromise = new Promise((r) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    r(exited);
  }));
  await waitFor('callrelay to log "ready"', () => {
    if (exited) throw new Error(`callrelay exited during startup:\n${output}`);
    return lineRe('ready').test(output);
  });
  const udpPort = listeningPort(output, 'udp', '127\\.0\\.0\\.1');
  const httpPort = listeningPort(output, scheme, '127\\.0\\.0\\.1');
  assert.ok(udpPort && httpPort, `no listening lines:\n${output}`);
  return {
    dir, configPath, stateDir, udpPort, httpPort,
    url: `${scheme}://127.0.0.1:${httpPort}`,
    log: () => output,
    async stop() {
      if (!exited) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exitPromise;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      const bad = checkJsonLog(output);
      assert.equal(bad.length, 0,
        `server log lines that are not one JSON object:\n${bad.join('\n')}`);
    },
  };
}

/// A loopback TCP port nobody listens on (bound, then closed).
async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/// Runs `callrelay ctl ARGS...`; resolves to { code, stdout, stderr }. CALLRELAY_ADMIN_KEY is
/// set only when `envKey` is given.
function ctl(args, { envKey, env = {} } = {}) {
  const childEnv = { ...process.env, ...env };
  delete childEnv.CALLRELAY_ADMIN_KEY;
  if (envKey !== undefined) childEnv.CALLRELAY_ADMIN_KEY = envKey;
  return new Promise((resolve) => {
    execFile(process.env.CALLRELAY_BIN, ['ctl', ...args], { env: childEnv, timeout: 60000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (error.code ?? -1) : 0, stdout, stderr });
      });
  });
}

/// `ctl` that must succeed; resolves to its stdout.
async function ctlOk(args, options) {
  const r = await ctl(args, options);
  assert.equal(r.code, 0, `ctl ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/// `ctl --json` that must succeed; resolves to the parsed JSON.
async function ctlJson(args, options) {
  return JSON.parse(await ctlOk(['--json', ...args], options));
}

/// A UDP echo peer on 127.0.0.1: { port, close() }.
async function echoPeer() {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, close: () => sock.close() };
}

/// An allocation of `user` relaying to `peer` through channel 0x4000, sending a packet every
/// 20 ms until stop(): { client, username, received(), stop() }.
async function relayedFlow(server, user, peer) {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${user}`;
  const password = restPassword(SECRET, username);
  const client = new TurnClient('127.0.0.1', server.udpPort, username, password);
  await client.open();
  const a = await client.allocate();
  assert.equal(a.code, 200, `${user}: Allocate answered ${a.code}`);
  assert.equal(await client.channelBind(0x4000, '127.0.0.1', peer.port), 200);
  let received = 0;
  client.onChannelData = () => { ++received; };
  const timer = setInterval(() => client.sendChannelData(0x4000, Buffer.alloc(160, 7)), 20);
  return {
    client, username, received: () => received,
    stop() { clearInterval(timer); client.close(); },
  };
}

/// alice calls bob over signaling until the call is active: { alice, bob, call, close() }.
async function activeCall(server) {
  const ws = `ws://127.0.0.1:${server.httpPort}`;
  const open = (user) => SignalClient.connect(ws, mintToken(TOKEN_SECRET, user), { name: user });
  const [alice, bob] = await Promise.all([open('alice'), open('bob')]);
  const { call } = expectAck(await alice.invite('bob'), 'invite');
  await bob.next('invite', { call });
  expectAck(await bob.ringing(call), 'ringing');
  expectAck(await bob.accept(call), 'accept');
  expectAck(await alice.offer(call), 'offer');
  await bob.next('offer', { call });
  expectAck(await bob.answer(call), 'answer');
  expectAck(await alice.connected(call), 'alice connected');
  expectAck(await bob.connected(call), 'bob connected');
  for (const d of [alice, bob]) await d.next('state', { call, 'payload.state': 'active' }, 15000);
  return { alice, bob, call, close: () => Promise.all([alice.close(), bob.close()]) };
}

module.exports = {
  SECRET, ADMIN_KEY, APP_KEY, TOKEN_SECRET, waitFor, startServer, closedPort, ctl, ctlOk, ctlJson,
  echoPeer, relayedFlow, activeCall,
};
