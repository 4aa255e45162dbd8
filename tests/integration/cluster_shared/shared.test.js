// Three callrelay instances sharing one Redis (shared.sh starts it; its URL in
// CLUSTER_REDIS_URL). Every instance has the same REST secret; each names itself, its region
// and its public TURN URIs (cluster.relay_uris), so which instance a credential points at is
// read from its URIs. The cases run in order on the same three instances.
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { test, before, after } = require('node:test');
const {
  SECRET, ADMIN_KEY, APP_KEY, waitFor, startServer, http, restUsername, endedCount,
} = require('../ops/ops_lib.js');
const { TurnClient, restPassword } = require('../ops/turn_udp.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const REGION = { a: 'us-east', b: 'us-east', c: 'eu-west' };
const uriOf = (name) => `turn:relay-${name}.test:3478?transport=udp`;
const servers = {};

function redis(cmd) {
  execFileSync('bash', [process.env.CLUSTER_REDIS_SCRIPT, cmd, process.env.CLUSTER_REDIS_DIR],
    { stdio: ['ignore', 'ignore', 'inherit'] });
}

/// Allocates for `username` on `server`: { code, client } (the client kept open while it holds
/// an allocation; closed otherwise).
async function allocate(server, username) {
  const client = new TurnClient('127.0.0.1', server.udpPort, username, restPassword(SECRET, username));
  await client.open();
  const { code } = await client.allocate();
  if (code !== 200) client.close();
  return { code, client };
}

/// Ends an allocation (Refresh lifetime 0) and closes its client, even when the Refresh fails
/// (an open socket would keep the test process alive past a failure).
async function release(a) {
  try {
    assert.equal(await a.client.refresh(0), 200, 'Refresh 0');
  } finally {
    a.client.close();
  }
}

/// Whether `server` refuses `username` now: its Allocate answered 401, or it was admitted but
/// the revocation reached the server before the Refresh that ends the allocation (the server
/// then ends the allocation itself and answers that Refresh 401).
async function refused(server, username) {
  const a = await allocate(server, username);
  if (a.code !== 200) return a.code === 401;
  try {
    const code = await a.client.refresh(0);
    assert.ok(code === 200 || code === 401, `Refresh 0: ${code}`);
    return code === 401;
  } finally {
    a.client.close();
  }
}

/// The URIs a credential from `server` carries (for `region`, when given).
async function credentialUris(server, region) {
  const q = `service=turn&username=someone${region ? `&region=${region}` : ''}`;
  const r = await http(server, 'GET', `/api/v1/turn/credentials?${q}`, { key: APP_KEY });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.uris;
}

/// The value of a metric series in `server`'s /metrics (0 when absent).
async function metric(server, series) {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/metrics`);
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

before(async () => {
  for (const name of ['a', 'b', 'c']) {
    servers[name] = await startServer({
      lines: [
        'allocations: {max_per_user: 2}',
        'drain: {deadline_s: 600}',
        'cluster:',
        `  instance_id: relay-${name}`,
        `  redis_url: "${process.env.CLUSTER_REDIS_URL}"`,
        `  region: ${REGION[name]}`,
        `  relay_uris: ["${uriOf(name)}"]`,
      ],
    });
  }
  for (const s of Object.values(servers))
    assert.match(s.log(), /cluster: revocations, per-user quotas and load shared through Redis/);
});

after(async () => {
  for (const s of Object.values(servers)) await s.stop();
});

test('a revocation on one instance refuses the credential on the others within a second',
  async () => {
    const username = restUsername('alice');
    // The credential works everywhere first; B holds a live allocation with it.
    const held = await allocate(servers.b, username);
    assert.equal(held.code, 200, 'Allocate on B before the revocation');
    const onC = await allocate(servers.c, username);
    assert.equal(onC.code, 200, 'Allocate on C before the revocation');
    await release(onC);

    const revoked = await http(servers.a, 'POST', '/api/v1/turn/revoke',
      { key: APP_KEY, json: { username } });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const t0 = Date.now();
    for (const name of ['b', 'c']) {
      // The requirement is one second; each attempt is a fresh client (two round trips).
      await waitFor(`a 401 for the revoked credential on ${name}`,
        () => refused(servers[name], username), 1000, 20);
      console.log(`revoked on A, refused on ${name.toUpperCase()} after ${Date.now() - t0} ms`);
    }
    // B's live allocation ended too, not only new ones refused.
    await waitFor('B to end the live allocation of the revoked username',
      () => endedCount(servers.b, 'revoked') >= 1, 5000);
    held.client.close();
    // Other users are unaffected.
    const bob = await allocate(servers.c, restUsername('bob'));
    assert.equal(bob.code, 200);
    await release(bob);
  });

test('a per-user quota holds across instances', async () => {
  const username = restUsername('quota-user');
  const first = await allocate(servers.a, username);
  const second = await allocate(servers.b, username);
  assert.equal(first.code, 200);
  assert.equal(second.code, 200);
  // allocations.max_per_user is 2 for the whole cluster, not per instance.
  const third = await allocate(servers.c, username);
  assert.equal(third.code, 486, 'the third allocation of the user, on a third instance');
  assert.ok(await metric(servers.c, 'callrelay_cluster_quota_refused_total') >= 1);
  // One ends on A: C may allocate again (the end is queued, so within a moment).
  await release(first);
  let again = null;
  await waitFor('C to admit the user once an allocation ended on A', async () => {
    again = await allocate(servers.c, username);
    return again.code === 200;
  }, 5000, 100);
  await release(again);
  await release(second);
});

test('credentials carry the least-loaded healthy instance, by region, draining ones left out',
  async () => {
    // Loads: A 3, B 2, C 1 allocations (users of their own, within the quota).
    const held = [];
    for (const [name, n] of [['a', 3], ['b', 2], ['c', 1]]) {
      for (let i = 0; i < n; ++i) {
        const r = await allocate(servers[name], restUsername(`load-${name}-${i}`));
        assert.equal(r.code, 200);
        held.push(r);
      }
    }
    // Each instance publishes every second; every instance answers alike.
    for (const name of ['a', 'b', 'c']) {
      await waitFor(`${name}'s credentials to carry C (least loaded)`, async () =>
        JSON.stringify(await credentialUris(servers[name])) === JSON.stringify([uriOf('c')]), 10000, 200);
    }
    // Each answer counts one expected allocation on the instance it names until the next read
    // (a burst spreads): after a read, a client in us-east gets the least loaded there, B.
    await sleep(1500);
    assert.deepEqual(await credentialUris(servers.a, 'us-east'), [uriOf('b')]);
    const bad = await http(servers.a, 'GET', '/api/v1/turn/credentials?service=turn&username=x&region=a%20b',
      { key: APP_KEY });
    assert.equal(bad.status, 400);
    // C drains (its allocation keeps it running): left out, B is next.
    const drained = await http(servers.c, 'POST', '/api/v1/admin/drain',
      { key: ADMIN_KEY, json: { deadline_s: 300 } });
    assert.equal(drained.status, 202, JSON.stringify(drained.body));
    await waitFor('A to read that C drains', async () =>
      await metric(servers.a, 'callrelay_cluster_instances_healthy') === 2, 10000, 200);
    await sleep(1500);
    // Still the least loaded, and in the client's region, but draining: B.
    assert.deepEqual(await credentialUris(servers.a, 'eu-west'), [uriOf('b')]);
    for (let i = 0; i < 5; ++i)
      assert.notDeepEqual(await credentialUris(servers.a), [uriOf('c')], 'a draining instance');
    for (const r of held) {
      if (r.client.port === servers.c.udpPort) { r.client.close(); continue; }
      await release(r);
    }
  });

test('Redis killed: each instance falls back safely, counts it, and catches up after', async () => {
  redis('kill');
  let down = true;
  try {
    // Credentials: A's own URIs once what it read is stale.
    await waitFor("A's credentials to carry its own URIs for want of fresh load", async () =>
      JSON.stringify(await credentialUris(servers.a)) === JSON.stringify([uriOf('a')]) &&
      await metric(servers.a, 'callrelay_cluster_credential_fallbacks_total') >= 1, 10000, 200);
    assert.equal(await metric(servers.a, 'callrelay_cluster_redis_up'), 0);
    // Quotas: admitted on the instance's own limit, and counted.
    const r = await allocate(servers.a, restUsername('outage-user'));
    assert.equal(r.code, 200, 'an allocation while Redis is down');
    await release(r);
    assert.ok(await metric(servers.a, 'callrelay_cluster_redis_failures_total{op="quota_admit"}') >= 1);
    await waitFor('A to count failed load publications', async () =>
      await metric(servers.a, 'callrelay_cluster_redis_failures_total{op="load_publish"}') >= 1);
    // A revocation while Redis is down holds on A at once.
    const username = restUsername('revoked-in-outage');
    const revoked = await http(servers.a, 'POST', '/api/v1/turn/revoke',
      { key: APP_KEY, json: { username } });
    assert.equal(revoked.status, 200);
    assert.equal((await allocate(servers.a, username)).code, 401);
    await waitFor('A to count the revocation it could not share', async () =>
      await metric(servers.a, 'callrelay_cluster_redis_failures_total{op="revocation_publish"}') >= 1);
    const stillValid = await allocate(servers.b, username);
    assert.equal(stillValid.code, 200, 'B cannot know of it while Redis is down');
    await release(stillValid);
    // Redis back (empty): the revocation is shared and B refuses it.
    redis('start');
    down = false;
    await waitFor('B to refuse the revocation made during the outage',
      () => refused(servers.b, username), 20000, 200);
    await waitFor("A's credentials to carry the least-loaded instance again", async () =>
      JSON.stringify(await credentialUris(servers.a)) !== JSON.stringify([uriOf('a')]) ||
      (await metric(servers.a, 'callrelay_cluster_instances_healthy')) >= 2, 10000, 200);
  } finally {
    if (down) redis('start');
  }
});
