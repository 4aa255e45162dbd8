// The live status page (/status) in headless Chromium, against a real callrelay: two users in a
// relay-only call (fake audio and video through the SDK, so the call's allocations carry
// traffic), then the page loaded from callrelay's HTTP origin under its strict CSP, the admin key
// entered: the tables show the call and its allocations, their bytes and rates change between
// polls, the top users are summed from them, and the recent errors are the relay's. A wrong key
// and a key without admin rights show a clear message and the key prompt again; a drain shows
// its banner; with http.status_page: false, /status answers 404. Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');

const harness = require('./harness.js');
const signal = require('./signal.js');

const { show } = harness;
const API_KEY = 'status-test-api-key-0123456789';
const ADMIN_KEY = 'status-test-admin-key-0123456789';
const TOKEN_SECRET = 'status-test-signaling-secret-0123456789abcdef';
const MEDIA = { audio: true, video: true, relayOnly: true };
const WAIT_MS = 30000;  // generous: a shared 2-core machine runs this next to builds

describe('the live status page in Chromium', () => {
  let workDir;
  let server;
  let web;
  let browser;
  let failed = false;
  const contexts = new Set();
  const consoleLines = [];

  before(async () => {
    workDir = harness.makeWorkDir();
    web = await harness.startWebServer();
    server = await harness.startServer(workDir, {
      credentialApi: { key: API_KEY, origin: web.origin },
      adminKey: ADMIN_KEY,
      calls: {
        enabled: true, ring_timeout_s: 30, connect_timeout_s: 30, credential_ttl_s: 600,
        token_secret: TOKEN_SECRET, records: { path: path.join(workDir, 'calls.sqlite3') },
      },
    });
    const { chromium } = harness.loadPlaywright();
    browser = await chromium.launch({
      executablePath: harness.CHROMIUM, headless: true,
      args: [...harness.CHROMIUM_ARGS, ...harness.FAKE_MEDIA_ARGS],
    });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    await harness.teardown({ web, server, workDir }, failed);
  });

  const guarded = (fn) => harness.guarded(() => { failed = true; }, fn);
  const statusUrl = (p = '/status') => `http://127.0.0.1:${server.httpPort}${p}`;

  // A user's page connected through the SDK (served by callrelay) with a minted token.
  async function openDevice(user) {
    const context = await browser.newContext();
    contexts.add(context);
    await context.grantPermissions(['camera', 'microphone']);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.log(`[${user}] page error: ${err}`));
    await page.goto(`${web.origin}/calls_test.html`);
    await page.waitForFunction(() => window.callsTest !== undefined, null, { timeout: 10000 });
    await page.evaluate((u) => window.callsTest.load(u), statusUrl('/sdk/callrelay.js'));
    const url = `ws://127.0.0.1:${server.httpPort}/api/v1/signal`;
    const welcome = await page.evaluate(([u, t]) => window.callsTest.connect(u, t),
      [url, signal.mintToken(TOKEN_SECRET, user)]);
    assert.equal(welcome.user, user, `welcome: ${show(welcome)}`);
    return { user, page, run: (fn, arg) => page.evaluate(fn, arg) };
  }

  // alice calls bob, bob accepts, both reach 'active' with media flowing. Returns the call id.
  async function establishCall() {
    const alice = await openDevice('status-alice');
    const bob = await openDevice('status-bob');
    const out = await alice.run(([t, o]) => window.callsTest.call(t, o), ['status-bob', MEDIA]);
    assert.ok(out.id, `call: ${show(out)}`);
    await bob.run((k) => window.callsTest.waitIncoming(k), 1);
    const accepted = await bob.run(([i, o]) => window.callsTest.accept(i, o), [out.id, MEDIA]);
    assert.equal(accepted.ok, true, `accept: ${show(accepted)}`);
    for (const d of [alice, bob]) {
      await d.run(([i, s]) => window.callsTest.waitState(i, s), [out.id, 'active']);
      const m = await d.run((i) => window.callsTest.media(i), out.id);
      assert.equal(m.error, undefined, `${d.user}: ${show(m)}`);
      harness.assertRelayPair(m.pair, d.user);
    }
    return out.id;
  }

  // A fresh context (empty sessionStorage) on /status; the main document's response checked.
  async function openStatusPage() {
    const context = await browser.newContext();
    contexts.add(context);
    const page = await context.newPage();
    page.on('console', (msg) => consoleLines.push(msg.text()));
    page.on('pageerror', (err) => consoleLines.push(`page error: ${err}`));
    const res = await page.goto(statusUrl());
    assert.equal(res.status(), 200, 'GET /status');
    const headers = res.headers();
    assert.match(headers['content-security-policy'] || '', /default-src 'self'/, show(headers));
    assert.equal(headers['access-control-allow-origin'], undefined, 'no CORS on the page');
    await page.waitForSelector('#key-form:not([hidden])', { timeout: WAIT_MS });
    return page;
  }

  async function enterKey(page, key) {
    await page.fill('#key-input', key);
    await page.click('#key-submit');
  }

  // The rows of a table as [{ id, fields: { name: { text, value } } }].
  function rows(page, table) {
    return page.$$eval(`#${table} tbody tr:not(.note)`, (trs) => trs.map((tr) => {
      const fields = {};
      for (const td of tr.cells) {
        const v = td.dataset.value;
        fields[td.dataset.field] = { text: td.textContent, value: v === undefined ? null : Number(v) };
      }
      return { id: tr.dataset.id, fields };
    }));
  }

  // Polls the page until check(rows of `table`, polls done) returns a value, or fails.
  async function waitRows(page, table, what, check) {
    const deadline = Date.now() + WAIT_MS;
    let last = [];
    for (;;) {
      last = await rows(page, table);
      const polls = Number(await page.evaluate(() => document.body.dataset.polls || 0));
      const v = check(last, polls);
      if (v !== undefined) return v;
      if (Date.now() > deadline) assert.fail(`${what} within ${WAIT_MS} ms; ${table}: ${show(last)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const callAllocations = (all, id) => all.filter((r) => r.fields.call.text === id);
  const sum = (rs, name) => rs.reduce((n, r) => n + (r.fields[name].value || 0), 0);

  // An error line for the page's recent errors: a reload of a broken file is rejected whole
  // (logged as reload.rejected), then the file is put back.
  async function provokeReloadError() {
    const file = path.join(workDir, 'callrelay.yaml');
    const good = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, `${good}status_test_unknown_key: 1\n`);
    try {
      const r = await signal.apiRequest(server.httpPort, 'POST', '/api/v1/admin/reload', ADMIN_KEY);
      assert.notEqual(r.status, 200, `a broken file is not reloaded: ${r.text}`);
    } finally {
      fs.writeFileSync(file, good);
    }
  }

  it('shows the live call, its allocations and their changing numbers', { timeout: 180000 }, () => guarded(async () => {
    await provokeReloadError();
    const callId = await establishCall();
    const page = await openStatusPage();
    await enterKey(page, ADMIN_KEY);
    await page.waitForSelector('body[data-connection="live"]', { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => sessionStorage.length), 1, 'the key is kept in sessionStorage');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'and nowhere else');

    const call = await waitRows(page, 'calls', `call ${callId} shown active`, (rs) =>
      rs.find((r) => r.id === callId && r.fields.state.text === 'active'));
    assert.equal(call.fields.caller.text, 'status-alice');
    assert.equal(call.fields.callee.text, 'status-bob');
    assert.ok(call.fields.allocations.value >= 2, `the call's allocations: ${show(call)}`);

    // The call's allocations, with traffic: bytes grow and a rate shows between two polls.
    const first = await waitRows(page, 'allocations', 'the call\'s allocations carrying bytes', (rs, polls) => {
      const mine = callAllocations(rs, callId);
      return mine.length >= 2 && sum(mine, 'bytes_client_to_peer') > 0 ? { mine, polls } : undefined;
    });
    for (const a of first.mine) {
      assert.match(a.id, /^\d+-\d+$/, `allocation id: ${show(a)}`);
      assert.equal(a.fields.transport.text, 'udp', show(a));
      assert.match(a.fields.client.text, /^\d+\.\d+\.\d+\.\d+:\d+$/, show(a));  // as the relay saw it
      assert.match(a.fields.relayed.text, /127\.0\.0\.1:\d+/, show(a));
    }
    const before = sum(first.mine, 'bytes_client_to_peer') + sum(first.mine, 'bytes_peer_to_client');
    await waitRows(page, 'allocations', 'the bytes to grow on a later poll', (rs, polls) => {
      const mine = callAllocations(rs, callId);
      const now = sum(mine, 'bytes_client_to_peer') + sum(mine, 'bytes_peer_to_client');
      return polls > first.polls && now > before ? true : undefined;
    });
    const rated = await waitRows(page, 'allocations', 'a rate on the call\'s allocations', (rs) => {
      const mine = callAllocations(rs, callId);
      return sum(mine, 'rate_client_to_peer') > 0 && sum(mine, 'rate_peer_to_client') > 0 ? mine : undefined;
    });
    const users = new Set(rated.map((a) => a.fields.user.text));

    // The top users are the allocations' users, summed: a user of the call leads with a rate.
    const top = await waitRows(page, 'top-users', 'a top user with bandwidth', (rs) =>
      (rs.length > 0 && rs[0].fields.rate_total.value > 0 ? rs : undefined));
    assert.ok(users.has(top[0].id), `top user ${top[0].id} is one of ${[...users]}`);
    for (let i = 1; i < top.length; ++i) {
      assert.ok(top[i - 1].fields.rate_total.value >= top[i].fields.rate_total.value, show(top));
    }

    // The summary and the recent errors are the admin API's.
    const api = await signal.apiRequest(server.httpPort, 'GET', '/api/v1/admin/status', ADMIN_KEY);
    assert.equal(api.status, 200, api.text);
    const summary = await page.$eval('#summary', (dl) => dl.textContent);
    assert.ok(summary.includes(api.body.version), `version ${api.body.version} in ${summary}`);
    assert.match(await page.$eval('#summary [data-field="state"]', (e) => e.textContent), /serving/);
    await page.waitForFunction(() => {
      const f = (n) => document.querySelector(`#summary [data-field="${n}"]`).textContent;
      return /^1 active/.test(f('calls')) && Number(f('signaling')) >= 2 &&
        /^[1-9]\d* \(udp [1-9]/.test(f('allocations'));
    }, null, { timeout: WAIT_MS });
    // Newer lines may join while this runs: every line the API listed must show, newest first.
    const expected = api.body.recent_errors.map((e) => e.message);
    await waitRows(page, 'errors', `the recent errors ${show(expected)}`, (rs) => {
      const shown = rs.map((r) => r.fields.message.text);
      return expected.every((m) => shown.includes(m)) ? true : undefined;
    });
    const times = (await rows(page, 'errors')).map((r) => r.fields.time.text);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    assert.ok(api.body.recent_errors.some((e) => e.event === 'reload.rejected'), show(api.body));
    const rejected = (await rows(page, 'errors')).find((r) => r.fields.event.text === 'reload.rejected');
    assert.ok(rejected, 'the rejected reload is among the recent errors');
    assert.equal(rejected.fields.level.text, 'error');
    assert.match(rejected.fields.time.text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    assert.equal(await page.isVisible('#message'), false, 'no error message while live');
    assert.ok(!consoleLines.some((l) => /Content Security Policy|page error/.test(l)),
      `no CSP violation or script error: ${show(consoleLines)}`);
  }));

  it('a wrong key and a non-admin key show why, and the key prompt again', { timeout: 60000 }, () => guarded(async () => {
    const page = await openStatusPage();
    await enterKey(page, 'not-the-admin-key-0123456789');
    await page.waitForSelector('#key-form:not([hidden])', { timeout: WAIT_MS });
    await page.waitForSelector('#message:not([hidden])', { timeout: WAIT_MS });
    const wrong = await page.textContent('#message');
    assert.match(wrong, /refused the key \(401/, wrong);
    assert.equal(await page.isVisible('#dashboard'), false);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');

    await enterKey(page, API_KEY);  // valid, but not marked admin: true
    await page.waitForFunction(() => /403/.test(document.getElementById('message').textContent),
      null, { timeout: WAIT_MS });
    assert.match(await page.textContent('#message'), /admin/);
    assert.equal(await page.isVisible('#key-form'), true);

    // The right key still works in the same page afterwards (until a burst of failures would
    // make the relay answer 429 for a while, which the page explains the same way).
    await enterKey(page, ADMIN_KEY);
    await page.waitForSelector('body[data-connection="live"]', { timeout: WAIT_MS });
    assert.equal(await page.isVisible('#message'), false);
    await page.click('#forget-key');
    await page.waitForSelector('#key-form:not([hidden])', { timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'Change key forgets it');
  }));

  // The page's side of a relay with many allocations, and of hostile names: the allocation list
  // is answered here (6000 entries, one user name that is markup), the rest by the relay.
  it('a big allocation list is fetched less often, drawn in part, and names stay text', { timeout: 90000 }, () => guarded(async () => {
    const page = await openStatusPage();
    const hostile = '<img src=x id=injected>';
    const big = Array.from({ length: 6000 }, (_, i) => ({
      id: `0-${i}`, user: i === 0 ? hostile : `user${i % 50}`, transport: 'udp', family: 'ipv4',
      client: '127.0.0.1:5000', relayed: ['127.0.0.1:61000'], age_s: 1,
      bytes: { client_to_peer: i, peer_to_client: i },
      rate_bytes_per_s: { client_to_peer: i === 0 ? 1e6 : i, peer_to_client: 0 },
      quality: null, call_id: null,
    }));
    const served = { allocations: 0, status: 0 };
    page.on('request', (req) => {
      const m = new URL(req.url()).pathname.match(/^\/api\/v1\/admin\/(status|allocations)$/);
      if (m) served[m[1]] += 1;
    });
    await page.route('**/api/v1/admin/allocations', (route) => route.fulfill({
      status: 200, contentType: 'application/json', body: JSON.stringify({ allocations: big }),
    }));
    await enterKey(page, ADMIN_KEY);
    await page.waitForFunction(() => Number(document.body.dataset.polls || 0) >= 11, null,
      { timeout: WAIT_MS * 2 });
    assert.ok(served.allocations * 2 < served.status, `fetched less often: ${show(served)}`);
    assert.ok(served.allocations >= 2, `but still fetched again: ${show(served)}`);
    assert.equal(await page.textContent('#allocations-count'), '(6000, refreshed every 5 s)');
    const drawn = await rows(page, 'allocations');
    assert.equal(drawn.length, 300, 'at most 300 rows drawn');
    assert.match(await page.textContent('#allocations tr.note'), /^5700 more not shown$/);
    assert.equal(drawn[0].fields.user.text, hostile, 'highest rate first, the name as text');
    const top = await rows(page, 'top-users');
    assert.equal(top[0].id, hostile);
    assert.equal(await page.$('#injected'), null, 'no element made from a user name');
  }));

  // Last on this server: a drain cannot be undone.
  it('shows the draining state and its deadline', { timeout: 60000 }, () => guarded(async () => {
    const page = await openStatusPage();
    await enterKey(page, ADMIN_KEY);
    await page.waitForSelector('body[data-connection="live"]', { timeout: WAIT_MS });
    assert.equal(await page.isVisible('#draining'), false, 'no banner while serving');
    const r = await signal.apiRequest(server.httpPort, 'POST', '/api/v1/admin/drain', ADMIN_KEY,
      { deadline_s: 600 });
    assert.equal(r.status, 202, `POST /api/v1/admin/drain: ${r.text}`);  // accepted: it runs on
    await page.waitForSelector('#draining:not([hidden])', { timeout: WAIT_MS });
    assert.match(await page.textContent('#draining'), /^Draining: .* within (9|10) min/);
    assert.equal(await page.textContent('#summary [data-field="state"]'), 'draining');
  }));

  it('http.status_page: false answers 404', { timeout: 60000 }, () => guarded(async () => {
    const dir = harness.makeWorkDir();
    const off = await harness.startServer(dir, { adminKey: ADMIN_KEY, http: { status_page: false } });
    try {
      for (const p of ['/status', '/status/', '/status/status.js']) {
        const res = await fetch(`http://127.0.0.1:${off.httpPort}${p}`);
        assert.equal(res.status, 404, `GET ${p} with status_page: false`);
      }
      // The admin API itself is unaffected.
      const api = await signal.apiRequest(off.httpPort, 'GET', '/api/v1/admin/status', ADMIN_KEY);
      assert.equal(api.status, 200, api.text);
      for (const p of ['/status', '/status/status.js', '/status/status.css']) {
        const res = await fetch(statusUrl(p));
        assert.equal(res.status, 200, `GET ${p} with the default status_page: true`);
      }
    } finally {
      await harness.stopServerChecked(off);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }));
});
