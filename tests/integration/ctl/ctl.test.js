// `callrelay ctl` against a running callrelay: every command in table and JSON form over a
// real relayed allocation and a real call, the key lookup (config, state directory,
// environment), and the errors operators meet (wrong key, unreachable relay, bad arguments,
// https without a trusted certificate).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const lib = require('./ctl_lib.js');

const { ctl, ctlOk, ctlJson, waitFor } = lib;

describe('callrelay ctl over the admin API', { timeout: 300000 }, () => {
  let server;
  let peer;
  const flows = [];
  /// The admin key and URL as an operator passes them.
  const auth = () => ['--url', server.url, '--key', lib.ADMIN_KEY];

  before(async () => {
    server = await lib.startServer();
    peer = await lib.echoPeer();
  });
  after(async () => {
    for (const f of flows) f.stop();
    if (peer) peer.close();
    if (server) await server.stop();
  });

  it('made the state directory admin key, mode 0600, and accepts it', async () => {
    const keyFile = path.join(server.stateDir, 'admin-key');
    const st = fs.statSync(keyFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(fs.readFileSync(keyFile, 'utf8'), /^[A-Za-z0-9_-]{43}\n$/);
    assert.doesNotMatch(server.log(), new RegExp(fs.readFileSync(keyFile, 'utf8').trim()));
    // No --key, no admin key in the configuration used: the state directory's file.
    const out = await ctlOk(['status', '--url', server.url, '--state-dir', server.stateDir,
      '--config', path.join(server.dir, 'absent.yaml')]);
    assert.match(out, /^workers +2$/m);
  });

  it('status: table and JSON', async () => {
    const flow = await lib.relayedFlow(server, 'alice', peer);
    flows.push(flow);
    const s = await ctlJson(['status', ...auth()]);
    assert.equal(s.workers, 2);
    assert.equal(s.draining, false);
    assert.ok(s.allocations.total >= 1, JSON.stringify(s));
    assert.ok(s.allocations.by_transport.udp >= 1, JSON.stringify(s));
    const table = await ctlOk(['status', ...auth()]);
    for (const name of ['version', 'uptime', 'workers', 'draining', 'allocations', 'calls',
      'signaling', 'relay ports']) {
      assert.match(table, new RegExp(`^${name} +\\S`, 'm'), table);
    }
    assert.match(table, /^draining +no$/m);
    assert.match(table, /^allocations +\d+ \(udp \d+, tcp \d+, tls \d+\)$/m);
    assert.match(table, /^relay ports +\d+ of 4001 in use$/m);
  });

  it('allocations: every live one with its traffic, filtered by user', async () => {
    const alice = flows[0];
    await waitFor('alice\'s echoes', () => alice.received() > 10);
    const mine = await waitFor('alice\'s allocation with bytes both ways', async () => {
      const list = (await ctlJson(['allocations', '--user', 'alice', ...auth()])).allocations;
      const a = list.find((x) => String(x.user).includes('alice'));
      return a && a.bytes.client_to_peer > 0 && a.bytes.peer_to_client > 0 ? a : null;
    });
    assert.match(mine.id, /^\d+-\d+$/);
    assert.equal(mine.transport, 'udp');
    assert.equal(mine.client, `127.0.0.1:${alice.client.sock.address().port}`);
    assert.deepEqual(mine.relayed, [`${alice.client.relayed.ip}:${alice.client.relayed.port}`]);
    const table = await ctlOk(['allocations', '--user', 'alice', ...auth()]);
    const [header, row] = table.trimEnd().split('\n');
    assert.match(header, /^ID +USER +TRANSPORT +CLIENT +RELAYED +AGE +TO PEER +FROM PEER/);
    assert.ok(row.startsWith(`${mine.id} `), table);
    assert.match(row, /alice/);
    assert.ok(row.includes(mine.relayed[0]), table);
    assert.match(row, / \d+(\.\d)? [kM]?B /);
    const other = await ctlJson(['allocations', '--user', 'nobody-here', ...auth()]);
    assert.deepEqual(other.allocations, []);
    assert.equal(await ctlOk(['allocations', '--user', 'nobody-here', ...auth()]),
      'no live allocations\n');
  });

  it('calls: a live call, then end --call ends it for both sides', async () => {
    const c = await lib.activeCall(server);
    try {
      const listed = await waitFor('the call in ctl calls', async () =>
        (await ctlJson(['calls', ...auth()])).calls.find((x) => x.id === c.call));
      assert.equal(listed.state, 'active');
      assert.equal(listed.caller, 'alice');
      assert.equal(listed.callee, 'bob');
      const table = await ctlOk(['calls', ...auth()]);
      assert.match(table, /^ID +STATE +CALLER +CALLEE +AGE +ALLOCATIONS +MOS +LOSS +JITTER +RTT$/m);
      assert.match(table, new RegExp(`^${c.call} +active +alice +bob `, 'm'));
      assert.equal(await ctlOk(['end', '--call', c.call, ...auth()]), `ended call ${c.call}\n`);
      for (const d of [c.alice, c.bob]) await d.next('ended', { call: c.call }, 15000);
      const again = await ctl(['end', '--call', c.call, ...auth()]);
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stderr, /answered 404/);
    } finally {
      await c.close();
    }
  });

  it('end --allocation and end --user end allocations', async () => {
    const bob = await lib.relayedFlow(server, 'bob', peer);
    const carol = await lib.relayedFlow(server, 'carol', peer);
    flows.push(bob, carol);
    const idOf = async (user) => waitFor(`${user}'s allocation`, async () => {
      const list = (await ctlJson(['allocations', '--user', user, ...auth()])).allocations;
      return list.length === 1 ? list[0].id : null;
    });
    const bobId = await idOf('bob');
    const ended = await ctlJson(['end', '--allocation', bobId, ...auth()]);
    assert.equal(ended.ended, 1);
    await waitFor('bob\'s allocation to go', async () =>
      (await ctlJson(['allocations', '--user', 'bob', ...auth()])).allocations.length === 0);
    const unknown = await ctl(['end', '--allocation', bobId, ...auth()]);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /answered 404/);
    await idOf('carol');
    assert.match(await ctlOk(['end', '--user', 'carol', ...auth()]),
      /^(ended \d+ allocations? of user carol|ending the allocations of user carol)\n$/);
    await waitFor('carol\'s allocation to go', async () =>
      (await ctlJson(['allocations', '--user', 'carol', ...auth()])).allocations.length === 0);
  });

  it('revoke ends the username\'s allocation and refuses it', async () => {
    const dave = await lib.relayedFlow(server, 'dave', peer);
    flows.push(dave);
    await waitFor('dave\'s allocation', async () =>
      (await ctlJson(['allocations', '--user', 'dave', ...auth()])).allocations.length === 1);
    assert.equal(await ctlOk(['revoke', dave.username, ...auth()]),
      `revoked ${dave.username}: refused from now on, its allocations ended\n`);
    await waitFor('dave\'s allocation to go', async () =>
      (await ctlJson(['allocations', '--user', 'dave', ...auth()])).allocations.length === 0);
    const bad = await ctl(['revoke', 'not-a-rest-username', ...auth()]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /answered 400: parameter 'username' must be a REST username/);
  });

  it('config: the effective configuration with secrets masked', async () => {
    const j = await ctlJson(['config', ...auth()]);
    assert.deepEqual(j.auth.secrets, ['***']);
    assert.equal(j.workers, 2);
    assert.ok(j.api.keys.every((k) => k.key === '***'), JSON.stringify(j.api.keys));
    assert.equal(j.calls.token_secret, '***');
    const table = await ctlOk(['config', ...auth()]);
    assert.match(table, /^auth\.secrets +\*\*\*$/m);
    assert.match(table, /^workers +2$/m);
    assert.match(table, /^relay\.ports\.min +61000$/m);
    for (const secret of [lib.SECRET, lib.ADMIN_KEY, lib.APP_KEY, lib.TOKEN_SECRET]) {
      assert.ok(!table.includes(secret) && !JSON.stringify(j).includes(secret), secret);
    }
  });

  it('reload, the key from the configuration and from the environment', async () => {
    const out = await ctlOk(['reload', '--config', server.configPath, '--url', server.url]);
    assert.match(out, /^reloaded: changed .*; waiting for a restart: .*\n$/);
    // The state directory's key survives a reload that does not list it.
    await ctlOk(['status', '--url', server.url, '--key',
      fs.readFileSync(path.join(server.stateDir, 'admin-key'), 'utf8').trim()]);
    await ctlOk(['status', '--url', server.url], { envKey: lib.ADMIN_KEY });
  });

  it('errors: wrong key, a key without admin, unreachable relay, bad arguments', async () => {
    const wrong = await ctl(['status', '--url', server.url, '--key', 'wrong-key-0123456789']);
    assert.equal(wrong.code, 4);
    assert.match(wrong.stderr, /refused the key from --key \(401\)/);
    const app = await ctl(['status', '--url', server.url], { envKey: lib.APP_KEY });
    assert.equal(app.code, 4);
    assert.match(app.stderr, /refused the key from CALLRELAY_ADMIN_KEY \(403\)/);
    const gone = `http://127.0.0.1:${await lib.closedPort()}`;
    const unreachable = await ctl(['status', '--url', gone, '--key', lib.ADMIN_KEY]);
    assert.equal(unreachable.code, 3);
    assert.ok(unreachable.stderr.includes(gone), unreachable.stderr);
    const mistakes = [['stats'], ['end'], ['status', '--user', 'x'], ['drain', '--deadline', 'x']];
    for (const args of mistakes) {
      const r = await ctl(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: callrelay ctl/);
    }
    assert.match(await ctlOk(['--help']), /^usage: callrelay ctl COMMAND/);
  });

  it('drain: new allocations refused, status says so', async () => {
    const out = await ctlOk(['drain', '--deadline', '120', ...auth()]);
    assert.match(out, /^draining: new allocations are refused; the others end within /);
    const s = await ctlJson(['status', ...auth()]);
    assert.equal(s.draining, true);
    assert.match(await ctlOk(['status', ...auth()]), /^draining +yes/m);
  });
});

describe('callrelay ctl over https', { timeout: 120000 }, () => {
  let server;
  let cert;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'callrelay-ctl-tls-'));
    cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    childProcess.execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
      'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext',
      'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'pipe' });
    server = await lib.startServer({
      scheme: 'https', http: `{listen: "127.0.0.1:0", tls: {cert: ${cert}, key: ${key}}}`,
    });
  });
  after(async () => {
    if (server) await server.stop();
    if (cert) fs.rmSync(path.dirname(cert), { recursive: true, force: true });
  });

  it('verifies the certificate unless --insecure', async () => {
    const args = ['status', '--url', server.url, '--key', lib.ADMIN_KEY];
    const untrusted = await lib.ctl(args, { env: { SSL_CERT_FILE: '/nonexistent.pem' } });
    assert.equal(untrusted.code, 3, untrusted.stderr);
    assert.match(untrusted.stderr, /certificate/);
    assert.match(await lib.ctlOk(args, { env: { SSL_CERT_FILE: cert } }), /^workers +2$/m);
    assert.match(await lib.ctlOk([...args, '--insecure']), /^workers +2$/m);
  });
});
