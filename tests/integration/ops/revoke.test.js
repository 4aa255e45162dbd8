// Credentials that take effect at once, against a real callrelay process: revoking a username
// through the API ends its live allocation (not only its next Refresh), the admin endpoint ends
// every allocation of a user, and with auth.strict_expiry a REST credential's expiry ends the
// allocations made with it. Each case shows the relaying stop and the end reason in the log;
// the time from the request to the end is printed (figures, not assertions).
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');
const {
  SECRET, ADMIN_KEY, APP_KEY, waitFor, startServer, echoPeer, http, restUsername, endedCount,
} = require('./ops_lib.js');
const { TurnClient, restPassword } = require('./turn_udp.js');

const kChannel = 0x4000;

/// An allocation bound to `peer` that relays one ChannelData every 20 ms: { client, echoes(),
/// lastEchoAt(), stop() }.
async function relaying(server, peer, username) {
  const password = restPassword(SECRET, username);
  const client = new TurnClient('127.0.0.1', server.udpPort, username, password);
  await client.open();
  assert.equal((await client.allocate()).code, 200, `Allocate ${username}`);
  assert.equal(await client.channelBind(kChannel, '127.0.0.1', peer.port), 200, 'ChannelBind');
  let echoes = 0;
  let last = 0;
  client.onChannelData = () => { ++echoes; last = Date.now(); };
  const timer = setInterval(() => client.sendChannelData(kChannel, Buffer.from('media')), 20);
  await waitFor(`echoes through ${username}`, () => echoes >= 5);
  return {
    client, echoes: () => echoes, lastEchoAt: () => last,
    stop: () => { clearInterval(timer); client.close(); },
  };
}

/// Waits until `n` allocations ended with `reason`, then checks relaying stopped for `a`:
/// no echo for a while after the end (sends go on).
async function assertEnded(server, a, reason, n, sinceMs) {
  await waitFor(`${n} allocation(s) ended with reason ${reason}`,
    () => endedCount(server, reason) >= n);
  console.log(`${reason}: the allocation ended ${Date.now() - sinceMs} ms after the request`);
  await noMoreEchoes(a, reason);
}

/// Echoes already on their way when the allocation ended are let in first (200 ms), then none
/// may come for 500 ms while the client keeps sending.
async function noMoreEchoes(a, what) {
  await new Promise((r) => setTimeout(r, 200));
  const count = a.echoes();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(a.echoes(), count, `${what}: packets were still relayed after the end`);
}

test('revoking a username ends its live allocation; other users relay on', async () => {
  const server = await startServer();
  const peer = await echoPeer();
  const alice = await relaying(server, peer, restUsername('alice'));
  const bob = await relaying(server, peer, restUsername('bob'));
  const aliceName = alice.client.username;
  try {
    const t0 = Date.now();
    const r = await http(server, 'POST', '/api/v1/turn/revoke',
      { key: APP_KEY, json: { username: aliceName } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await assertEnded(server, alice, 'revoked', 1, t0);
    // A new allocation with the revoked credential is refused as before.
    assert.equal(await alice.client.refresh(600), 401);
    const before = bob.echoes();
    await waitFor("bob's allocation to relay on", () => bob.echoes() >= before + 10);
  } finally {
    alice.stop();
    bob.stop();
    peer.close();
    await server.stop();
  }
});

test('the admin endpoint ends every allocation of a user (admin key only)', async () => {
  const server = await startServer();
  const peer = await echoPeer();
  const one = await relaying(server, peer, restUsername('carol', 3600));
  const two = await relaying(server, peer, restUsername('carol', 7200));
  const other = await relaying(server, peer, restUsername('dave'));
  try {
    const denied = await http(server, 'POST', '/api/v1/admin/allocations/end',
      { key: APP_KEY, json: { user: 'carol' } });
    assert.equal(denied.status, 403);
    assert.equal((await http(server, 'POST', '/api/v1/admin/allocations/end',
      { key: ADMIN_KEY, json: {} })).status, 400);
    const t0 = Date.now();
    const r = await http(server, 'POST', '/api/v1/admin/allocations/end',
      { key: ADMIN_KEY, json: { user: 'carol' } });
    // Answered once the workers have ended them, with how many.
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.ended, 2, JSON.stringify(r.body));
    await assertEnded(server, one, 'admin_ended', 2, t0);
    await noMoreEchoes(two, "carol's second allocation");
    // RFC 8656 section 7.3: the allocation is gone (437), the credential itself still valid.
    assert.equal(await one.client.refresh(600), 437);
    const before = other.echoes();
    await waitFor("dave's allocation to relay on", () => other.echoes() >= before + 10);
  } finally {
    one.stop();
    two.stop();
    other.stop();
    peer.close();
    await server.stop();
  }
});

test('auth.strict_expiry ends an allocation when its REST credential expires', async () => {
  const server = await startServer({ auth: ', strict_expiry: true' });
  const peer = await echoPeer();
  // Expires in 3 s; the allocation's own lifetime (600 s) would outlive it.
  const shortLived = await relaying(server, peer, restUsername('erin', 3));
  const longLived = await relaying(server, peer, restUsername('frank', 3600));
  try {
    const t0 = Date.now();
    await assertEnded(server, shortLived, 'credential_expired', 1, t0);
    const before = longLived.echoes();
    await waitFor("frank's allocation to relay on", () => longLived.echoes() >= before + 10);
    assert.equal(endedCount(server, 'credential_expired'), 1);
  } finally {
    shortLived.stop();
    longLived.stop();
    peer.close();
    await server.stop();
  }
});
