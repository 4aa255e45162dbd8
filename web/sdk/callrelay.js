// callrelay browser SDK: one ES module, no dependencies, no build step. Served by callrelay at
// /sdk/callrelay.js. Speaks the signaling protocol of callrelay's README (section Calls): JSON
// messages over one WebSocket, the server deciding every call state, and media over an
// RTCPeerConnection that uses the call-scoped TURN credentials the server hands out.
//
//   import { CallClient } from 'https://callrelay.example.com/sdk/callrelay.js';
//   const client = await CallClient.connect({ url: 'wss://callrelay.example.com/api/v1/signal', token });
//   const call = await client.call('bob', { audio: true, video: true });

/** @typedef {'ringing'|'connecting'|'active'|'reconnecting'|'ended'} CallState */
/**
 * @typedef {object} EndInfo
 * @property {string} outcome completed | declined | cancelled | missed | busy | failed |
 *   peer-disconnected (from the server), answered-elsewhere or closed (decided locally)
 * @property {string} reason e.g. user-hangup, ring-timeout, connect-timeout, ice-failed
 * @property {string} by caller | callee | server, or local
 */
/**
 * @typedef {object} MediaOptions
 * @property {boolean|MediaTrackConstraints} [audio=true] send audio (getUserMedia constraints)
 * @property {boolean|MediaTrackConstraints} [video=false] send video
 * @property {boolean} [relayOnly=false] iceTransportPolicy 'relay': media only through TURN
 * @property {number} [connectTimeoutMs] overrides the client's connectTimeoutMs for this call
 */

const kMaxIceRestarts = 3;
// Close codes after which the session cannot be resumed: its grace period is over (4408) or
// it was resumed on another connection (4409).
const kFinalCloseCodes = new Set([4408, 4409]);
const kLiveStates = new Set(['ringing', 'connecting', 'active']);

/** Minimal event emitter; a listener that throws is reported without breaking the SDK. */
class Emitter {
  constructor() { this._listeners = new Map(); }
  /**
   * Adds a listener. @param {string} event @param {Function} fn @returns {this}
   */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return this;
  }
  /** Removes a listener. @param {string} event @param {Function} fn @returns {this} */
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
    return this;
  }
  _emit(event, ...args) {
    for (const fn of [...(this._listeners.get(event) || [])]) {
      try {
        fn(...args);
      } catch (err) {
        queueMicrotask(() => { throw err; });
      }
    }
  }
}

/** An error the server answered to one of this client's messages. */
class SignalError extends Error {
  constructor(msg) {
    super(`${msg.code}${msg.field ? ` (${msg.field})` : ''}: ${msg.reason || 'refused'}`);
    this.name = 'SignalError';
    /** @type {string} invalid, unknown-call, not-participant, wrong-state, busy, ... */
    this.code = msg.code;
    this.field = msg.field;
  }
}

function candidateInit(c) {
  const init = { candidate: c.candidate };
  if (c.sdpMid != null) init.sdpMid = c.sdpMid;
  if (c.sdpMLineIndex != null) init.sdpMLineIndex = c.sdpMLineIndex;
  if (c.usernameFragment != null) init.usernameFragment = c.usernameFragment;
  return init;
}

function mediaFlags(opts) {
  return { audio: Boolean(opts.audio ?? true), video: Boolean(opts.video ?? false) };
}

/**
 * One call, outgoing (from CallClient.call) or incoming (the client's 'incoming' event).
 * Events: 'state' (CallState), 'ended' (EndInfo), 'ringing' (the callee's device alerts),
 * 'remote-stream' (MediaStream), 'peer-reconnecting', 'peer-resumed'.
 */
export class Call extends Emitter {
  constructor(client, { id, direction, from, to, media, iceServers, options }) {
    super();
    /** @type {string} the call id ("c_...") */
    this.id = id;
    /** @type {'outgoing'|'incoming'} */
    this.direction = direction;
    /** @type {string} the caller's user id */
    this.from = from;
    /** @type {string} the callee's user id */
    this.to = to;
    /** @type {{audio: boolean, video: boolean}} what the caller offered */
    this.media = media;
    /** @type {RTCPeerConnection|null} the peer connection (for getStats), once media starts */
    this.pc = null;
    /** @type {MediaStream|null} this side's camera and microphone */
    this.localStream = null;
    /** @type {MediaStream|null} the other side's media, once it arrives */
    this.remoteStream = null;
    /** @type {EndInfo|null} how the call ended, once it has */
    this.endInfo = null;
    this._client = client;
    this._state = 'ringing';
    this._beforeReconnect = null;
    this._iceServers = iceServers || [];
    this._options = options || {};
    this._remoteCandidates = [];
    this._localCandidates = [];
    this._canSendCandidates = false;
    this._sentConnected = false;
    this._restarts = 0;
    this._restarting = false;
    this._timers = { connect: null, restart: null };
    this._gaveUp = false;
    this._queue = Promise.resolve();  // server messages about this call, handled in order
  }

  /** @type {CallState} */
  get state() { return this._state; }

  /**
   * Answers an incoming call: asks for camera and microphone, then accepts. Resolves once the
   * server took the accept; rejects when another device of the user answered first (code
   * wrong-state from the server, or answered-elsewhere when that was known before sending) or
   * getUserMedia failed (the call then keeps ringing). @param {MediaOptions} [options]
   * @returns {Promise<void>}
   */
  async accept(options = {}) {
    if (this.direction !== 'incoming') throw new Error('only an incoming call can be accepted');
    if (this._state !== 'ringing') throw new Error(`cannot accept a call in state ${this._state}`);
    this._options = { ...options };
    await this._openMedia(options);
    if (this._state !== 'ringing') {  // ended meanwhile, e.g. answered on another device
      const err = new Error(`the call ended before it was accepted (${this.endInfo?.outcome})`);
      err.code = this.endInfo?.outcome;
      throw err;
    }
    this._createPeerConnection(this._iceServers);
    this._arm('connect', this._connectTimeoutMs(), () => this._connectTimedOut());
    await this._client._request('accept', this.id, { media: mediaFlags(options) });
  }

  /** Declines an incoming call on every device of the user. @param {string} [reason] */
  decline(reason) {
    this._client._post('decline', this.id, reason ? { reason } : {});
  }

  /** Cancels an outgoing call that still rings. */
  cancel() {
    this._client._post('cancel', this.id, {});
  }

  /**
   * Ends the call. @param {'user-hangup'|'ice-failed'|'media-error'} [reason='user-hangup']
   */
  hangup(reason = 'user-hangup') {
    this._client._post('hangup', this.id, { reason });
  }

  _setState(state) {
    if (state === this._state || this._state === 'ended') return;
    this._state = state;
    this._emit('state', state);
  }

  _connectTimeoutMs() {
    return this._options.connectTimeoutMs ?? this._client._options.connectTimeoutMs;
  }

  async _openMedia(options) {
    const constraints = { audio: options.audio ?? true, video: options.video ?? false };
    if (!constraints.audio && !constraints.video) return;
    this.localStream = await navigator.mediaDevices.getUserMedia(constraints);
    if (this._state === 'ended') this._stopMedia();
  }

  _createPeerConnection(iceServers) {
    const config = { iceServers };
    if (this._options.relayOnly) config.iceTransportPolicy = 'relay';
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    for (const track of this.localStream?.getTracks() || []) pc.addTrack(track, this.localStream);
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;  // end of candidates: nothing to send
      const c = candidateInit(e.candidate.toJSON());
      if (this._canSendCandidates) this._client._post('candidate', this.id, c);
      else this._localCandidates.push(c);
    };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || this.remoteStream || new MediaStream();
      if (!e.streams[0]) stream.addTrack(e.track);
      if (stream === this.remoteStream) return;
      this.remoteStream = stream;
      this._emit('remote-stream', stream);
    };
    pc.onconnectionstatechange = () => this._onConnectionState(pc.connectionState);
    return pc;
  }

  _flushLocalCandidates() {
    this._canSendCandidates = true;
    for (const c of this._localCandidates.splice(0)) this._client._post('candidate', this.id, c);
  }

  async _flushRemoteCandidates() {
    for (const c of this._remoteCandidates.splice(0)) await this._addCandidate(c);
  }

  async _addCandidate(c) {
    try {
      await this.pc.addIceCandidate(candidateInit(c));
    } catch (err) {
      this._client._emit('error', err);
    }
  }

  // Caller: the callee accepted; make the offer (RFC 8829 section 5.2) with the ice servers the
  // server issued for this call.
  async _onAccepted(payload) {
    if (this.pc) return;
    this._createPeerConnection(payload.ice_servers || []);
    for (const kind of ['audio', 'video']) {  // receive what the callee sends and we do not
      const sending = this.localStream?.getTracks().some((t) => t.kind === kind);
      if (payload.media?.[kind] && !sending) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    this._arm('connect', this._connectTimeoutMs(), () => this._connectTimedOut());
    await this._sendOffer(false);
  }

  async _sendOffer(restart) {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer(restart ? { iceRestart: true } : {}));
    if (this._state === 'ended') return;
    this._client._post('offer', this.id, { sdp: pc.localDescription.sdp, restart });
    this._flushLocalCandidates();
  }

  async _onOffer(payload) {
    if (!this.pc) return;
    await this.pc.setRemoteDescription({ type: 'offer', sdp: payload.sdp });
    await this._flushRemoteCandidates();
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    if (this._state === 'ended') return;
    this._client._post('answer', this.id, { sdp: this.pc.localDescription.sdp });
    this._flushLocalCandidates();
  }

  async _onAnswer(payload) {
    if (!this.pc) return;
    await this.pc.setRemoteDescription({ type: 'answer', sdp: payload.sdp });
    await this._flushRemoteCandidates();
  }

  async _onCandidate(payload) {
    if (!this.pc || !this.pc.remoteDescription) this._remoteCandidates.push(payload);
    else await this._addCandidate(payload);
  }

  _onConnectionState(s) {
    if (this._state === 'ended') return;
    if (s === 'connected') {
      this._disarm('connect');
      this._disarm('restart');
      this._restarts = 0;
      this._restarting = false;
      if (!this._sentConnected) {
        this._sentConnected = true;
        this._client._post('connected', this.id, {});
      }
    } else if (s === 'failed') {
      this._restartIce();
    }
  }

  // ICE restart (RFC 8445 section 9): only the caller offers; the callee asks with ice-restart.
  // Each attempt has connectTimeoutMs to succeed; after kMaxIceRestarts failed attempts in a row
  // the call is hung up. A call that never connected keeps its connect deadline meanwhile.
  _restartIce() {
    if (this._restarts >= kMaxIceRestarts) {
      this._giveUpIce();
      return;
    }
    this._restarts += 1;
    this._restarting = true;
    this._arm('restart', this._connectTimeoutMs(), () => this._restartIce());
    if (this.direction === 'outgoing') {
      this._sendOffer(true).catch((err) => this._client._emit('error', err));
    } else {
      this._client._post('ice-restart', this.id, {});
    }
  }

  // The callee asked for an ICE restart; ignored while one is under way.
  _onIceRestartRequest() {
    if (this.direction !== 'outgoing' || !this.pc || this._restarting) return;
    this._restartIce();
  }

  _connectTimedOut() {
    if (this.pc?.connectionState !== 'connected') this._giveUpIce();
  }

  // Hangs up with ice-failed, once.
  _giveUpIce() {
    this._disarm('connect');
    this._disarm('restart');
    if (this._gaveUp || this._state === 'ended') return;
    this._gaveUp = true;
    this.hangup('ice-failed');
  }

  _arm(name, ms, fn) {
    this._disarm(name);
    this._timers[name] = setTimeout(fn, ms);
  }

  _disarm(name) {
    if (this._timers[name] !== null) clearTimeout(this._timers[name]);
    this._timers[name] = null;
  }

  _stopMedia() {
    for (const track of this.localStream?.getTracks() || []) track.stop();
  }

  _end(info) {
    if (this._state === 'ended') return;
    this._disarm('connect');
    this._disarm('restart');
    this._stopMedia();
    if (this.pc) this.pc.close();
    this.endInfo = info;
    this._setState('ended');
    this._emit('ended', info);
  }

  _onDisconnected() {
    if (this._state === 'reconnecting' || !kLiveStates.has(this._state)) return;
    this._beforeReconnect = this._state;
    this._setState('reconnecting');
  }

  _onResumed() {
    if (this._state !== 'reconnecting') return;
    this._setState(this._beforeReconnect);
  }
}

/**
 * A signaling connection (one device of one user). Events: 'incoming' (Call), 'disconnected'
 * ({reason}: the session is gone, its calls ended), 'error' (Error: a message the server
 * refused that no promise was waiting for, or a WebRTC failure).
 */
export class CallClient extends Emitter {
  constructor(options) {
    super();
    this._options = {
      connectTimeoutMs: 30000,
      openTimeoutMs: 10000,
      reconnectDelayMs: 250,
      maxReconnectDelayMs: 4000,
      ...options,
    };
    this._ws = null;
    this._seq = 0;
    this._lastSseq = 0;
    this._unacked = new Map();   // seq -> { text, resolve, reject }
    this._calls = new Map();     // call id -> Call
    this._resume = null;
    this._graceMs = 0;
    this._closed = false;
    this._reconnectTimer = null;
    /** @type {string} this user's id, from the server's welcome */
    this.user = '';
    /** @type {string} the tenant ('' when none) */
    this.tenant = '';
    /** @type {string} this device's id */
    this.device = '';
  }

  /**
   * Connects and resolves once the server welcomed this device.
   * @param {object} options
   * @param {string} options.url ws(s)://HOST:PORT/api/v1/signal
   * @param {string} options.token the signaling JWT the app's backend minted
   * @param {number} [options.connectTimeoutMs=30000] a call's media must connect within this
   * @param {number} [options.openTimeoutMs=10000] the first connection must be welcomed within
   * @param {number} [options.reconnectDelayMs=250] first reconnect delay (doubles each try)
   * @param {number} [options.maxReconnectDelayMs=4000] longest delay between reconnects
   * @returns {Promise<CallClient>}
   */
  static async connect(options) {
    if (!options || !options.url || !options.token) throw new TypeError('url and token required');
    const client = new CallClient(options);
    const url = new URL(options.url);
    url.searchParams.set('token', options.token);
    await client._open(url.href, options.openTimeoutMs ?? 10000);
    return client;
  }

  /**
   * Calls a user: asks for camera and microphone, then invites. Resolves once the server took
   * the invite (the call id is known); how it goes comes as the call's events.
   * @param {string} to the callee's user id @param {MediaOptions} [options] @returns {Promise<Call>}
   */
  async call(to, options = {}) {
    if (this._closed) throw new Error('client closed');
    const media = mediaFlags(options);
    if (!media.audio && !media.video) throw new TypeError('a call needs audio or video');
    const call = new Call(this, { direction: 'outgoing', from: this.user, to, media, options });
    try {
      await call._openMedia(options);
      const ack = await this._request('invite', undefined, { to, media }, (a) => {
        call.id = a.call;  // registered before any later message about the call is read
        this._calls.set(a.call, call);
      });
      if (!ack.call) throw new Error('the server acknowledged the invite without a call id');
    } catch (err) {
      call._stopMedia();
      throw err;
    }
    return call;
  }

  /** Leaves: live calls end locally (outcome 'closed'), the connection closes. */
  close() {
    if (this._closed) return;
    for (const call of this._calls.values()) {
      if (call.state === 'ringing' && call.direction === 'outgoing') call.cancel();
      else if (call.state !== 'ringing') call.hangup();
    }
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    this._endAll({ outcome: 'closed', reason: 'client-closed', by: 'local' });
    if (this._ws) this._ws.close(1000, 'bye');
    for (const p of this._unacked.values()) p.reject?.(new Error('client closed'));
    this._unacked.clear();
  }

  // --- the connection ------------------------------------------------------------------------

  // Opens a WebSocket and resolves with the welcome payload (rejects if it closes first).
  _open(href, timeoutMs) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(href);
      let welcomed = false;
      const timer = setTimeout(() => { ws.close(); reject(new Error('no welcome in time')); },
        timeoutMs);
      ws.onmessage = (e) => {
        let msg;
        try {
          msg = JSON.parse(e.data);
        } catch {
          this._emit('error', new Error('unparsable message from the server'));
          return;
        }
        if (msg.type === 'welcome' && !welcomed) {
          welcomed = true;
          clearTimeout(timer);
          this._ws = ws;
          this._onWelcome(msg.payload || {});
          resolve(msg.payload || {});
        } else if (welcomed) {
          this._onMessage(msg);
        }
      };
      ws.onclose = (e) => {
        clearTimeout(timer);
        if (!welcomed) {
          const err = new Error(`connection closed before welcome (code ${e.code} ${e.reason})`);
          err.closeCode = e.code;
          reject(err);
        } else if (this._ws === ws) {
          this._onSocketLost(e.code);
        }
      };
    });
  }

  _onWelcome(p) {
    this.user = p.user ?? this.user;
    this.tenant = p.tenant ?? this.tenant;
    this.device = p.device ?? this.device;
    this._resume = p.resume ?? this._resume;
    this._graceMs = Number(p.grace_ms) || 0;
  }

  // The socket dropped: resume within the grace period, with backoff, or give the session up.
  _onSocketLost(code) {
    this._ws = null;
    if (this._closed) return;
    for (const call of this._calls.values()) call._onDisconnected();
    if (!this._resume || this._graceMs <= 0 || kFinalCloseCodes.has(code)) {
      this._giveUp(`connection lost (code ${code})`);
      return;
    }
    const deadline = Date.now() + this._graceMs;
    let delay = this._options.reconnectDelayMs;
    const attempt = async () => {
      if (this._closed) return;
      const url = new URL(this._options.url);
      url.searchParams.set('resume', this._resume);
      url.searchParams.set('last_sseq', String(this._lastSseq));
      const left = deadline - Date.now();
      try {
        const welcome = await this._open(url.href, Math.max(left, 1000));
        if (welcome.resumed !== true) {
          this._ws.close(1000, 'resume refused');
          this._ws = null;
          this._giveUp('resume refused');
          return;
        }
        for (const call of this._calls.values()) call._onResumed();
        for (const p of this._unacked.values()) this._ws.send(p.text);  // in seq order
      } catch (err) {
        if (kFinalCloseCodes.has(err.closeCode)) {
          this._giveUp('resume refused');
          return;
        }
        const wait = Math.min(delay, deadline - Date.now() - 100);
        if (wait <= 0) {
          this._giveUp('could not resume within the grace period');
          return;
        }
        this._reconnectTimer = setTimeout(attempt, wait);
        delay = Math.min(delay * 2, this._options.maxReconnectDelayMs);
      }
    };
    this._reconnectTimer = setTimeout(attempt, Math.min(delay, this._graceMs));
  }

  _giveUp(reason) {
    this._closed = true;
    this._endAll({ outcome: 'peer-disconnected', reason: 'signaling-lost', by: 'local' });
    for (const p of this._unacked.values()) p.reject?.(new Error(reason));
    this._unacked.clear();
    this._emit('disconnected', { reason });
  }

  _endAll(info) {
    for (const call of [...this._calls.values()]) call._end(info);
    this._calls.clear();
  }

  // --- sending: every message numbered, kept until acknowledged, resent after a resume -------

  _send(type, call, payload, waiter) {
    if (this._closed) throw new Error('client closed');
    const seq = ++this._seq;
    const msg = { type, seq };
    if (call) msg.call = call;
    msg.payload = payload;
    const entry = { text: JSON.stringify(msg), type, ...waiter };
    this._unacked.set(seq, entry);
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(entry.text);
  }

  // Fire and forget: a refusal is reported as the client's 'error' event.
  _post(type, call, payload) {
    if (this._closed) return;
    this._send(type, call, payload, {});
  }

  // Resolves with the ack (onAck runs synchronously first), rejects with a SignalError.
  _request(type, call, payload, onAck) {
    return new Promise((resolve, reject) => {
      this._send(type, call, payload, { resolve, reject, onAck });
    });
  }

  // --- receiving ----------------------------------------------------------------------------

  _onMessage(msg) {
    if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') return;
    if (Number.isSafeInteger(msg.sseq)) {
      if (msg.sseq <= this._lastSseq) return;  // already seen before a resume
      this._lastSseq = msg.sseq;
    }
    if (msg.type === 'ack' || msg.type === 'error') {
      this._onReply(msg);
      return;
    }
    if (msg.type === 'invite') {
      this._onInvite(msg);
      return;
    }
    const call = this._calls.get(msg.call);
    if (!call) return;  // a call this device no longer follows
    const payload = typeof msg.payload === 'object' && msg.payload !== null ? msg.payload : {};
    call._queue = call._queue.then(() => this._dispatch(call, msg.type, payload)).catch((err) => {
      // A description the browser refused (or could not produce): the call cannot carry media.
      this._emit('error', err);
      if (call.state !== 'ended') call.hangup('media-error');
    });
  }

  _onReply(msg) {
    const entry = this._unacked.get(msg.seq);
    if (msg.type === 'error') {
      const err = new SignalError(msg);
      err.seq = msg.seq;
      err.call = msg.call;
      if (entry?.reject) entry.reject(err);
      else this._emit('error', err);
    } else if (entry) {
      entry.onAck?.(msg);
      entry.resolve?.(msg);
    }
    this._unacked.delete(msg.seq);
  }

  _onInvite(msg) {
    const p = msg.payload || {};
    if (this._calls.has(msg.call)) return;
    const call = new Call(this, {
      id: msg.call, direction: 'incoming', from: p.from, to: this.user,
      media: { audio: Boolean(p.media?.audio), video: Boolean(p.media?.video) },
      iceServers: p.ice_servers,
    });
    this._calls.set(msg.call, call);
    this._post('ringing', call.id, {});
    this._emit('incoming', call);
  }

  async _dispatch(call, type, p) {
    switch (type) {
      case 'ringing': call._emit('ringing'); break;
      case 'accepted': await call._onAccepted(p); break;
      case 'state': if (p.state === 'connecting' || p.state === 'active') call._setState(p.state);
        break;
      case 'offer': await call._onOffer(p); break;
      case 'answer': await call._onAnswer(p); break;
      case 'candidate': await call._onCandidate(p); break;
      case 'ice-restart': call._onIceRestartRequest(); break;
      case 'peer-reconnecting': call._emit('peer-reconnecting'); break;
      case 'peer-resumed': call._emit('peer-resumed'); break;
      case 'answered-elsewhere':
        this._calls.delete(call.id);
        call._end({ outcome: 'answered-elsewhere', reason: 'answered-elsewhere', by: 'callee' });
        break;
      case 'ended':
        this._calls.delete(call.id);
        call._end({ outcome: p.outcome, reason: p.reason, by: p.by });
        break;
      default: break;  // newer server message types are ignored
    }
  }
}
