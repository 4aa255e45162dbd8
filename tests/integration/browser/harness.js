// Node side helpers for the Chromium test: start the server under test on a loopback port
// (callrelay by default, coturn with CALLRELAY_TEST_SERVER=coturn, as in ../lib/common.sh),
// serve the test pages (pages/) over http://127.0.0.1, mint TURN REST credentials. Runs on node 18.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { logConfigLine, lineRe, listeningPort, checkJsonLog } = require('../lib/server_log.js');

const SECRET = 'testsecret';
const REALM = 'callrelay';
/// This directory: package.json (the playwright-core pin), node_modules/ after `npm ci`, pages/.
const BROWSER_DIR = process.env.CALLRELAY_BROWSER_DIR || __dirname;
const PAGES_DIR = path.join(BROWSER_DIR, 'pages');

/// TURN REST credential: username "<expiry>:<user>", password base64(HMAC-SHA1(secret, username)).
function mintCredential(user, expiresInSeconds, secret = SECRET) {
  const username = `${Math.floor(Date.now() / 1000) + expiresInSeconds}:${user}`;
  const credential = crypto.createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.on('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/// Starts the server under test; resolves to { kind, port, httpPort, alive(), log(), stop() }.
/// With options.credentialApi = { key, origin } (callrelay only) the server also serves its
/// HTTP listener on a loopback port (httpPort) with the credential endpoint: one API key
/// allowed from the browser origin `origin`, and TURN URIs derived from the listeners (without
/// streams the server then has no TCP listener, so the URIs name the UDP listener only).
/// With options.streams = { cert, key } (callrelay only) it also listens on TCP and TLS
/// (tcpPort, tlsPort), with { records: 'packed' } packing frames into TLS records
/// (tls.records); options.logLevel sets its log level (default info).
/// With options.calls (callrelay only; an object of `calls:` keys, e.g. { ring_timeout_s: 4,
/// token_secret: '...', records: { path } }) the configuration gets that `calls:` section.
/// With options.apiKey (callrelay only, without credentialApi) the `api:` section has that one
/// key and no `uris`, so TURN URIs (call credentials, preflights) are derived from the
/// listeners: turn:...?transport=udp, and with streams turn:...?transport=tcp and turns:.
/// With options.adminKey (callrelay only) the `api:` section also has that key with admin: true
/// (the operator endpoints under /api/v1/admin/ and the status page's data). With options.http
/// (callrelay only; an object of `http:` keys, e.g. { status_page: false }) those keys join
/// the `http:` section.
/// With options.unreachableUdpPort (callrelay only; with streams and apiKey) the TURN URIs
/// (api.uris) name UDP at 127.0.0.1:that port, where the test holds a socket that never answers
/// (a network that drops UDP), and TCP and TLS at their listeners, on ports chosen here.
/// Ports chosen here before the server starts (coturn's, the fixed stream listeners) may be
/// taken by a test running in parallel before the server binds them: then it starts again on
/// other ports.
async function startServer(workDir, options = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(workDir, options);
    } catch (e) {
      if (attempt === 3 || !/Address already in use/.test(e.message)) throw e;
    }
  }
}

async function startServerOnce(workDir, options) {
  const kind = process.env.CALLRELAY_TEST_SERVER || 'callrelay';
  let child;
  let readyPattern;
  let port = 0;
  if (kind === 'callrelay') {
    const bin = process.env.CALLRELAY_BIN;
    if (!bin) throw new Error('CALLRELAY_BIN is not set (callrelay target not configured); or set CALLRELAY_TEST_SERVER=coturn');
    if (!fs.existsSync(bin)) throw new Error(`callrelay binary not found at ${bin}: build the callrelay target`);
    const stateDir = path.join(workDir, 'state');
    fs.mkdirSync(stateDir, { recursive: true });
    const config = path.join(workDir, 'callrelay.yaml');
    const api = options.credentialApi;
    const fixed = options.unreachableUdpPort ? { tcp: await freeTcpPort(), tls: await freeTcpPort() } : null;
    const streamListeners = options.streams ? streamListen(fixed) : (api ? ', tcp: []' : '');
    fs.writeFileSync(config, [
      `listen: {udp: ["127.0.0.1:0"${options.ipv6 ? ', "[::1]:0"' : ''}]${streamListeners}}`,
      'relay: {ports: {min: 61000, max: 65000}}',
      'workers: 2',
      `state_dir: ${stateDir}`,
      `realm: ${REALM}`,
      `auth: {secrets: ["${SECRET}"], separator: ":"}`,
      'peers: {allow: ["127.0.0.0/8", "::1/128"]}   # loopback peers: test config only',
      logConfigLine(options.logLevel || 'info'),
      `http: {listen: "127.0.0.1:0"${httpKeys(options.http)}}   # never the default 9641: tests run in parallel`,
      ...(api ? credentialApiConfig(api, options.adminKey) : []),
      ...(!api && options.apiKey ? [`api: {keys: [{name: browser-test, key: "${options.apiKey}"}${adminKeyEntry(options.adminKey)}]${fixed ? unreachableUdpUris(options.unreachableUdpPort, fixed) : ''}}`] : []),
      ...(!api && !options.apiKey && options.adminKey ? [`api: {keys: [${adminKeyEntry(options.adminKey).slice(2)}]}`] : []),
      ...(options.streams ? streamTlsConfig(options.streams) : []),
      ...(options.calls ? [`calls: ${JSON.stringify(options.calls)}   # JSON is YAML flow style`] : []),
      '',
    ].join('\n'));
    child = childProcess.spawn(bin, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    readyPattern = lineRe('ready');
  } else if (kind === 'coturn') {
    port = await freeUdpPort();
    child = childProcess.spawn('turnserver', [
      '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--no-tcp',
      '--relay-ip=127.0.0.1', '--min-port=61000', '--max-port=65000', '--use-auth-secret',
      `--static-auth-secret=${SECRET}`, `--realm=${REALM}`, '--allow-loopback-peers', '--no-cli',
      '--no-tls', '--no-dtls', '--relay-threads=2', `--pidfile=${path.join(workDir, 'pid')}`,
      `--userdb=${path.join(workDir, 'turndb')}`, '--log-file=stdout', '--simple-log', '--verbose',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    readyPattern = new RegExp(`UDP listener opened on: 127\\.0\\.0\\.1:${port}`);
  } else {
    throw new Error(`unknown CALLRELAY_TEST_SERVER '${kind}' (callrelay or coturn)`);
  }
  let output = '';
  let exited = null;
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve();
  }));
  const deadline = Date.now() + 10000;
  while (!readyPattern.test(output)) {
    if (exited) throw new Error(`${kind} exited during startup (${JSON.stringify(exited)}):\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${kind} not ready within 10 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let httpPort = null;
  const streamPorts = {};
  if (kind === 'callrelay' && options.streams) {
    for (const t of ['tcp', 'tls']) {
      const s = listeningPort(output, t, '127\\.0\\.0\\.1');
      if (!s) throw new Error(`callrelay logged no 'listening ${t} 127.0.0.1:PORT':\n${output}`);
      streamPorts[t] = s;
    }
  }
  if (kind === 'callrelay') {
    port = listeningPort(output, 'udp', '127\\.0\\.0\\.1');
    if (!port) throw new Error(`callrelay logged no 'listening udp 127.0.0.1:PORT':\n${output}`);
    if (options.ipv6) streamPorts.udp6 = ipv6UdpPort(output);
    if (options.credentialApi || options.apiKey || options.calls || options.adminKey || options.http) {
      httpPort = listeningPort(output, 'http', '127\\.0\\.0\\.1');
      if (!httpPort) throw new Error(`callrelay logged no 'listening http 127.0.0.1:PORT':\n${output}`);
    }
  }
  return {
    kind,
    port,
    httpPort,
    tcpPort: streamPorts.tcp,
    tlsPort: streamPorts.tls,
    udp6Port: streamPorts.udp6,  // options.ipv6: the [::1] UDP listener
    alive: () => exited === null,
    exitStatus: () => exited,
    log: () => output,
    async stop() {
      if (exited) return;
      // SIGINT stops at once; SIGTERM would drain while the browsers' allocations live.
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}

/// startServer's options.ipv6 (callrelay only): the port of the extra `[::1]:0` UDP listener.
function ipv6UdpPort(output) {
  const p = listeningPort(output, 'udp', '\\[::1\\]');
  if (!p) throw new Error(`callrelay logged no 'listening udp [::1]:PORT':\n${output}`);
  return p;
}

/// The api: config lines for startServer's credentialApi option (and its adminKey).
function credentialApiConfig(api, adminKey) {
  return [
    'api:',
    `  keys: [{name: browser-test, key: "${api.key}", max_ttl: 3600, allowed_origins: ["${api.origin}"]}${adminKeyEntry(adminKey)}]`,
  ];
}

/// startServer's adminKey option: ', {...}' to append to api.keys (nothing without a key).
function adminKeyEntry(adminKey) {
  return adminKey ? `, {name: browser-admin, key: "${adminKey}", admin: true}` : '';
}

/// startServer's http option: ', key: value' for each of its keys (values as JSON, which YAML
/// flow style reads).
function httpKeys(http) {
  return Object.entries(http || {}).map(([k, v]) => `, ${k}: ${JSON.stringify(v)}`).join('');
}

/// startServer's streams option ({ cert, key }: PEM files): TCP and TLS listeners on
/// 127.0.0.1:0 (tcpPort, tlsPort) with that certificate; on fixed ports if given ({ tcp, tls }).
function streamListen(fixed = null) {
  if (fixed) return `, tcp: ["127.0.0.1:${fixed.tcp}"], tls: ["127.0.0.1:${fixed.tls}"]`;
  return ', tcp: ["127.0.0.1:0"], tls: ["127.0.0.1:0"]';
}

/// streams.records ('per_frame' or 'packed'), if given, becomes tls.records.
function streamTlsConfig(streams) {
  const records = streams.records ? `, records: ${streams.records}` : '';
  return [`tls: {cert: "${streams.cert}", key: "${streams.key}"${records}}`];
}

/// startServer's unreachableUdpPort option: the api.uris naming UDP there, TCP and TLS at the
/// fixed stream listeners.
function unreachableUdpUris(udpPort, fixed) {
  return `, uris: ["turn:127.0.0.1:${udpPort}?transport=udp", "turn:127.0.0.1:${fixed.tcp}?transport=tcp", ` +
    `"turns:127.0.0.1:${fixed.tls}?transport=tcp"]`;
}

function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const CONTENT_TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/// Serves the test pages of pages/ (relay_test.html, calls_test.html and their scripts) on
/// http://127.0.0.1:<port>; url is relay_test.html's, origin the server's.
function startWebServer() {
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url, 'http://127.0.0.1').pathname;
    if (urlPath === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (!/^\/[a-z0-9_]+\.(html|js)$/.test(urlPath) || !fs.existsSync(path.join(PAGES_DIR, urlPath))) {
      res.writeHead(404);
      res.end();
      return;
    }
    const body = fs.readFileSync(path.join(PAGES_DIR, urlPath));
    res.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(urlPath)] });
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}/relay_test.html`,
      origin: `http://127.0.0.1:${server.address().port}`,
      close: () => new Promise((r) => server.close(r)),
    }));
  });
}

/// playwright-core from node_modules/ here (installed by `npm ci` in this directory), with a
/// clear error.
function loadPlaywright() {
  const modulePath = path.join(BROWSER_DIR, 'node_modules', 'playwright-core');
  if (!fs.existsSync(modulePath)) {
    throw new Error(`playwright-core is missing at ${modulePath}: run \`npm ci\` in ${BROWSER_DIR} first`);
  }
  return require(modulePath);
}

function makeWorkDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'callrelay-browser-'));
}

const CHROMIUM = process.env.CALLRELAY_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // In a network namespace with only `lo`, Chromium gathers nothing without this.
  '--allow-loopback-in-peer-connection',
];
/// Extra Chromium arguments for the tests that make calls (fake camera and microphone).
const FAKE_MEDIA_ARGS = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];

function show(value) {
  return JSON.stringify(value, null, 1);
}

/// Launches headless Chromium (CHROMIUM_ARGS plus extraArgs, profile in workDir) and opens the
/// test page at url; resolves to { context, page } once the page's window.relayTest exists.
async function openTestPage(workDir, url, extraArgs = []) {
  const { chromium } = loadPlaywright();
  assert.ok(fs.existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}`);
  const context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs],
  });
  const page = await context.newPage();
  page.on('console', (msg) => console.log(`[page] ${msg.text()}`));
  await page.goto(url);
  await page.waitForFunction(() => window.relayTest !== undefined, null, { timeout: 10000 });
  return { context, page };
}

/// Stops the server and asserts it was still running and logged no sanitizer report; prints
/// the tail of its log if printLog or it had died. Returns its log.
async function stopServerChecked(server, printLog = false) {
  const wasAlive = server.alive();
  await server.stop();
  const log = server.log();
  if (printLog || !wasAlive) console.log(`---- ${server.kind} log ----\n${log.slice(-8000)}`);
  assert.ok(wasAlive, `${server.kind} died during the test: ${show(server.exitStatus())}`);
  assert.doesNotMatch(log, /AddressSanitizer|LeakSanitizer|runtime error:/, 'sanitizer report in the server log');
  if (server.kind === 'callrelay') {
    const bad = checkJsonLog(log);  // log.format json: every line one JSON object
    assert.equal(bad.length, 0, `server log lines that are not one JSON object:\n${bad.join('\n')}`);
  }
  return log;
}

/// after() of a browser suite: closes the browser and the web server, stops and checks the
/// server (stopServerChecked, its log printed if failed) and removes workDir; each if set.
async function teardown({ context, web, server, workDir }, failed) {
  if (context) await context.close();
  if (web) await web.close();
  if (server) await stopServerChecked(server, failed);
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
}

/// Runs fn; if it throws, calls onFailure() (to have the teardown print the server log) and rethrows.
async function guarded(onFailure, fn) {
  try {
    await fn();
  } catch (err) {
    onFailure();
    throw err;
  }
}

/// A selected candidate pair must be relay/relay (and, given protocol, reach the relay over it).
function assertRelayPair(pair, who, protocol) {
  assert.ok(pair, `${who}: no selected candidate pair`);
  assert.equal(pair.local, 'relay', `${who}: local candidate not relay: ${show(pair)}`);
  assert.equal(pair.remote, 'relay', `${who}: remote candidate not relay: ${show(pair)}`);
  if (protocol !== undefined) {
    assert.equal(pair.relayProtocol, protocol, `${who}: relay reached over ${pair.relayProtocol}: ${show(pair)}`);
  }
}

/// The result of relayTest.runDataChannel(servers, messages): no error, every message
/// received and echoed, relay/relay pairs on both peers.
function assertDataChannelExchange(r, messages, protocol) {
  assert.equal(r.error, undefined, `page error: ${r.error}; ${show(r.info)}`);
  assert.equal(r.receivedByB, messages, 'messages received by b');
  assert.equal(r.echoedToA, messages, 'echoes received by a');
  assertRelayPair(r.pairA, 'peer a', protocol);
  assertRelayPair(r.pairB, 'peer b', protocol);
}

/// The result of relayTest.runCall(servers, seconds): no error, relay/relay pairs, and audio
/// and video bytes received by both peers.
function assertCallMedia(r, protocol) {
  assert.equal(r.error, undefined, `page error: ${r.error}; ${show(r.info)}`);
  assertRelayPair(r.pairA, 'peer a', protocol);
  assertRelayPair(r.pairB, 'peer b', protocol);
  for (const [who, inbound] of [['a', r.inboundA], ['b', r.inboundB]]) {
    for (const kind of ['audio', 'video']) {
      assert.ok(inbound[kind], `peer ${who}: no inbound-rtp ${kind} stats`);
      assert.ok(inbound[kind].bytesReceived > 0, `peer ${who}: no ${kind} bytes received: ${show(inbound)}`);
    }
  }
}

module.exports = {
  mintCredential, startServer, startWebServer, loadPlaywright, makeWorkDir, BROWSER_DIR, PAGES_DIR,
  CHROMIUM, CHROMIUM_ARGS, FAKE_MEDIA_ARGS, show, openTestPage, stopServerChecked, teardown, guarded, assertRelayPair,
  assertDataChannelExchange, assertCallMedia,
};
