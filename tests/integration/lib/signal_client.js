// A signaling client for callrelay's WebSocket endpoint (the README, section Calls), for tests that drive
// calls without a browser, plus the HS256 signaling token minter every node test shares.
//
//   const alice = await SignalClient.connect(`ws://127.0.0.1:${port}`, mintToken(secret, 'alice'));
//   const { call } = await alice.invite('bob');           // the ack names the call
//   const invite = await bob.next('invite', { call });    // bob's devices ring
//   await bob.accept(call);
//   await alice.next('accepted', { call });
//
// Every helper sends one numbered message (seq 1, 2, 3... on this device session) and resolves
// to the server's answer to it: the `ack` or the `error` carrying the same seq. Server
// messages are kept by type (received(type)) and can be awaited (next(type, match)).
'use strict';

const crypto = require('node:crypto');

const { WsClient, MessageQueue } = require('./ws_client.js');

function base64url(data) {
  return Buffer.from(data).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/// A signaling JWT for `user`: HS256 over `secret` unless options.alg is 'none' (unsigned).
/// options: ttl (seconds, default 600; negative for an expired token), tenant, alg, sub
/// (overrides user, null leaves it out).
function mintToken(secret, user, options = {}) {
  const alg = options.alg || 'HS256';
  const now = Math.floor(Date.now() / 1000);
  const claims = { iat: now, exp: now + (options.ttl ?? 600) };
  const sub = options.sub === undefined ? user : options.sub;
  if (sub !== null) claims.sub = sub;
  if (options.tenant) claims.tenant = options.tenant;
  const signingInput = `${base64url(JSON.stringify({ alg, typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
  if (alg === 'none') return `${signingInput}.`;
  const signature = crypto.createHmac('sha256', secret).update(signingInput).digest();
  return `${signingInput}.${base64url(signature)}`;
}

/// A minimal SDP of the shape the server checks (RFC 8866: v=, o=, s=, an m= line).
function dummySdp(kind = 'offer') {
  return ['v=0', `o=- ${Date.now()} 1 IN IP4 127.0.0.1`, `s=${kind}`, 't=0 0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=rtpmap:111 opus/48000/2', ''].join('\r\n');
}

const kAudio = { audio: true, video: false };

/// One device: a WebSocket session on /api/v1/signal.
class SignalClient {
  /// Connects with a JWT (or { resume, lastSseq } for a resumed session) and resolves once the
  /// server's `welcome` arrived. `base` is ws://HOST:PORT (the path is added). Rejects with the
  /// WebSocket error (its `status` and `body` say why an upgrade was refused).
  static async connect(base, token, options = {}) {
    const query = options.resume
      ? `resume=${encodeURIComponent(options.resume)}&last_sseq=${options.lastSseq ?? 0}`
      : `token=${encodeURIComponent(token)}`;
    const ws = await WsClient.connect(`${base.replace(/\/$/, '')}/api/v1/signal?${query}`, options);
    const client = new SignalClient(ws, options.name);
    client.welcome = (await client.next('welcome', {}, options.timeoutMs ?? 5000)).payload;
    return client;
  }

  constructor(ws, name) {
    this.ws = ws;
    this.name = name || 'device';
    this.seq = 0;
    this.byType = new Map();
    this.all = [];
    this.queue = new MessageQueue((m) => JSON.stringify(m).slice(0, 300));
    this.defaultTimeoutMs = 5000;
    ws.on('message', (text, binary) => this.onMessage(text, binary));
    ws.on('close', (info) => this.queue.end(
      new Error(`${this.name}: signaling closed (${info.code} ${info.reason})`)));
  }

  get device() { return this.welcome && this.welcome.device; }
  get user() { return this.welcome && this.welcome.user; }

  onMessage(text, binary) {
    let msg;
    try {
      msg = binary ? { type: '(binary)', bytes: text.length } : JSON.parse(text);
    } catch {
      msg = { type: '(not JSON)', text };
    }
    this.all.push(msg);
    if (!this.byType.has(msg.type)) this.byType.set(msg.type, []);
    this.byType.get(msg.type).push(msg);
    this.queue.push(msg);
  }

  /// Every server message of `type` received so far (none consumed by next()).
  received(type) { return this.byType.get(type) || []; }

  /// Resolves to (and consumes) the next server message of `type` whose fields equal those of
  /// `match` (e.g. { call }, or { call, 'payload.outcome': 'missed' } with dotted paths).
  next(type, match = {}, timeoutMs = this.defaultTimeoutMs) {
    const ok = (m) => m.type === type && Object.entries(match).every(([path, want]) =>
      path.split('.').reduce((v, k) => (v == null ? undefined : v[k]), m) === want);
    return this.queue.next(ok, timeoutMs, `${this.name}: '${type}' ${JSON.stringify(match)}`);
  }

  /// Sends {type, seq, call, payload} as it is (no wait) and returns the seq used.
  send(type, call, payload) {
    const msg = { type, seq: ++this.seq };
    if (call !== undefined) msg.call = call;
    if (payload !== undefined) msg.payload = payload;
    this.ws.send(JSON.stringify(msg));
    return msg.seq;
  }

  /// Sends a message and resolves to the server's answer with the same seq (`ack` or `error`).
  request(type, call, payload, timeoutMs = this.defaultTimeoutMs) {
    const seq = this.send(type, call, payload);
    return this.queue.next((m) => (m.type === 'ack' || m.type === 'error') && m.seq === seq,
      timeoutMs, `${this.name}: the answer to ${type} seq ${seq}`);
  }

  invite(to, media = kAudio) { return this.request('invite', undefined, { to, media }); }
  ringing(call) { return this.request('ringing', call); }
  accept(call, media = kAudio) { return this.request('accept', call, { media }); }
  decline(call, reason) { return this.request('decline', call, reason ? { reason } : {}); }
  cancel(call) { return this.request('cancel', call); }
  hangup(call, reason = 'user-hangup') { return this.request('hangup', call, { reason }); }
  offer(call, sdp = dummySdp('offer'), restart = false) {
    return this.request('offer', call, { sdp, restart });
  }
  answer(call, sdp = dummySdp('answer')) { return this.request('answer', call, { sdp }); }
  candidate(call, candidate, sdpMid = '0', sdpMLineIndex = 0) {
    return this.request('candidate', call, { candidate, sdpMid, sdpMLineIndex });
  }
  iceRestart(call) { return this.request('ice-restart', call); }
  connected(call) { return this.request('connected', call); }

  /// The close handshake; resolves to {code, reason, clean}.
  close(code = 1000, reason = '') { return this.ws.close(code, reason); }
}

/// Throws unless `reply` is the ack of a request (the error's code and reason otherwise).
function expectAck(reply, what = 'request') {
  if (!reply || reply.type !== 'ack') {
    throw new Error(`${what}: expected an ack, got ${JSON.stringify(reply)}`);
  }
  return reply;
}

module.exports = { SignalClient, mintToken, base64url, dummySdp, expectAck };
