// Shared by the operations tests: a callrelay process on loopback (port 0 everywhere, the
// "listening ..." lines parsed), a UDP echo peer, HTTP calls, and polling with a deadline.
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { logConfigLine, lineRe, listeningPort, checkJsonLog } = require('../lib/server_log.js');

const SECRET = 'opstestsecret';
const REALM = 'callrelay';
const ADMIN_KEY = 'ops-admin-key-0123456789abcdef';
const APP_KEY = 'ops-app-key-0123456789abcdef';

/// Polls `cond` (sync or async) every `everyMs` until it returns a truthy value, which is
/// returned; throws `what` after `timeoutMs` (generous: the machine may be loaded).
async function waitFor(what, cond, timeoutMs = 20000, everyMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/// Starts callrelay on a config of the shared test settings plus `lines` (`auth`: more keys of
/// the auth: mapping, like ", strict_expiry: true"); resolves to
/// { udpPort, httpPort, child, log(), exited(), waitExit(ms), signal(name), stop() }.
async function startServer({ lines = [], auth = '' } = {}) {
  const bin = process.env.CALLRELAY_BIN;
  assert.ok(bin && fs.existsSync(bin), 'CALLRELAY_BIN must point to the callrelay binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'callrelay-ops-'));
  const config = [
    'listen: {udp: ["127.0.0.1:0"]}',
    'relay: {ports: {min: 61000, max: 65000}}',
    'workers: 2',
    `state_dir: ${dir}`,
    `realm: ${REALM}`,
    `auth: {secrets: ["${SECRET}"], separator: ":"${auth}}`,
    'peers: {allow: ["127.0.0.0/8"]}   # loopback peers: test config only',
    'http: {listen: "127.0.0.1:0"}',
    'api:',
    `  keys: [{name: ops-admin, key: "${ADMIN_KEY}", admin: true},`,
    `         {name: ops-app, key: "${APP_KEY}"}]`,
    logConfigLine('info'),
    ...lines,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'callrelay.yaml'), config + '\n');
  const child = spawn(bin, ['--config', path.join(dir, 'callrelay.yaml')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exitInfo = null;
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exitInfo = { code, signal };
    resolve(exitInfo);
  }));
  await waitFor('callrelay to log "ready"', () => {
    if (exitInfo) throw new Error(`callrelay exited during startup:\n${output}`);
    return lineRe('ready').test(output);
  });
  const udp = listeningPort(output, 'udp', '127\\.0\\.0\\.1');
  const http = listeningPort(output, 'http', '127\\.0\\.0\\.1');
  assert.ok(udp && http, `no listening lines:\n${output}`);
  return {
    udpPort: udp,
    httpPort: http,
    child,
    log: () => output,
    exited: () => exitInfo,
    signal: (name) => child.kill(name),
    /// Resolves to { code, signal } once the process exits; null after `ms`.
    waitExit: (ms) => Promise.race(
      [exitPromise, new Promise((r) => setTimeout(() => r(null), ms))]),
    async stop() {
      if (!exitInfo) {
        child.kill('SIGINT');  // at once, whatever is live
        const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exitPromise;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      // log.format json (CALLRELAY_TEST_LOG_FORMAT): every line one JSON object.
      const bad = checkJsonLog(output);
      assert.equal(bad.length, 0, `server log lines that are not one JSON object:\n${bad.join('\n')}`);
    },
  };
}

/// A UDP echo peer on 127.0.0.1: { port, close() }.
async function echoPeer() {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, close: () => sock.close() };
}

/// An HTTP request to the server: { status, body (parsed JSON when it is) }.
async function http(server, method, urlPath, { key, json } = {}) {
  const headers = {};
  if (key) headers.Authorization = `Bearer ${key}`;
  if (json) headers['Content-Type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${urlPath}`, {
    method, headers, body: json ? JSON.stringify(json) : undefined,
  });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* plain text */ }
  return { status: res.status, body };
}

/// A REST username for `user` valid `ttlS` seconds from now.
function restUsername(user, ttlS = 3600) {
  return `${Math.floor(Date.now() / 1000) + ttlS}:${user}`;
}

/// Number of allocation_ended log lines with `reason`.
function endedCount(server, reason) {
  const re = new RegExp(`"event":"allocation_ended".*"reason":"${reason}"`, 'g');
  return (server.log().match(re) || []).length;
}

module.exports = {
  SECRET, REALM, ADMIN_KEY, APP_KEY, waitFor, startServer, echoPeer, http, restUsername,
  endedCount,
};
