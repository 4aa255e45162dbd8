// The admin API against a real callrelay process (the contract `callrelay ctl` and the status
// page use): a plain allocation relaying through a TURN client and an active call whose callee
// allocates with the call's own credentials, then every endpoint checked for content (status,
// allocations with their growing bytes and rate, calls, the masked configuration), ending one
// allocation by id and the call by id (both sides told, the record kept, its allocation ended),
// key checks (401, 403), methods (405) and bad bodies (400, 404).
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');
const {
  SECRET, ADMIN_KEY, APP_KEY, waitFor, startServer, echoPeer, http, restUsername, endedCount,
} = require('./ops_lib.js');
const { TurnClient, restPassword } = require('./turn_udp.js');
const { SignalClient, mintToken, expectAck } = require('../lib/signal_client.js');

const TOKEN_SECRET = 'admin-api-token-secret-0123456789abcdef0123';
const kChannel = 0x4000;

/// A TURN allocation relaying 160-byte packets to `peer` every 20 ms through a channel:
/// { client, echoes(), stop() }.
async function relaying(server, peer, username, password) {
  const client = new TurnClient('127.0.0.1', server.udpPort, username, password);
  await client.open();
  assert.equal((await client.allocate()).code, 200, `Allocate ${username}`);
  assert.equal(await client.channelBind(kChannel, '127.0.0.1', peer.port), 200, 'ChannelBind');
  let echoes = 0;
  client.onChannelData = () => { ++echoes; };
  const timer = setInterval(() => client.sendChannelData(kChannel, Buffer.alloc(160, 7)), 20);
  await waitFor(`echoes through ${username}`, () => echoes >= 5);
  return { client, echoes: () => echoes, stop: () => { clearInterval(timer); client.close(); } };
}

/// alice calls bob until the call is active; bob's invite carries the call's TURN credentials:
/// { alice, bob, call, bobIce, close() }.
async function activeCall(server) {
  const ws = `ws://127.0.0.1:${server.httpPort}`;
  const open = (user) => SignalClient.connect(ws, mintToken(TOKEN_SECRET, user), { name: user });
  const [alice, bob] = await Promise.all([open('alice'), open('bob')]);
  const { call } = expectAck(await alice.invite('bob'), 'invite');
  const invite = await bob.next('invite', { call });
  expectAck(await bob.ringing(call), 'ringing');
  expectAck(await bob.accept(call), 'accept');
  expectAck(await alice.offer(call), 'offer');
  await bob.next('offer', { call });
  expectAck(await bob.answer(call), 'answer');
  expectAck(await alice.connected(call), 'alice connected');
  expectAck(await bob.connected(call), 'bob connected');
  for (const d of [alice, bob]) await d.next('state', { call, 'payload.state': 'active' }, 15000);
  const bobIce = invite.payload.ice_servers.find((s) => s.username);
  assert.ok(bobIce, `the invite carries TURN credentials: ${JSON.stringify(invite.payload)}`);
  return { alice, bob, call, bobIce, close: () => Promise.all([alice.close(), bob.close()]) };
}

const get = (server, path, key = ADMIN_KEY) => http(server, 'GET', path, { key });
const post = (server, path, json, key = ADMIN_KEY) => http(server, 'POST', path, { key, json });

test('the admin API shows and ends live allocations and calls', async () => {
  const server = await startServer({ lines: [`calls: {token_secret: "${TOKEN_SECRET}"}`] });
  const peer = await echoPeer();
  const flows = [];
  let call = null;
  try {
    const carolName = restUsername('carol');
    const carol = await relaying(server, peer, carolName, restPassword(SECRET, carolName));
    flows.push(carol);
    call = await activeCall(server);
    const bob = await relaying(server, peer, call.bobIce.username, call.bobIce.credential);
    flows.push(bob);

    // Status: the relay, both allocations, the active call, both signaling connections.
    const status = await get(server, '/api/v1/admin/status');
    assert.equal(status.status, 200, JSON.stringify(status.body));
    const s = status.body;
    assert.match(s.version, /^\d+\.\d+/);
    assert.ok(Number.isInteger(s.uptime_s) && s.uptime_s >= 0);
    assert.equal(s.workers, 2);
    assert.equal(s.draining, false);
    assert.equal(s.drain_deadline_s, null);
    const said = JSON.stringify(s);
    assert.deepEqual(s.allocations, { total: 2, by_transport: { udp: 2, tcp: 0, tls: 0 } }, said);
    assert.deepEqual(s.calls, { ringing: 0, connecting: 0, active: 1 }, said);
    assert.equal(s.signaling_connections, 2, said);
    assert.equal(s.relay_ports.total, 4001);
    assert.ok(s.relay_ports.in_use >= 2, JSON.stringify(s.relay_ports));
    assert.ok(Array.isArray(s.recent_errors));

    // Allocations: both listed with their addresses; bytes grow and the rate turns positive
    // (telemetry samples once a second).
    const listed = await waitFor('a positive rate for carol', async () => {
      const r = await get(server, '/api/v1/admin/allocations?user=carol');
      assert.equal(r.status, 200);
      const a = r.body.allocations[0];
      return a && a.rate_bytes_per_s.client_to_peer > 0 && a.bytes.peer_to_client > 0 ? a : null;
    });
    assert.match(listed.id, /^\d+-\d+$/);
    assert.equal(listed.user, 'carol');
    assert.equal(listed.transport, 'udp');
    assert.equal(listed.family, 'ipv4');
    assert.match(listed.client, /^127\.0\.0\.1:\d+$/);
    assert.equal(listed.relayed.length, 1);
    assert.match(listed.relayed[0], /^127\.0\.0\.1:\d+$/);
    assert.ok(listed.age_s > 0);
    assert.equal(listed.call_id, null);
    assert.ok('quality' in listed);
    const later = await waitFor('carol\'s bytes to grow', async () => {
      const a = (await get(server, '/api/v1/admin/allocations?user=carol')).body.allocations[0];
      return a.bytes.client_to_peer > listed.bytes.client_to_peer ? a : null;
    });
    assert.equal(later.id, listed.id);
    const all = (await get(server, '/api/v1/admin/allocations')).body.allocations;
    assert.equal(all.length, 2, JSON.stringify(all));
    const bobs = all.find((a) => a.user === 'bob');
    assert.ok(bobs, JSON.stringify(all));
    assert.equal(bobs.call_id, call.call);

    // Calls: the active call with its one live allocation.
    const calls = await get(server, '/api/v1/admin/calls');
    assert.equal(calls.status, 200);
    assert.equal(calls.body.calls.length, 1, JSON.stringify(calls.body));
    const c = calls.body.calls[0];
    assert.equal(c.id, call.call);
    assert.equal(c.state, 'active');
    assert.equal(c.caller, 'alice');
    assert.equal(c.callee, 'bob');
    assert.equal(c.allocations, 1, JSON.stringify(c));
    assert.ok(c.age_s >= 0);
    assert.ok('quality' in c);

    // The configuration, with no secret in it.
    const config = await get(server, '/api/v1/admin/config');
    assert.equal(config.status, 200);
    const text = JSON.stringify(config.body);
    for (const secret of [SECRET, ADMIN_KEY, APP_KEY, TOKEN_SECRET])
      assert.ok(!text.includes(secret), `the configuration shows a secret: ${text}`);
    assert.ok(text.includes('***'), text);

    // Bad requests change nothing.
    assert.equal((await post(server, '/api/v1/admin/allocations/end', {})).status, 400);
    assert.equal((await post(server, '/api/v1/admin/allocations/end',
      { allocation: 'carol' })).status, 400);
    assert.equal((await post(server, '/api/v1/admin/allocations/end',
      { user: 'carol', allocation: listed.id })).status, 400);
    const unknown = await post(server, '/api/v1/admin/allocations/end',
      { allocation: '0-999999999' });
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.ok(unknown.body.error.includes('0-999999999'));
    assert.equal((await post(server, '/api/v1/admin/allocations/end',
      { allocation: '77-1' })).status, 404);  // no such worker
    assert.equal((await post(server, '/api/v1/admin/calls/end', {})).status, 400);
    assert.equal((await post(server, '/api/v1/admin/calls/end', { call: 'c/..' })).status, 400);
    assert.equal((await post(server, '/api/v1/admin/calls/end', { call: 'c_nope' })).status, 404);
    assert.equal((await get(server, '/api/v1/admin/allocations?user=')).status, 400);
    assert.equal((await get(server, '/api/v1/admin/allocations')).body.allocations.length, 2);

    // Ending carol's allocation by id: gone from the list as the answer arrives.
    const ended = await post(server, '/api/v1/admin/allocations/end', { allocation: listed.id });
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    assert.equal(ended.body.ended, 1);
    const left = (await get(server, '/api/v1/admin/allocations')).body.allocations;
    assert.deepEqual(left.map((a) => a.user), ['bob'], JSON.stringify(left));
    await waitFor('the admin_ended record', () => endedCount(server, 'admin_ended') >= 1);
    assert.equal(await carol.client.refresh(600), 437);  // RFC 8656 7.3: no allocation

    // Ending the call: both sides told (by the server), the record kept, bob's allocation ends.
    const endCall = await post(server, '/api/v1/admin/calls/end', { call: call.call });
    assert.equal(endCall.status, 200, JSON.stringify(endCall.body));
    assert.equal(endCall.body.ended, true);
    for (const d of [call.alice, call.bob]) {
      const m = await d.next('ended', { call: call.call }, 15000);
      assert.equal(m.payload.by, 'server', JSON.stringify(m));
      assert.equal(m.payload.reason, 'operator-ended', JSON.stringify(m));
      assert.equal(m.payload.outcome, 'completed', JSON.stringify(m));
    }
    assert.deepEqual((await get(server, '/api/v1/admin/calls')).body.calls, []);
    await waitFor('the call\'s allocation to end', async () =>
      (await get(server, '/api/v1/admin/allocations')).body.allocations.length === 0);
    const record = await waitFor('the call record', async () => {
      const r = await get(server, `/api/v1/calls/${call.call}`, APP_KEY);
      return r.status === 200 ? r.body : null;
    });
    assert.equal(record.end_reason, 'operator-ended', JSON.stringify(record));
    assert.equal(record.ended_by, 'server');
    assert.ok(record.relay.allocations >= 1, JSON.stringify(record.relay));
    assert.equal((await post(server, '/api/v1/admin/calls/end', { call: call.call })).status, 404);
    const after = (await get(server, '/api/v1/admin/status')).body;
    assert.equal(after.allocations.total, 0, JSON.stringify(after));
    assert.deepEqual(after.calls, { ringing: 0, connecting: 0, active: 0 });
  } finally {
    for (const f of flows) f.stop();
    if (call) await call.close();
    peer.close();
    await server.stop();
  }
});

test('the admin API refuses missing, wrong and application keys, and wrong methods', async () => {
  const server = await startServer();
  try {
    const routes = [['GET', '/api/v1/admin/status'], ['GET', '/api/v1/admin/allocations'],
      ['GET', '/api/v1/admin/calls'], ['GET', '/api/v1/admin/config'],
      ['POST', '/api/v1/admin/allocations/end'], ['POST', '/api/v1/admin/calls/end']];
    for (const [method, path] of routes) {
      const body = method === 'POST' ? { user: 'carol', call: 'c_x' } : undefined;
      assert.equal((await http(server, method, path, { json: body })).status, 401, path);
      const app = await http(server, method, path, { key: APP_KEY, json: body });
      assert.equal(app.status, 403, path);
      assert.match(app.body.error, /admin: true/);
      const other = method === 'GET' ? 'POST' : 'GET';
      assert.equal((await http(server, other, path, { key: ADMIN_KEY })).status, 405, path);
    }
    // Nothing live: the call list is empty.
    assert.deepEqual((await get(server, '/api/v1/admin/calls')).body, { calls: [] });
  } finally {
    await server.stop();
  }
});
