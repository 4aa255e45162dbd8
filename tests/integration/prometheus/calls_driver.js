// Signaling-only calls against one callrelay, for calls_metrics.sh (node 18 or later, no npm
// package). No media: both devices send `connected`, which the server trusts for the call's
// state.
//
//   node calls_driver.js drive WS_BASE TOKEN_SECRET PAUSE_MS SUMMARY_JSON
//     completed calls (invite, ringing, a pause of PAUSE_MS, accept, offer/answer, candidates,
//     connected from both devices, hang-up), one declined, one cancelled, one missed (the ring
//     timeout), one busy (the callee is in an active call) and an intruder's messages into
//     that active call; every server answer is checked, then all devices close. Writes what
//     happened to SUMMARY_JSON: the calls with their outcomes, the expected counts.
//   node calls_driver.js records HTTP_BASE API_KEY SUMMARY_JSON PAUSE_MS
//     waits (bounded) until GET /api/v1/calls lists every call of the summary, then checks each
//     record's parties, outcome and setup_ms.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');

const { SignalClient, mintToken, expectAck } = require('../lib/signal_client.js');

const kCompleted = 3;
const kWaitMs = 10000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Asserts that `ended` (a server message) reports outcome and by.
function checkEnded(ended, outcome, by, who) {
  assert.equal(ended.payload.outcome, outcome, `${who}: ended ${JSON.stringify(ended)}`);
  assert.equal(ended.payload.by, by, `${who}: ended by ${JSON.stringify(ended)}`);
}

/// Invites `callee` from `caller` and waits until every callee device rings; resolves to the id.
async function ring(caller, callee) {
  const { call } = expectAck(await caller.invite(callee.user), `${caller.name} invite`);
  assert.match(call, /^c_[A-Za-z0-9_-]{22}$/, 'the invite ack names the call');
  const invite = await callee.next('invite', { call });
  assert.equal(invite.payload.from, caller.user);
  expectAck(await callee.ringing(call), `${callee.name} ringing`);
  await caller.next('ringing', { call });
  return call;
}

/// Accept, offer/answer, a candidate each way and both `connected`: the call is active.
async function connect(caller, callee, call) {
  expectAck(await callee.accept(call), `${callee.name} accept`);
  await caller.next('accepted', { call });
  for (const d of [caller, callee]) await d.next('state', { call, 'payload.state': 'connecting' });
  expectAck(await caller.offer(call), 'offer');
  await callee.next('offer', { call });
  expectAck(await callee.answer(call), 'answer');
  await caller.next('answer', { call });
  const cand = 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host';
  expectAck(await caller.candidate(call, cand), 'caller candidate');
  expectAck(await callee.candidate(call, cand), 'callee candidate');
  await callee.next('candidate', { call });
  await caller.next('candidate', { call });
  expectAck(await caller.connected(call), `${caller.name} connected`);
  expectAck(await callee.connected(call), `${callee.name} connected`);
  for (const d of [caller, callee]) await d.next('state', { call, 'payload.state': 'active' });
}

async function hangup(caller, callee, call) {
  expectAck(await caller.hangup(call), 'hangup');
  for (const d of [caller, callee]) {
    checkEnded(await d.next('ended', { call }), 'completed', 'caller', d.name);
  }
}

async function drive(wsBase, secret, pauseMs, summaryPath) {
  const open = async (user) => {
    const c = await SignalClient.connect(wsBase, mintToken(secret, user), { name: user });
    assert.equal(c.user, user, `welcome: ${JSON.stringify(c.welcome)}`);
    return c;
  };
  const [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map(open));
  const calls = [];
  const note = (id, outcome, caller, callee) => calls.push({ id, outcome, caller, callee });

  // Completed calls; the last stays active while carol gets busy and mallory intrudes.
  let intruderMessages = 0;
  for (let i = 0; i < kCompleted; ++i) {
    const call = await ring(alice, bob);
    await sleep(pauseMs); // invite to connected takes at least this long
    await connect(alice, bob, call);
    if (i === kCompleted - 1) {
      const busy = expectAck(await carol.invite('bob'), 'carol invite').call;
      checkEnded(await carol.next('ended', { call: busy }), 'busy', 'server', 'carol');
      note(busy, 'busy', 'carol', 'bob');
      for (const [type, send] of [['hangup', () => mallory.hangup(call)],
        ['connected', () => mallory.connected(call)]]) {
        const reply = await send();
        ++intruderMessages;
        assert.equal(reply.type, 'error', `intruder ${type}: ${JSON.stringify(reply)}`);
        assert.equal(reply.code, 'not-participant', `intruder ${type}: ${JSON.stringify(reply)}`);
        assert.equal(reply.call, call, `intruder ${type}: ${JSON.stringify(reply)}`);
      }
    }
    await hangup(alice, bob, call);
    assert.equal(alice.received('ended').filter((m) => m.call === call).length, 1,
      'the intruder did not end the call');
    note(call, 'completed', 'alice', 'bob');
  }

  const declined = await ring(alice, bob);
  expectAck(await bob.decline(declined, 'not now'), 'decline');
  checkEnded(await alice.next('ended', { call: declined }), 'declined', 'callee', 'alice');
  note(declined, 'declined', 'alice', 'bob');

  const cancelled = await ring(alice, bob);
  expectAck(await alice.cancel(cancelled), 'cancel');
  checkEnded(await bob.next('ended', { call: cancelled }), 'cancelled', 'caller', 'bob');
  note(cancelled, 'cancelled', 'alice', 'bob');

  // Missed: nobody answers within calls.ring_timeout_s (a bounded wait, generous for slow builds).
  const missed = await ring(alice, bob);
  for (const d of [alice, bob]) {
    checkEnded(await d.next('ended', { call: missed }, 60000), 'missed', 'server', d.name);
  }
  note(missed, 'missed', 'alice', 'bob');

  for (const c of [alice, bob, carol, mallory]) {
    const info = await c.close(1000, 'done');
    assert.equal(info.clean, true, `${c.name}: close handshake ${JSON.stringify(info)}`);
  }
  const counts = {
    completed: kCompleted, declined: 1, cancelled: 1, missed: 1, busy: 1, failed: 0, peer_disconnected: 0,
  };
  const summary = { calls, counts, started: calls.length, answered: kCompleted, intruderMessages };
  fs.writeFileSync(summaryPath, JSON.stringify(summary, null, 1));
  console.error(`driven: ${JSON.stringify(counts)}, ${intruderMessages} intruder messages`);
}

async function records(httpBase, apiKey, summaryPath, pauseMs) {
  const summary = JSON.parse(fs.readFileSync(summaryPath, 'utf8'));
  const want = new Map(summary.calls.map((c) => [c.id, c]));
  let listed = [];
  for (let i = 0; i < kWaitMs / 250; ++i) {
    const res = await fetch(`${httpBase}/api/v1/calls?limit=100`,
      { headers: { Authorization: `Bearer ${apiKey}` } });
    const text = await res.text();
    assert.equal(res.status, 200, `GET /api/v1/calls: ${text}`);
    listed = JSON.parse(text).calls;
    if ([...want.keys()].every((id) => listed.some((r) => r.id === id))) break;
    await sleep(250);
  }
  const byId = new Map(listed.map((r) => [r.id, r]));
  for (const [id, c] of want) {
    const r = byId.get(id);
    assert.ok(r, `GET /api/v1/calls lists no record of the ${c.outcome} call ${id} ` +
      `(it lists ${listed.length})`);
    const show = JSON.stringify(r);
    assert.equal(r.outcome, c.outcome, `record of ${id}: ${show}`);
    assert.equal(r.caller, c.caller, `record of ${id}: ${show}`);
    assert.equal(r.callee, c.callee, `record of ${id}: ${show}`);
    if (c.outcome === 'completed') {
      assert.ok(Number.isInteger(r.setup_ms) && r.setup_ms >= pauseMs,
        `setup_ms of ${id} >= ${pauseMs}: ${show}`);
      assert.ok(Number.isInteger(r.duration_ms) && r.duration_ms >= 0, `duration_ms of ${id}: ${show}`);
    } else {
      assert.equal(r.setup_ms, null, `setup_ms of the ${c.outcome} call ${id}: ${show}`);
    }
  }
  assert.equal(listed.length, want.size,
    `GET /api/v1/calls lists ${listed.length} calls, ${want.size} were made`);
  console.error(`records: ${want.size} calls listed with their outcomes and setup times`);
}

const [mode, ...args] = process.argv.slice(2);
const run = mode === 'drive' ? () => drive(args[0], args[1], Number(args[2]), args[3])
  : mode === 'records' ? () => records(args[0], args[1], args[2], Number(args[3]))
  : null;
if (!run) {
  console.error('usage: calls_driver.js drive WS_BASE SECRET PAUSE_MS SUMMARY\n' +
    '       calls_driver.js records HTTP_BASE API_KEY SUMMARY PAUSE_MS');
  process.exit(2);
}
run().then(() => process.exit(0), (err) => {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
