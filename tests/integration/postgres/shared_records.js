// Signaling-only calls on one callrelay instance and their records read back through another
// (both on one PostgreSQL database), for shared_records.sh (node 18 or later, no npm package).
//
//   node shared_records.js calls WS_BASE TOKEN_SECRET PREFIX COUNT OUT_JSON
//     COUNT calls between PREFIX-alice and PREFIX-bob: completed ones (invite, ringing,
//     accept, offer/answer, connected from both, hang-up) alternating with declined ones;
//     every server answer is checked. Writes [{id, outcome, caller, callee}] to OUT_JSON.
//   node shared_records.js records HTTP_BASE API_KEY WAIT_MS JSON...
//     waits (at most WAIT_MS) until GET /api/v1/calls lists every call of the JSON files, then
//     checks each one's parties and outcome, GET /api/v1/calls/{id}, and that paging with
//     limit=2 walks the same records newest first.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');

const { SignalClient, mintToken, expectAck } = require('../lib/signal_client.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function oneCall(caller, callee, completed) {
  const { call } = expectAck(await caller.invite(callee.user), `${caller.name} invite`);
  await callee.next('invite', { call });
  expectAck(await callee.ringing(call), 'ringing');
  await caller.next('ringing', { call });
  if (!completed) {
    expectAck(await callee.decline(call, 'busy elsewhere'), 'decline');
    await caller.next('ended', { call, 'payload.outcome': 'declined' });
    return { id: call, outcome: 'declined' };
  }
  expectAck(await callee.accept(call), 'accept');
  await caller.next('accepted', { call });
  expectAck(await caller.offer(call), 'offer');
  await callee.next('offer', { call });
  expectAck(await callee.answer(call), 'answer');
  await caller.next('answer', { call });
  expectAck(await caller.connected(call), 'caller connected');
  expectAck(await callee.connected(call), 'callee connected');
  for (const d of [caller, callee]) await d.next('state', { call, 'payload.state': 'active' });
  expectAck(await caller.hangup(call), 'hangup');
  for (const d of [caller, callee]) await d.next('ended', { call, 'payload.outcome': 'completed' });
  return { id: call, outcome: 'completed' };
}

async function calls(wsBase, secret, prefix, count, outPath) {
  const open = (user) => SignalClient.connect(wsBase, mintToken(secret, user), { name: user });
  const [caller, callee] = await Promise.all([open(`${prefix}-alice`), open(`${prefix}-bob`)]);
  const made = [];
  for (let i = 0; i < count; ++i) {
    const c = await oneCall(caller, callee, i % 2 === 0);
    made.push({ ...c, caller: caller.user, callee: callee.user });
  }
  for (const d of [caller, callee]) await d.close(1000, 'done');
  fs.writeFileSync(outPath, JSON.stringify(made));
  console.error(`${prefix}: ${count} calls made through ${wsBase}`);
}

async function get(url, apiKey) {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${apiKey}` } });
  const text = await res.text();
  return { status: res.status, text };
}

async function records(httpBase, apiKey, waitMs, files) {
  const want = files.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
  let listed = [];
  let last = '';
  for (const deadline = Date.now() + waitMs; ;) {
    const r = await get(`${httpBase}/api/v1/calls?limit=1000`, apiKey);
    last = `${r.status} ${r.text.slice(0, 200)}`;
    if (r.status === 200) {
      listed = JSON.parse(r.text).calls;
      if (want.every((c) => listed.some((x) => x.id === c.id))) break;
    }
    if (Date.now() > deadline) break;
    await sleep(200);
  }
  const byId = new Map(listed.map((r) => [r.id, r]));
  for (const c of want) {
    const r = byId.get(c.id);
    assert.ok(r, `${httpBase} lists no record of ${c.outcome} call ${c.id} ` +
      `(${listed.length} listed; last answer ${last})`);
    assert.equal(r.outcome, c.outcome, JSON.stringify(r));
    assert.equal(r.caller, c.caller, JSON.stringify(r));
    assert.equal(r.callee, c.callee, JSON.stringify(r));
    const one = await get(`${httpBase}/api/v1/calls/${c.id}`, apiKey);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(JSON.parse(one.text), r, `GET /api/v1/calls/${c.id}`);
  }
  assert.equal(listed.length, want.length, `${listed.length} records listed, ${want.length} calls made`);
  // Cursor pagination walks the same records, newest first.
  const paged = [];
  for (let cursor = '', pages = 0; pages < 1000; ++pages) {
    const r = await get(`${httpBase}/api/v1/calls?limit=2${cursor ? `&cursor=${cursor}` : ''}`, apiKey);
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text);
    paged.push(...body.calls.map((x) => x.id));
    if (!body.next_cursor) break;
    cursor = encodeURIComponent(body.next_cursor);
  }
  assert.deepEqual(paged, listed.map((x) => x.id), 'limit=2 pages walk the same list');
  console.error(`${httpBase}: all ${want.length} records listed, each readable by id`);
}

const [mode, ...args] = process.argv.slice(2);
const run = mode === 'calls' ? () => calls(args[0], args[1], args[2], Number(args[3]), args[4])
  : mode === 'records' ? () => records(args[0], args[1], Number(args[2]), args.slice(3))
  : null;
if (!run) {
  console.error('usage: shared_records.js calls WS_BASE SECRET PREFIX COUNT OUT_JSON\n' +
    '       shared_records.js records HTTP_BASE API_KEY WAIT_MS JSON...');
  process.exit(2);
}
run().then(() => process.exit(0), (err) => {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
