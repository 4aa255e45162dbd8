// Graceful drain against a real callrelay process: with a live allocation relaying, SIGTERM
// turns /readyz 503 and refuses new Allocates (403), the live allocation keeps relaying, and the
// process exits 0 once it ends (Refresh lifetime 0). With drain.alternate_servers, the admin
// endpoint's drain answers new Allocates with 300 and an ALTERNATE-SERVER of the client's family,
// a SIGTERM then lets the drain run on, and a second SIGTERM stops the process at once.
'use strict';

const assert = require('node:assert/strict');
const { test } = require('node:test');
const {
  SECRET, ADMIN_KEY, APP_KEY, waitFor, startServer, echoPeer, http, restUsername, endedCount,
} = require('./ops_lib.js');
const { TurnClient, restPassword } = require('./turn_udp.js');

const kChannel = 0x4000;

/// An allocation of `user` bound to `peer` on channel 0x4000 that sends one ChannelData every
/// 20 ms and counts the echoes: { client, echoes(), stop() }.
async function relayingAllocation(server, peer, user) {
  const username = restUsername(user);
  const password = restPassword(SECRET, username);
  const client = new TurnClient('127.0.0.1', server.udpPort, username, password);
  await client.open();
  const a = await client.allocate();
  assert.equal(a.code, 200, `Allocate for ${user}`);
  assert.equal(await client.channelBind(kChannel, '127.0.0.1', peer.port), 200, 'ChannelBind');
  let echoes = 0;
  client.onChannelData = () => { ++echoes; };
  const payload = Buffer.from(`media ${user}`);
  const timer = setInterval(() => client.sendChannelData(kChannel, payload), 20);
  await waitFor(`first echoes through ${user}'s allocation`, () => echoes >= 5);
  return { client, username, echoes: () => echoes, stop: () => clearInterval(timer) };
}

async function newAllocate(server, user) {
  const username = restUsername(user);
  const c = new TurnClient('127.0.0.1', server.udpPort, username, restPassword(SECRET, username));
  await c.open();
  try {
    return await c.allocate();
  } finally {
    c.close();
  }
}

test('SIGTERM drains: readyz 503, Allocate 403, the live allocation relays, exit 0 at its end',
  async () => {
    const server = await startServer({ lines: ['drain: {deadline_s: 600}'] });
    const peer = await echoPeer();
    let live;
    try {
      live = await relayingAllocation(server, peer, 'alice');
      assert.equal((await http(server, 'GET', '/readyz')).status, 200);

      server.signal('SIGTERM');
      await waitFor('/readyz to answer 503', async () =>
        (await http(server, 'GET', '/readyz')).status === 503);
      const refused = await newAllocate(server, 'bob');
      assert.equal(refused.code, 403, 'a new Allocate while draining');
      assert.equal(refused.alternate, null, 'no ALTERNATE-SERVER without alternates');

      const before = live.echoes();
      await waitFor('the live allocation to keep relaying while draining',
        () => live.echoes() >= before + 25);
      assert.equal(server.exited(), null, 'callrelay must wait for the live allocation');
      assert.match(server.log(), /SIGTERM: draining/);

      live.stop();
      assert.equal(await live.client.refresh(0), 200, 'Refresh(0) ends the live allocation');
      const exit = await server.waitExit(20000);
      assert.ok(exit, 'callrelay did not exit after its last allocation ended');
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.match(server.log(), /drain: every allocation has ended/);
    } finally {
      if (live) { live.stop(); live.client.close(); }
      peer.close();
      await server.stop();
    }
  });

test('the admin drain sends new Allocates to an alternate (300), a second SIGTERM stops at once',
  async () => {
    const server = await startServer({
      lines: ['drain: {deadline_s: 600,',
        '        alternate_servers: ["[2001:db8::8]:3478", "192.0.2.8:3479"]}'],
    });
    const peer = await echoPeer();
    let live;
    try {
      live = await relayingAllocation(server, peer, 'carol');
      const denied = await http(server, 'POST', '/api/v1/admin/drain', { key: APP_KEY, json: {} });
      assert.equal(denied.status, 403, 'an application key may not drain');
      assert.equal((await http(server, 'GET', '/readyz')).status, 200);

      const started = await http(server, 'POST', '/api/v1/admin/drain',
        { key: ADMIN_KEY, json: { deadline_s: 300 } });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      assert.equal(started.body.draining, true);
      assert.ok(started.body.deadline_s <= 300);
      assert.equal((await http(server, 'GET', '/readyz')).status, 503);

      const redirected = await newAllocate(server, 'dave');
      assert.equal(redirected.code, 300, 'Try Alternate while draining with alternates');
      // RFC 8489 section 10: the alternate of the client's family (IPv4 here), plain encoding.
      assert.deepEqual(redirected.alternate, { family: 4, ip: '192.0.2.8', port: 3479 });

      const before = live.echoes();
      await waitFor('the live allocation to keep relaying', () => live.echoes() >= before + 25);
      // A service manager's stop after the operator's drain lets the drain run on...
      server.signal('SIGTERM');
      await waitFor('the SIGTERM to be logged',
        () => /SIGTERM: already draining/.test(server.log()));
      const during = live.echoes();
      await waitFor('the live allocation to relay after the first SIGTERM',
        () => live.echoes() >= during + 25);
      assert.equal(server.exited(), null);
      // ...and a second SIGTERM stops at once.
      server.signal('SIGTERM');
      const exit = await server.waitExit(20000);
      assert.ok(exit, 'a SIGTERM during a drain must stop callrelay at once');
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.match(server.log(), /SIGTERM while draining: stopping now/);
    } finally {
      if (live) { live.stop(); live.client.close(); }
      peer.close();
      await server.stop();
    }
  });

test('the drain deadline ends what is left (reason drained) and exits 0', async () => {
  const server = await startServer({ lines: ['drain: {deadline_s: 2}'] });
  const peer = await echoPeer();
  let live;
  try {
    live = await relayingAllocation(server, peer, 'erin');
    server.signal('SIGTERM');
    const exit = await server.waitExit(30000);
    assert.ok(exit, 'callrelay did not exit at the drain deadline');
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(endedCount(server, 'drained'), 1, server.log());
  } finally {
    if (live) { live.stop(); live.client.close(); }
    peer.close();
    await server.stop();
  }
});
