// Calls whose sides sit on different callrelay instances sharing one Redis and one PostgreSQL,
// for signaling.sh (node 18 or later, no npm package). Each mode exits 0 on success; every
// wait is bounded and every server answer checked.
//
//   node signaling.js call SECRET A_WS B_WS OUT_JSON
//     alice on A calls bob on B: invite, ringing, accept, offer/answer, connected, hang-up by
//     the callee (through B to the call's owner A); carol on B calling bob meanwhile is busy,
//     and rings him once the call ended. Writes {id, caller, callee} to OUT_JSON.
//   node signaling.js one-accept SECRET A_WS B_WS C_WS ROUNDS
//     alice on A calls bob, whose two devices sit on B and C; both accept at once, ROUNDS
//     times: exactly one accept is acknowledged, the other device hears answered-elsewhere.
//   node signaling.js kill SECRET A_WS B_WS C_WS C_PID
//     a call owned by C rings bob on B, and an active call owned by A has its callee on C;
//     C is killed (SIGKILL): bob's ringing call ends (peer-disconnected, instance-lost) and
//     A's caller hears peer-reconnecting, then peer-disconnected when the grace period ends.
//   node signaling.js restart SECRET A_WS B_WS READY_CMD
//     an active call between A and B; READY_CMD (a shell command) restarts Redis and returns
//     once both instances subscribed again; then signaling in both directions still works
//     and the hang-up ends the call on both sides.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');

const { SignalClient, mintToken, expectAck } = require('../lib/signal_client.js');

const run = `r${process.pid}`;  // user ids unique to this run
const open = (base, secret, user, name) =>
  SignalClient.connect(base, mintToken(secret, user), { name: name || user });

async function ring(caller, callees) {
  const { call } = expectAck(await caller.invite(callees[0].user), `${caller.name} invite`);
  for (const d of callees) await d.next('invite', { call, 'payload.from': caller.user }, 8000);
  expectAck(await callees[0].ringing(call), `${callees[0].name} ringing`);
  await caller.next('ringing', { call });
  return call;
}

async function activate(caller, callee, call) {
  expectAck(await callee.accept(call), `${callee.name} accept`);
  await caller.next('accepted', { call, 'payload.device': callee.device });
  expectAck(await caller.offer(call), 'offer');
  await callee.next('offer', { call });
  expectAck(await callee.answer(call), 'answer');
  await caller.next('answer', { call });
  expectAck(await caller.connected(call), 'caller connected');
  expectAck(await callee.connected(call), 'callee connected');
  for (const d of [caller, callee]) await d.next('state', { call, 'payload.state': 'active' });
}

async function call(secret, aWs, bWs, out) {
  const alice = await open(aWs, secret, `${run}-alice`, 'alice@A');
  const bob = await open(bWs, secret, `${run}-bob`, 'bob@B');
  const id = await ring(alice, [bob]);
  await activate(alice, bob, id);
  // Candidates cross both ways through the owner.
  expectAck(await bob.candidate(id, 'candidate:1 1 udp 1 127.0.0.1 9 typ host'), 'candidate');
  await alice.next('candidate', { call: id });
  // carol on B calls bob, who is in A's call: busy, though B's engine holds no call of bob's.
  const carol = await open(bWs, secret, `${run}-carol`, 'carol@B');
  const busy = expectAck(await carol.invite(bob.user), 'carol invite').call;
  await carol.next('ended',
    { call: busy, 'payload.outcome': 'busy', 'payload.reason': 'callee-busy' });
  expectAck(await bob.hangup(id), 'hangup from the callee');
  for (const d of [alice, bob]) {
    await d.next('ended', { call: id, 'payload.outcome': 'completed', 'payload.by': 'callee' });
  }
  // bob is free again: carol's next invite rings him (and not the earlier, busy call).
  const again = await ring(carol, [bob]);
  assert.notEqual(again, busy);
  expectAck(await carol.cancel(again), 'carol cancel');
  await bob.next('ended', { call: again, 'payload.outcome': 'cancelled' });
  await carol.close(1000, 'done');
  // A message about the ended call from the callee's instance is refused by the owner.
  const late = await bob.hangup(id);
  assert.equal(late.type, 'error', JSON.stringify(late));
  for (const d of [alice, bob]) await d.close(1000, 'done');
  fs.writeFileSync(out, JSON.stringify({ id, caller: alice.user, callee: bob.user }));
  console.error(`call ${id}: alice@A -> bob@B completed`);
}

async function oneAccept(secret, aWs, bWs, cWs, rounds) {
  const alice = await open(aWs, secret, `${run}-alice`, 'alice@A');
  const bobB = await open(bWs, secret, `${run}-bob`, 'bob@B');
  const bobC = await open(cWs, secret, `${run}-bob`, 'bob@C');
  const wins = { 'bob@B': 0, 'bob@C': 0 };
  for (let i = 0; i < rounds; ++i) {
    const id = await ring(alice, [bobB, bobC]);
    const answers = await Promise.all([bobB.accept(id), bobC.accept(id)]);
    const acked = answers.filter((a) => a.type === 'ack');
    assert.equal(acked.length, 1, `exactly one accept acknowledged: ${JSON.stringify(answers)}`);
    const winner = answers[0].type === 'ack' ? bobB : bobC;
    const loser = winner === bobB ? bobC : bobB;
    const refused = answers[winner === bobB ? 1 : 0];
    assert.equal(refused.type, 'error', JSON.stringify(refused));
    assert.ok(['wrong-state', 'not-participant', 'unknown-call'].includes(refused.code), JSON.stringify(refused));
    await loser.next('answered-elsewhere', { call: id });
    const accepted = await alice.next('accepted', { call: id });
    assert.equal(accepted.payload.device, winner.device, 'the caller hears of the winning device');
    ++wins[winner.name];
    expectAck(await alice.hangup(id), 'hangup');
    await alice.next('ended', { call: id });
    await winner.next('ended', { call: id });
  }
  for (const d of [alice, bobB, bobC]) await d.close(1000, 'done');
  console.error(`one accept in ${rounds} rounds (wins: ${JSON.stringify(wins)})`);
}

async function kill(secret, aWs, bWs, cWs, cPid) {
  // Owned by C, ringing on B.
  const carol = await open(cWs, secret, `${run}-carol`, 'carol@C');
  const bob = await open(bWs, secret, `${run}-bob`, 'bob@B');
  const ringingId = await ring(carol, [bob]);
  // Owned by A, its callee on C.
  const alice = await open(aWs, secret, `${run}-alice`, 'alice@A');
  const dave = await open(cWs, secret, `${run}-dave`, 'dave@C');
  const activeId = await ring(alice, [dave]);
  await activate(alice, dave, activeId);
  process.kill(cPid, 'SIGKILL');
  console.error(`instance C (pid ${cPid}) killed`);
  const ended = await bob.next('ended', { call: ringingId }, 15000);
  assert.equal(ended.payload.outcome, 'peer-disconnected', JSON.stringify(ended));
  assert.equal(ended.payload.reason, 'instance-lost', JSON.stringify(ended));
  await alice.next('peer-reconnecting', { call: activeId }, 15000);
  const gone = await alice.next('ended', { call: activeId }, 15000);
  assert.equal(gone.payload.outcome, 'peer-disconnected', JSON.stringify(gone));
  assert.equal(gone.payload.reason, 'callee-disconnected', JSON.stringify(gone));
  // The survivors still call each other across A and B.
  const again = await ring(alice, [bob]);
  expectAck(await bob.decline(again), 'decline');
  await alice.next('ended', { call: again, 'payload.outcome': 'declined' });
  for (const d of [alice, bob]) await d.close(1000, 'done');
  console.error('the ringing call owned by C and the call with a callee on C ended cleanly');
}

async function restart(secret, aWs, bWs, readyCmd) {
  const alice = await open(aWs, secret, `${run}-alice`, 'alice@A');
  const bob = await open(bWs, secret, `${run}-bob`, 'bob@B');
  const id = await ring(alice, [bob]);
  await activate(alice, bob, id);
  childProcess.execSync(readyCmd, { stdio: 'inherit', timeout: 30000 });
  // Both directions after the restart: a renegotiation from the caller, candidates back.
  expectAck(await alice.offer(id), 'offer after the restart');
  await bob.next('offer', { call: id }, 8000);
  expectAck(await bob.answer(id), 'answer after the restart');
  await alice.next('answer', { call: id }, 8000);
  expectAck(await bob.hangup(id), 'hangup after the restart');
  for (const d of [alice, bob]) {
    await d.next('ended', { call: id, 'payload.outcome': 'completed' }, 8000);
  }
  // A new call finds bob through presence written again after the restart.
  const next = await ring(alice, [bob]);
  expectAck(await alice.cancel(next), 'cancel');
  await bob.next('ended', { call: next, 'payload.outcome': 'cancelled' });
  for (const d of [alice, bob]) await d.close(1000, 'done');
  console.error(`call ${id} kept its signaling across a Redis restart`);
}

const [mode, ...a] = process.argv.slice(2);
const modes = {
  call: () => call(a[0], a[1], a[2], a[3]),
  'one-accept': () => oneAccept(a[0], a[1], a[2], a[3], Number(a[4])),
  kill: () => kill(a[0], a[1], a[2], a[3], Number(a[4])),
  restart: () => restart(a[0], a[1], a[2], a[3]),
};
if (!modes[mode]) {
  console.error('usage: signaling.js call|one-accept|kill|restart SECRET ... (see the header)');
  process.exit(2);
}
modes[mode]().then(() => process.exit(0), (err) => {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
