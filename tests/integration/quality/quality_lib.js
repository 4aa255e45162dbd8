// Helpers the call quality tests share (node 18 or later, no npm package): an active call
// between two signaling clients, callrelay's /metrics parsed into samples, the call's record,
// and bounded waits. Every wait polls a condition until a generous deadline; no assertion is on
// how long something took.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const readline = require('node:readline');

const { SignalClient, dummySdp, expectAck } = require('../lib/signal_client.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const show = (v) => JSON.stringify(v);

/// A signaling JWT from callrelay's own endpoint (POST /api/v1/signal/token with the API key).
async function issueToken(httpBase, apiKey, user) {
  const res = await fetch(`${httpBase}/api/v1/signal/token`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, ttl: 600 }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST /api/v1/signal/token for ${user}: ${text}`);
  const body = JSON.parse(text);
  assert.equal(body.user, user, `token for ${user}: ${text}`);
  return body.token;
}

/// Two devices (tokens from the token endpoint) and an active call between them: invite,
/// ringing, accept, offer and answer (SDP with a=rtpmap:111 opus/48000/2, so the relay knows
/// the clock rate), `connected` from both. Resolves to { caller, callee, call, callerIce,
/// calleeIce } (the call-scoped ice_servers each side was given).
async function activeCall(httpBase, apiKey, callerUser, calleeUser, media = { audio: true, video: false }) {
  const wsBase = httpBase.replace(/^http/, 'ws');
  const open = async (user) => SignalClient.connect(wsBase, await issueToken(httpBase, apiKey, user),
    { name: user });
  const caller = await open(callerUser);
  const callee = await open(calleeUser);
  const { call } = expectAck(await caller.invite(calleeUser, media), 'invite');
  const invite = await callee.next('invite', { call });
  expectAck(await callee.ringing(call), 'ringing');
  expectAck(await callee.accept(call, media), 'accept');
  const accepted = await caller.next('accepted', { call });
  expectAck(await caller.offer(call, dummySdp('offer')), 'offer');
  await callee.next('offer', { call });
  expectAck(await callee.answer(call, dummySdp('answer')), 'answer');
  await caller.next('answer', { call });
  expectAck(await caller.connected(call), 'caller connected');
  expectAck(await callee.connected(call), 'callee connected');
  for (const d of [caller, callee]) await d.next('state', { call, 'payload.state': 'active' });
  return {
    caller, callee, call,
    callerIce: accepted.payload.ice_servers, calleeIce: invite.payload.ice_servers,
  };
}

/// The UDP TURN server of an ice_servers list: { host, port, username, credential }.
function udpTurnServer(iceServers) {
  assert.ok(Array.isArray(iceServers) && iceServers.length > 0, `ice_servers: ${show(iceServers)}`);
  for (const s of iceServers) {
    for (const url of [].concat(s.urls)) {
      const m = /^turn:(\d+\.\d+\.\d+\.\d+):(\d+)(\?transport=udp)?$/.exec(url);
      if (m) return { host: m[1], port: Number(m[2]), username: s.username, credential: s.credential };
    }
  }
  assert.fail(`no turn: UDP URI on an IPv4 address in ${show(iceServers)}`);
}

const children = new Set();  // killed by killChildren() when a test fails

/// Kills (SIGKILL) every child process started here that is still running.
function killChildren() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/// Runs `integ_tool rtp-stream` on turn ({ host, port, username, credential }) with args
/// [SECONDS, SKIP_EVERY, JITTER_MS, PEER_DELAY_MS, CLIENT_DELAY_MS, HOLD_SECONDS]; returns
/// { child, next(prefix, timeoutMs), exited() }: next resolves to the first stdout line
/// starting with prefix (already seen or still to come), exited to { code, signal }.
function startRtpStream(tool, turn, args) {
  const child = childProcess.spawn(tool, ['rtp-stream', turn.host, String(turn.port),
    turn.username, turn.credential, ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const seen = [];
  const waiters = [];
  let exit = null;
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exit = { code, signal };
    for (const w of waiters.splice(0)) {
      w.reject(new Error(`rtp-stream exited ${show(exit)} before '${w.prefix}'`));
    }
    resolve(exit);
  }));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    console.error(`[rtp-stream] ${line}`);
    seen.push(line);
    for (let i = waiters.length - 1; i >= 0; --i) {
      if (line.startsWith(waiters[i].prefix)) waiters.splice(i, 1)[0].resolve(line);
    }
  });
  const next = (prefix, timeoutMs) => new Promise((resolve, reject) => {
    const found = seen.find((l) => l.startsWith(prefix));
    if (found) return resolve(found);
    if (exit) return reject(new Error(`rtp-stream exited ${show(exit)} before '${prefix}'`));
    const timer = setTimeout(
      () => reject(new Error(`no '${prefix}' from rtp-stream within ${timeoutMs} ms`)), timeoutMs);
    waiters.push({ prefix, resolve: (l) => { clearTimeout(timer); resolve(l); }, reject });
  });
  return { child, next, exited: () => exitPromise };
}

/// Parses the Prometheus text format into [{ name, labels, value }] (comments skipped; label
/// values unescaped).
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[3] || '')) !== null) {
      labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

async function scrape(httpBase) {
  const res = await fetch(`${httpBase}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics: ${res.status}`);
  return parseMetrics(text);
}

/// The samples of `name` whose labels include `match`.
function select(samples, name, match = {}) {
  return samples.filter((s) => s.name === name &&
    Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/// Sum of the samples of `name` matching `match` (0 if none).
function total(samples, name, match = {}) {
  return select(samples, name, match).reduce((a, s) => a + s.value, 0);
}

/// Polls check() (sync or async) every intervalMs until it returns a value other than
/// undefined; fails with describe() (the last state) after timeoutMs.
async function waitFor(what, check, timeoutMs, describe = () => '', intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`waited ${timeoutMs / 1000} s for ${what}; ${describe()}`);
    await sleep(intervalMs);
  }
}

/// GET /api/v1/calls/{id}, polled until the record exists (records are written asynchronously).
async function fetchRecord(httpBase, apiKey, id) {
  let last = '';
  return waitFor(`the record of ${id}`, async () => {
    const res = await fetch(`${httpBase}/api/v1/calls/${id}`,
      { headers: { Authorization: `Bearer ${apiKey}` } });
    last = `${res.status} ${await res.text()}`;
    if (res.status === 404) return undefined;
    assert.equal(res.status, 200, `GET /api/v1/calls/${id}: ${last}`);
    const body = JSON.parse(last.slice(4));
    const rec = body.record || body;
    assert.equal(rec.id, id, `record: ${last}`);
    return rec;
  }, 15000, () => `last answer ${last}`);
}

/// Asserts |actual - want| <= tolerance, naming what.
function near(actual, want, tolerance, what) {
  assert.ok(typeof actual === 'number' && Number.isFinite(actual),
    `${what}: ${show(actual)} is not a number`);
  assert.ok(Math.abs(actual - want) <= tolerance,
    `${what}: ${actual}, expected ${want} +- ${tolerance}`);
}

/// The keys every QualitySummary (record) has, with their types (README, section Call quality).
const kSummaryKeys = ['intervals', 'mean_mos', 'worst_mos', 'loss_ratio', 'worst_loss_ratio',
  'mean_jitter_ms', 'worst_jitter_ms', 'mean_rtt_ms', 'worst_rtt_ms', 'ms_in_class'];

/// Asserts that `s` is a well-formed summary: every field, MOS within 1..4.5, ratios within
/// 0..1, worst no better than mean, time in classes adding up to at least one interval each.
function checkSummary(s, what) {
  assert.ok(s && typeof s === 'object', `${what}: a summary, got ${show(s)}`);
  const missing = kSummaryKeys.filter((k) => !(k in s));
  assert.deepEqual(missing, [], `${what}: fields missing from ${show(s)}`);
  assert.ok(Number.isInteger(s.intervals) && s.intervals > 0, `${what}: intervals ${show(s)}`);
  for (const k of ['mean_mos', 'worst_mos']) {
    assert.ok(s[k] >= 1 && s[k] <= 4.5, `${what}: ${k} within 1..4.5: ${show(s)}`);
  }
  assert.ok(s.worst_mos <= s.mean_mos + 1e-9, `${what}: worst_mos <= mean_mos: ${show(s)}`);
  for (const k of ['loss_ratio', 'worst_loss_ratio']) {
    assert.ok(s[k] >= 0 && s[k] <= 1, `${what}: ${k} within 0..1: ${show(s)}`);
  }
  assert.ok(s.worst_loss_ratio >= s.loss_ratio - 1e-9, `${what}: worst loss >= loss: ${show(s)}`);
  assert.ok(s.worst_jitter_ms >= s.mean_jitter_ms - 1e-9, `${what}: worst jitter >= mean: ${show(s)}`);
  const classes = s.ms_in_class;
  assert.deepEqual(Object.keys(classes).sort(), ['excellent', 'fair', 'good', 'poor'],
    `${what}: ms_in_class ${show(s)}`);
  const ms = Object.values(classes).reduce((a, v) => a + v, 0);
  assert.ok(Object.values(classes).every((v) => Number.isInteger(v) && v >= 0) && ms > 0,
    `${what}: ms_in_class ${show(s)}`);
}

module.exports = {
  sleep, show, issueToken, activeCall, udpTurnServer, startRtpStream, killChildren, parseMetrics,
  scrape, select, total, waitFor,
  fetchRecord, near, checkSummary,
};
