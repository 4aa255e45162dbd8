// callrelay browser SDK: one ES module, no dependencies, no build step. Served by callrelay at
// /sdk/callrelay.js. Speaks the signaling protocol of callrelay's README (section Calls): JSON
// messages over one WebSocket, the server deciding every call state, and media over an
// RTCPeerConnection that uses the call-scoped TURN credentials the server hands out. An active
// call reports its getStats() figures (`stats`), scores its quality per interval with the same
// E-model as the server, and falls back to audio when its video is lost (README, section Call
// quality); preflight() checks the relay's transports before a call.
//
//   import { CallClient, preflight } from 'https://callrelay.example.com/sdk/callrelay.js';
//   const url = 'wss://callrelay.example.com/api/v1/signal';
//   const { transports } = await preflight({ url, token });  // transports.udp.ok, ...
//   const client = await CallClient.connect({ url, token });
//   const call = await client.call('bob', { audio: true, video: true });
//   call.on('quality', ({ kind, direction, class: cls, mos }) => show(kind, direction, cls, mos));

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
 * @property {number} [statsIntervalMs] overrides the client's statsIntervalMs for this call
 * @property {boolean} [fallback] overrides the client's fallback for this call
 */

const kMaxIceRestarts = 3;
// Close codes after which the session cannot be resumed: its grace period is over (4408) or
// it was resumed on another connection (4409).
const kFinalCloseCodes = new Set([4408, 4409]);
const kLiveStates = new Set(['ringing', 'connecting', 'active']);
// States in which the server takes a `media` message (reconnecting: sent once resumed).
const kMediaStates = new Set(['connecting', 'active', 'reconnecting']);

// A monotonic clock for the stats intervals.
function monotonicMs() {
  return globalThis.performance?.now?.() ?? Date.now();
}

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

// --- call quality: the same classes and E-model as the server (README, section Call quality) --

/** @typedef {'excellent'|'good'|'fair'|'poor'} QualityClass */
/**
 * @typedef {object} QualityEvent one scored interval of one kind and direction (the call's
 *   'quality' event and the entries of call.quality)
 * @property {'audio'|'video'} kind
 * @property {'inbound'|'outbound'} direction inbound: what this side receives; outbound: what
 *   it sends, as the receiving side measured it (RTCP receiver reports: remote-inbound-rtp)
 * @property {QualityClass} class by loss
 * @property {number} mos E-model MOS, 1..4.5
 * @property {number} lossRatio lost / expected in the interval, 0..1
 * @property {number} jitterMs
 * @property {number|null} rttMs null when unknown (scored as 0)
 */

function finiteOr(value, fallback) {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function clamp(value, min, max) {
  return Math.min(max, Math.max(min, value));
}

/**
 * The class of an interval by its loss ratio: under 1% excellent, under 3% good, under 5%
 * fair, otherwise poor (the server's thresholds). A missing or negative ratio counts as 0.
 * @param {number} lossRatio lost / expected, 0..1
 * @returns {QualityClass}
 */
export function classifyLoss(lossRatio) {
  const loss = finiteOr(lossRatio, 0);
  if (loss < 0.01) return 'excellent';
  if (loss < 0.03) return 'good';
  if (loss < 0.05) return 'fair';
  return 'poor';
}

/**
 * The simplified ITU-T G.107 E-model as WebRTC stacks compute it (and the server does):
 * effective latency = RTT + 2 x jitter + 10 ms; R = 93.2 - latency/40 below 160 ms, else
 * 93.2 - (latency - 120)/10; R -= 2.5 x loss percent; MOS = 1 + 0.035 R +
 * 7e-6 R (R - 60)(100 - R); R clamped to 0..100, MOS to 1..4.5. Missing, negative or non-finite
 * inputs count as 0 (an unknown RTT is scored as 0), the loss ratio is clamped to 0..1.
 * @param {{rttMs?: number|null, jitterMs?: number|null, lossRatio?: number|null}} measure
 * @returns {{r: number, mos: number}}
 */
export function eModel({ rttMs, jitterMs, lossRatio } = {}) {
  const rtt = Math.max(0, finiteOr(rttMs, 0));
  const jitter = Math.max(0, finiteOr(jitterMs, 0));
  const loss = clamp(finiteOr(lossRatio, 0), 0, 1);
  const latency = rtt + 2 * jitter + 10;
  let r = latency < 160 ? 93.2 - latency / 40 : 93.2 - (latency - 120) / 10;
  r = clamp(r - 2.5 * loss * 100, 0, 100);
  const mos = clamp(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r), 1, 4.5);
  return { r, mos };
}

/**
 * Scores one interval: its class by loss and its E-model R and MOS.
 * @param {{lossRatio?: number, jitterMs?: number, rttMs?: number|null}} measure
 * @returns {{class: QualityClass, mos: number, r: number}}
 */
export function scoreInterval({ lossRatio, jitterMs, rttMs } = {}) {
  const { r, mos } = eModel({ rttMs, jitterMs, lossRatio });
  return { class: classifyLoss(lossRatio), mos, r };
}

/**
 * The audio-only fallback rule (the server's FallbackRule): while video is sent, it follows the
 * OUTBOUND video class and advises 'drop-video' after `poorIntervals` poor intervals in a row;
 * while video is not sent, it follows the outbound audio class and advises 'offer-video' once
 * `goodIntervals` good-or-excellent intervals came in a row (once per run: a run broken by a
 * fair or poor interval starts over).
 */
export class FallbackRule {
  /** @param {{poorIntervals?: number, goodIntervals?: number}} [options] */
  constructor({ poorIntervals = 3, goodIntervals = 6 } = {}) {
    this._poorIntervals = poorIntervals;
    this._goodIntervals = goodIntervals;
    this._poorRun = 0;
    this._goodRun = 0;
  }

  /**
   * Takes one interval's class.
   * @param {QualityClass} cls the outbound video class while video is on, else the audio class
   * @param {boolean} videoOn whether video is being sent
   * @returns {'none'|'drop-video'|'offer-video'}
   */
  onInterval(cls, videoOn) {
    if (videoOn) {
      this._goodRun = 0;
      this._poorRun = cls === 'poor' ? this._poorRun + 1 : 0;
      if (this._poorRun < this._poorIntervals) return 'none';
      this._poorRun = 0;
      return 'drop-video';
    }
    this._poorRun = 0;
    this._goodRun = cls === 'excellent' || cls === 'good' ? this._goodRun + 1 : 0;
    return this._goodRun === this._goodIntervals ? 'offer-video' : 'none';
  }

  /** Forgets both runs (video was resumed, or the camera was turned off and on). */
  reset() {
    this._poorRun = 0;
    this._goodRun = 0;
  }
}

// --- stats: getStats() snapshots and the interval deltas of the `stats` message ---------------

// The cumulative counters read from each RTP stream, by stats type (W3C webrtc-stats).
const kStreamCounters = {
  'inbound-rtp': ['packetsReceived', 'packetsLost', 'bytesReceived', 'framesDecoded',
    'framesDropped'],
  'outbound-rtp': ['packetsSent', 'bytesSent'],
  'remote-inbound-rtp': ['packetsLost', 'reportsReceived'],
};
const kKinds = ['audio', 'video'];
const kCandidateTypes = new Set(['host', 'srflx', 'prflx', 'relay']);
const kProtocols = new Set(['udp', 'tcp', 'tls']);
const kMaxCount = 1e7;
const kMaxMs = 60000;
const kMaxBitrate = 1e10;

/**
 * @typedef {object} StatsSnapshot what one getStats() report says, reduced to what intervals need
 * @property {Map<string, object>} streams RTP streams by stats id: {type, kind, counters...,
 *   jitterMs, rttMs, fractionLost}
 * @property {{localType?: string, remoteType?: string, protocol?: string,
 *   relayProtocol?: string, rttMs?: number}|null} pair the selected candidate pair
 */

/**
 * Reduces a getStats() report (an RTCStatsReport, or any Map of stats objects by id) to the RTP
 * streams' cumulative counters and the selected candidate pair.
 * @param {Map<string, object>|RTCStatsReport} report
 * @returns {StatsSnapshot}
 */
export function snapshotStats(report) {
  const all = new Map();
  report.forEach((stat, id) => all.set(stat.id ?? id, stat));
  const streams = new Map();
  for (const [id, s] of all) {
    const counters = kStreamCounters[s.type];
    const kind = s.kind ?? s.mediaType;
    if (!counters || !kKinds.includes(kind)) continue;
    const stream = { type: s.type, kind };
    for (const name of counters) {
      if (typeof s[name] === 'number' && Number.isFinite(s[name])) stream[name] = s[name];
    }
    if (typeof s.jitter === 'number' && s.jitter >= 0) stream.jitterMs = s.jitter * 1000;
    if (typeof s.roundTripTime === 'number' && s.roundTripTime >= 0) {
      stream.rttMs = s.roundTripTime * 1000;
    }
    if (typeof s.fractionLost === 'number' && s.fractionLost >= 0) {
      stream.fractionLost = s.fractionLost;
    }
    streams.set(id, stream);
  }
  return { streams, pair: selectedPair(all) };
}

// The pair ICE selected: the transport's selectedCandidatePairId (Chromium), else a pair
// marked selected (Firefox), else the nominated succeeded pair (RFC 8445 section 8.1.1).
function selectedPair(all) {
  let pair;
  for (const s of all.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      pair = all.get(s.selectedCandidatePairId);
      if (pair) break;
    }
  }
  if (!pair) {
    const pairs = [...all.values()].filter((s) => s.type === 'candidate-pair');
    pair = pairs.find((s) => s.selected) ||
      pairs.find((s) => s.nominated && s.state === 'succeeded');
  }
  if (!pair) return null;
  const local = all.get(pair.localCandidateId) || {};
  const remote = all.get(pair.remoteCandidateId) || {};
  const out = {};
  if (kCandidateTypes.has(local.candidateType)) out.localType = local.candidateType;
  if (kCandidateTypes.has(remote.candidateType)) out.remoteType = remote.candidateType;
  if (kProtocols.has(local.protocol)) out.protocol = local.protocol;
  if (out.localType === 'relay' && kProtocols.has(local.relayProtocol)) {
    out.relayProtocol = local.relayProtocol;
  }
  if (typeof pair.currentRoundTripTime === 'number' && pair.currentRoundTripTime >= 0) {
    out.rttMs = pair.currentRoundTripTime * 1000;
  }
  return out;
}

// The growth of a cumulative counter, never negative (a receiver's packetsLost goes down when
// duplicates arrive: RFC 3550 section 6.4.1); undefined when the counter is unknown now.
function growth(now, before) {
  if (now === undefined) return undefined;
  return Math.max(0, now - (before ?? 0));
}

function addTo(target, name, value) {
  if (value !== undefined) target[name] = (target[name] ?? 0) + value;
}

function maxTo(target, name, value) {
  if (value !== undefined) target[name] = Math.max(target[name] ?? 0, value);
}

// Per kind sums of the streams' growth since `prev` (streams new since then count from 0).
function kindTotals(prev, cur) {
  const totals = { 'inbound-rtp': {}, 'outbound-rtp': {}, 'remote-inbound-rtp': {} };
  for (const [id, s] of cur.streams) {
    const before = prev?.streams.get(id) || {};
    const t = (totals[s.type][s.kind] ??= {});
    for (const name of kStreamCounters[s.type]) addTo(t, name, growth(s[name], before[name]));
    maxTo(t, 'jitterMs', s.jitterMs);
    maxTo(t, 'rttMs', s.rttMs);
    maxTo(t, 'fractionLost', s.fractionLost);
  }
  return totals;
}

// The baseline for the next interval: `cur`, but a loss counter never goes back below its
// highest value, so that losses a duplicate hid are not counted twice.
function nextBaseline(prev, cur) {
  const streams = new Map();
  for (const [id, s] of cur.streams) {
    const before = prev?.streams.get(id);
    const lost = Math.max(s.packetsLost ?? -Infinity, before?.packetsLost ?? -Infinity);
    streams.set(id, Number.isFinite(lost) ? { ...s, packetsLost: lost } : s);
  }
  return { streams, pair: cur.pair };
}

function count(value) {
  return Math.round(clamp(value, 0, kMaxCount));
}

function millis(value) {
  return Math.round(clamp(value, 0, kMaxMs) * 1000) / 1000;
}

// Milliseconds to the microsecond for the scores; null when unknown.
function micros(ms) {
  return ms === undefined ? null : Math.round(ms * 1000) / 1000;
}

function bitrate(bytes, intervalMs) {
  return Math.round(clamp((bytes * 8 * 1000) / intervalMs, 0, kMaxBitrate));
}

// Sets payload[name] = convert(value) unless the value is unknown (unknown fields are omitted).
function put(payload, name, value, convert) {
  if (value !== undefined) payload[name] = convert(value);
}

/**
 * @typedef {object} StatsInterval
 * @property {object} payload the `stats` message's payload (README, section Call quality)
 * @property {Array<{kind: string, direction: string, lossRatio: number, jitterMs: number,
 *   rttMs: number|null}>} measures per kind and direction with media in the interval
 * @property {StatsSnapshot} baseline the snapshot to measure the next interval from
 */

/**
 * The figures of the interval between two snapshots: the `stats` payload (deltas, integers
 * rounded, every value clamped into the range the server accepts, unknown fields omitted) and
 * the measures to score per kind and direction. Only kinds that moved packets are included.
 * @param {StatsSnapshot|null} prev the previous snapshot (null: count from 0)
 * @param {StatsSnapshot} cur
 * @param {number} elapsedMs time between the two snapshots
 * @returns {StatsInterval}
 */
export function statsInterval(prev, cur, elapsedMs) {
  const ms = Math.max(1, finiteOr(elapsedMs, 1));
  const totals = kindTotals(prev, cur);
  const payload = { interval_ms: Math.round(clamp(ms, 1000, kMaxMs)) };
  const inbound = [];
  const outbound = [];
  const inMeasures = [];
  const outMeasures = [];
  const pairRtt = cur.pair?.rttMs;
  for (const kind of kKinds) {
    const out = totals['outbound-rtp'][kind];
    const remote = totals['remote-inbound-rtp'][kind];
    if (!out || !(out.packetsSent > 0)) continue;
    const e = { kind };
    put(e, 'packets_sent', out.packetsSent, count);
    put(e, 'bitrate_bps', out.bytesSent, (b) => bitrate(b, ms));
    put(e, 'rtt_ms', remote?.rttMs, millis);
    put(e, 'remote_packets_lost', remote?.packetsLost, count);
    put(e, 'remote_jitter_ms', remote?.jitterMs, millis);
    outbound.push(e);
    // An outbound interval is what the receiver reported about it (RFC 3550 section 6.4.2:
    // the fraction lost since its previous report). Receiver reports come every few seconds
    // (audio: about 5 s), so an interval without a new one has no measurement and is not
    // scored; dividing the lost count by the packets sent in the interval would read such an
    // interval as loss-free and the next one as several intervals' loss.
    if (remote?.reportsReceived === 0) continue;
    const lossRatio = remote?.fractionLost;
    if (lossRatio === undefined) continue;  // no receiver report yet: nothing to score
    outMeasures.push({ kind, direction: 'outbound', lossRatio,
      jitterMs: micros(remote.jitterMs ?? 0), rttMs: micros(remote.rttMs ?? pairRtt) });
  }
  const anyOutboundRtt = kKinds.map((k) => totals['remote-inbound-rtp'][k]?.rttMs)
    .find((v) => v !== undefined);
  for (const kind of kKinds) {
    const t = totals['inbound-rtp'][kind];
    const received = t?.packetsReceived ?? 0;
    const lost = t?.packetsLost ?? 0;
    if (received + lost <= 0) continue;
    const e = { kind };
    put(e, 'packets_received', t.packetsReceived, count);
    put(e, 'packets_lost', t.packetsLost, count);
    put(e, 'jitter_ms', t.jitterMs, millis);
    put(e, 'bitrate_bps', t.bytesReceived, (b) => bitrate(b, ms));
    put(e, 'frames_decoded', t.framesDecoded, count);
    put(e, 'frames_dropped', t.framesDropped, count);
    inbound.push(e);
    const sameKindRtt = totals['remote-inbound-rtp'][kind]?.rttMs;
    inMeasures.push({ kind, direction: 'inbound', lossRatio: lost / (received + lost),
      jitterMs: micros(t.jitterMs ?? 0), rttMs: micros(pairRtt ?? sameKindRtt ?? anyOutboundRtt) });
  }
  if (inbound.length) payload.inbound = inbound;
  if (outbound.length) payload.outbound = outbound;
  const pair = pairPayload(cur.pair);
  if (pair) payload.pair = pair;
  const measures = [...inMeasures, ...outMeasures];
  return { payload, measures, baseline: nextBaseline(prev, cur) };
}

function pairPayload(p) {
  if (!p) return null;
  const out = {};
  put(out, 'local_type', p.localType, String);
  put(out, 'remote_type', p.remoteType, String);
  put(out, 'protocol', p.protocol, String);
  put(out, 'relay_protocol', p.relayProtocol, String);
  put(out, 'rtt_ms', p.rttMs, millis);
  return Object.keys(out).length ? out : null;
}

/**
 * One call, outgoing (from CallClient.call) or incoming (the client's 'incoming' event).
 * Events: 'state' (CallState), 'ended' (EndInfo), 'ringing' (the callee's device alerts),
 * 'remote-stream' (MediaStream), 'peer-reconnecting', 'peer-resumed', 'quality'
 * (QualityEvent, once per stats interval per kind and direction with media), 'peer-media'
 * ({audio, video, reason}: what the other side now sends), 'video-fallback'
 * ({reason: 'poor-quality'}: this side stopped sending video), 'video-recoverable' ({}: the
 * link has been good long enough to send video again, see resumeVideo), 'video-restored' ({}).
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
    /**
     * @type {{audio: boolean, video: boolean}} what the other side sends: from the invite
     * (callee) or the accept (caller), then from its `media` messages ('peer-media' events)
     */
    this.peerMedia = direction === 'incoming' ? { ...media } : { audio: false, video: false };
    /**
     * @type {{inbound: {audio: QualityEvent|null, video: QualityEvent|null},
     *   outbound: {audio: QualityEvent|null, video: QualityEvent|null}}} the latest scored
     *   interval per direction and kind (null until one had media)
     */
    this.quality = {
      inbound: { audio: null, video: null },
      outbound: { audio: null, video: null },
    };
    /** @type {boolean} true while video is stopped for poor quality (until resumeVideo) */
    this.videoFallback = false;
    this._muted = false;
    this._cameraOn = true;
    this._announced = direction === 'outgoing' ? { ...media } : null;  // what the peer was told
    this._senders = { audio: null, video: null };
    this._stats = { timer: null, run: 0, baseline: null, at: 0 };
    this._fallbackRule = new FallbackRule();
    this._recoverable = false;        // video-recoverable emitted during this fallback
    this._fallbackByEnabled = false;  // the fallback disabled the track (replaceTrack failed)
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

  /** @type {{audio: boolean, video: boolean}} what this side sends now */
  get localMedia() {
    const has = (kind) => (this.localStream?.getTracks() || []).some((t) => t.kind === kind);
    return {
      audio: has('audio') && !this._muted,
      video: has('video') && this._cameraOn && !this.videoFallback,
    };
  }

  /** @type {boolean} whether setMuted(true) is in effect */
  get muted() { return this._muted; }

  /** @type {boolean} whether the camera is on (setCameraEnabled), fallback aside */
  get cameraEnabled() { return this._cameraOn; }

  /**
   * Mutes or unmutes the microphone: the audio track is disabled (it sends silence) or enabled,
   * and the other side is told with a `media` message (reason user; sent once the call
   * connects when it still rings). @param {boolean} muted
   */
  setMuted(muted) {
    this._muted = Boolean(muted);
    for (const t of this.localStream?.getAudioTracks() || []) t.enabled = !this._muted;
    this._announceMedia({ audio: this.localMedia.audio }, 'user');
  }

  /**
   * Turns the camera on or off: the video track is enabled or disabled (it sends black frames),
   * and the other side is told with a `media` message (reason user). During a video fallback the
   * camera's state is remembered and video stays stopped until resumeVideo().
   * @param {boolean} enabled
   */
  setCameraEnabled(enabled) {
    this._cameraOn = Boolean(enabled);
    if (!(this.videoFallback && this._fallbackByEnabled)) {
      for (const t of this.localStream?.getVideoTracks() || []) t.enabled = this._cameraOn;
    }
    if (!this.videoFallback) this._fallbackRule.reset();
    this._announceMedia({ video: this.localMedia.video }, 'user');
  }

  /**
   * Sends video again after a fallback (typically on 'video-recoverable'): the camera's track
   * goes back on its sender, the other side gets `media` {video, reason: 'quality-restored'},
   * the call emits 'video-restored' and the fallback rule starts over.
   * @returns {Promise<boolean>} false when video was not stopped for quality
   */
  async resumeVideo() {
    if (!this.videoFallback || this._state === 'ended') return false;
    const track = this.localStream?.getVideoTracks()[0];
    if (this._fallbackByEnabled) {
      if (track) track.enabled = this._cameraOn;
    } else if (track && this._senders.video) {
      await this._senders.video.replaceTrack(track);
    }
    this.videoFallback = false;
    this._fallbackByEnabled = false;
    this._recoverable = false;
    this._fallbackRule.reset();
    this._announceMedia({ video: this.localMedia.video }, 'quality-restored');
    this._emit('video-restored', {});
    return true;
  }

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
    this._announced = mediaFlags(options);
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
    if (state === 'connecting') this._syncMedia();
    if (state === 'active') this._startStats();
    this._emit('state', state);
  }

  // Tells the other side what this side now sends (`media`), when the server takes it.
  _announceMedia(fields, reason) {
    if (!kMediaStates.has(this._state)) return;
    this._announced = { ...this._announced, ...fields };
    this._client._post('media', this.id, { ...fields, reason });
  }

  // On connecting: what changed since the invite or accept announced the media (mute or camera
  // off while it rang) is sent now.
  _syncMedia() {
    if (!this._announced) return;
    const now = this.localMedia;
    const changed = {};
    for (const kind of kKinds) if (now[kind] !== this._announced[kind]) changed[kind] = now[kind];
    if (Object.keys(changed).length) this._announceMedia(changed, 'user');
  }

  _onPeerMedia(p) {
    const media = { ...this.peerMedia };
    for (const kind of kKinds) if (typeof p[kind] === 'boolean') media[kind] = p[kind];
    this.peerMedia = media;
    this._emit('peer-media', { ...media, reason: p.reason });
  }

  _connectTimeoutMs() {
    return this._options.connectTimeoutMs ?? this._client._options.connectTimeoutMs;
  }

  async _openMedia(options) {
    const constraints = { audio: options.audio ?? true, video: options.video ?? false };
    if (!constraints.audio && !constraints.video) return;
    this.localStream = await navigator.mediaDevices.getUserMedia(constraints);
    for (const t of this.localStream.getAudioTracks()) t.enabled = !this._muted;
    for (const t of this.localStream.getVideoTracks()) t.enabled = this._cameraOn;
    if (this._state === 'ended') this._stopMedia();
  }

  _createPeerConnection(iceServers) {
    const config = { iceServers };
    if (this._options.relayOnly) config.iceTransportPolicy = 'relay';
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    for (const track of this.localStream?.getTracks() || []) {
      this._senders[track.kind] = pc.addTrack(track, this.localStream);
    }
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
    this.peerMedia = { audio: Boolean(payload.media?.audio), video: Boolean(payload.media?.video) };
    this._createPeerConnection(payload.ice_servers || []);
    for (const kind of ['audio', 'video']) {  // receive what the callee sends and we do not
      const sending = this.localStream?.getTracks().some((t) => t.kind === kind);
      if (payload.media?.[kind] && !sending) {
        this.pc.addTransceiver(kind, { direction: 'recvonly' });
      }
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

  // --- stats, quality and the video fallback -----------------------------------------------

  _option(name, fallback) {
    return this._options[name] ?? this._client._options[name] ?? fallback;
  }

  // Samples getStats() now (the baseline) and then every statsIntervalMs while the call lives.
  _startStats() {
    if (this._stats.timer !== null || !this.pc) return;
    const run = this._stats.run;
    const ms = clamp(finiteOr(this._option('statsIntervalMs', 5000), 5000), 1000, kMaxMs);
    const tick = async () => {
      await this._sampleStats();
      if (this._stats.run === run) this._stats.timer = setTimeout(tick, ms);
    };
    this._stats.timer = setTimeout(tick, 0);
  }

  _stopStats() {
    clearTimeout(this._stats.timer);
    this._stats = { timer: null, run: this._stats.run + 1, baseline: null, at: 0 };
  }

  async _sampleStats() {
    let report;
    try {
      report = await this.pc.getStats();
    } catch {
      return;  // closed meanwhile
    }
    if (this._state === 'ended') return;
    const at = monotonicMs();
    const snapshot = snapshotStats(report);
    const { baseline, at: before } = this._stats;
    this._stats.at = at;
    if (!baseline) {
      this._stats.baseline = snapshot;
      return;
    }
    const interval = statsInterval(baseline, snapshot, at - before);
    this._stats.baseline = interval.baseline;
    // While reconnecting the figures are measured but not queued: the server takes them from
    // an active call only, and a late report of an old interval misleads more than a gap.
    if (this._state === 'active') {
      this._client._postQuiet('stats', this.id, interval.payload, (err) => {
        if (this._state === 'active') this._client._emit('error', err);
      });
    }
    await this._onMeasures(interval.measures);
  }

  async _onMeasures(measures) {
    const latest = {};
    for (const m of measures) {
      const score = scoreInterval(m);
      const event = { kind: m.kind, direction: m.direction, class: score.class, mos: score.mos,
        lossRatio: m.lossRatio, jitterMs: m.jitterMs, rttMs: m.rttMs };
      this.quality[m.direction][m.kind] = event;
      latest[`${m.direction} ${m.kind}`] = event;
      this._emit('quality', event);
    }
    await this._followFallback(latest['outbound video'], latest['outbound audio']);
  }

  // The fallback rule: the outbound video class while video is sent, the outbound audio class
  // while it is stopped. A camera the user turned off is not watched.
  async _followFallback(video, audio) {
    if (this._option('fallback', true) === false || !this._senders.video) return;
    if (this._state !== 'active') return;
    if (!this.videoFallback) {
      if (!video || !this._cameraOn) return;
      const advice = this._fallbackRule.onInterval(video.class, true);
      if (advice === 'drop-video') await this._dropVideo();
    } else if (audio && !this._recoverable) {
      if (this._fallbackRule.onInterval(audio.class, false) === 'offer-video') {
        this._recoverable = true;
        this._emit('video-recoverable', {});
      }
    }
  }

  // Stops sending video but keeps the track to restore: replaceTrack(null) sends no packets at
  // all; where it fails the track is disabled instead (black frames).
  async _dropVideo() {
    this.videoFallback = true;
    this._recoverable = false;
    this._fallbackRule.reset();
    this._announceMedia({ video: false }, 'poor-quality');
    try {
      await this._senders.video.replaceTrack(null);
    } catch {
      this._fallbackByEnabled = true;
      for (const t of this.localStream?.getVideoTracks() || []) t.enabled = false;
    }
    if (this._state !== 'ended') this._emit('video-fallback', { reason: 'poor-quality' });
  }

  _stopMedia() {
    for (const track of this.localStream?.getTracks() || []) track.stop();
  }

  _end(info) {
    if (this._state === 'ended') return;
    this._disarm('connect');
    this._disarm('restart');
    this._stopStats();
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
   * @param {number} [options.statsIntervalMs=5000] how often an active call reads getStats(),
   *   sends `stats` and scores quality (1000..60000)
   * @param {boolean} [options.fallback=true] stop sending video after 3 poor intervals in a row
   *   (audio-only fallback; see Call.resumeVideo)
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
   * @param {string} to the callee's user id @param {MediaOptions} [options]
   * @returns {Promise<Call>}
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

  // Like _post, but a refusal goes to onError instead of the client's 'error' event.
  _postQuiet(type, call, payload, onError) {
    if (this._closed) return;
    this._send(type, call, payload, { reject: onError });
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
      case 'peer-media': call._onPeerMedia(p); break;
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

// --- preflight: can this browser reach callrelay's TURN relay, over which transports? -------

/** @typedef {'udp'|'tcp'|'tls'} TurnTransport */
/**
 * @typedef {object} TransportResult
 * @property {boolean} ok a data channel went through the relay over this transport
 * @property {number|null} gatherMs from setLocalDescription to the first relay candidate (or
 *   to the end of gathering, or to the failure); null when the transport was not tested
 * @property {number|null} rttMs median data channel round trip through the relay (ok only)
 * @property {string|null} error why it failed (null when ok)
 */

const kTransports = ['udp', 'tcp', 'tls'];
const kPreflightPings = 5;
const kMaxErrorBytes = 128;

/**
 * The HTTP base (scheme, host and port) of callrelay from the signaling URL
 * (ws(s)://host/api/v1/signal: ws becomes http, wss https) or from an HTTP(S) URL; the path is
 * ignored. @param {string} url @returns {string} e.g. https://callrelay.example.com:9641
 */
export function preflightBase(url) {
  const u = new URL(url);
  const scheme = { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' };
  if (!scheme[u.protocol]) throw new TypeError(`not a ws(s) or http(s) URL: ${url}`);
  return `${scheme[u.protocol]}//${u.host}`;
}

/**
 * The transport a TURN URI (RFC 7065) is reached over: turn: with ?transport=udp or no
 * transport udp, turn: with ?transport=tcp tcp, turns: tls. Anything else (stun:, DTLS as
 * turns:...?transport=udp, unknown transports) is null. @param {string} uri
 * @returns {TurnTransport|null}
 */
export function classifyTurnUri(uri) {
  const m = /^(turns?):([^?]*)(?:\?(.*))?$/i.exec(String(uri).trim());
  if (!m || !m[2]) return null;
  const transport = (new URLSearchParams(m[3] || '').get('transport') || '').toLowerCase();
  if (m[1].toLowerCase() === 'turns') return transport === '' || transport === 'tcp' ? 'tls' : null;
  if (transport === '' || transport === 'udp') return 'udp';
  return transport === 'tcp' ? 'tcp' : null;
}

/**
 * Splits an iceServers list by transport: each entry keeps its credentials and only the URIs
 * of that transport; entries left without URIs are dropped.
 * @param {RTCIceServer[]} iceServers
 * @returns {{udp: RTCIceServer[], tcp: RTCIceServer[], tls: RTCIceServer[]}}
 */
export function iceServersByTransport(iceServers) {
  const out = { udp: [], tcp: [], tls: [] };
  for (const server of Array.isArray(iceServers) ? iceServers : []) {
    if (!server || typeof server !== 'object') continue;
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    for (const transport of kTransports) {
      const mine = urls.filter((u) => typeof u === 'string' && classifyTurnUri(u) === transport);
      if (!mine.length) continue;
      const entry = { urls: mine };
      if (server.username !== undefined) entry.username = server.username;
      if (server.credential !== undefined) entry.credential = server.credential;
      out[transport].push(entry);
    }
  }
  return out;
}

// The middle value (the mean of the two middle ones for an even count).
function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Tests the browser's path to callrelay's TURN relay before a call: asks callrelay for
 * short-lived credentials (POST /api/v1/preflight), then for each requested transport the server
 * has a URI for, in turn, connects two RTCPeerConnections of this page through the relay only
 * (iceTransportPolicy 'relay', iceServers restricted to that transport), opens a data channel
 * and measures the relay candidate's gathering time and the median ping round trip. The results
 * are posted back (POST /api/v1/preflight/result; a failed post does not fail the preflight).
 * Rejects when callrelay refuses the preflight (err.status: the HTTP status) or is unreachable.
 * @param {object} options
 * @param {string} options.token the signaling JWT (the same as for CallClient.connect)
 * @param {string} options.url the signaling URL (ws(s)://host/api/v1/signal) or the HTTP base
 * @param {number} [options.timeoutMs=8000] per transport
 * @param {TurnTransport[]} [options.transports=['udp','tcp','tls']] which to test, in order
 * @returns {Promise<{id: string, transports: Object<string, TransportResult>, posted: boolean}>}
 *   transports has one entry per requested transport (ok false with an error when the server
 *   has no URI for it); posted tells whether callrelay took the results
 */
export async function preflight({ token, url, timeoutMs = 8000,
  transports = ['udp', 'tcp', 'tls'] } = {}) {
  if (!token || !url) throw new TypeError('token and url required');
  const wanted = [...new Set(transports)];
  const unknown = wanted.filter((t) => !kTransports.includes(t));
  if (unknown.length) throw new TypeError(`unknown transport ${unknown[0]} (udp, tcp or tls)`);
  const base = preflightBase(url);
  const auth = { Authorization: `Bearer ${token}` };
  const grant = await preflightGrant(base, auth);
  const byTransport = iceServersByTransport(grant.iceServers);
  const results = {};
  const posted = [];
  for (const transport of wanted) {
    if (!byTransport[transport].length) {
      results[transport] = { ok: false, gatherMs: null, rttMs: null,
        error: 'the server has no TURN URI for this transport' };
      continue;
    }
    const r = await probeTransport(byTransport[transport], timeoutMs);
    results[transport] = r;
    const entry = { transport, ok: r.ok, gather_ms: Math.round(clamp(r.gatherMs, 0, kMaxMs)) };
    if (r.ok) entry.rtt_ms = clamp(r.rttMs, 0, kMaxMs);
    else entry.error = truncateUtf8(r.error, kMaxErrorBytes);
    posted.push(entry);
  }
  let taken = false;
  if (posted.length) {
    try {
      const res = await fetch(`${base}/api/v1/preflight/result`, {
        method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: grant.id, results: posted }),
      });
      taken = res.ok;
    } catch {
      taken = false;  // the results are the caller's anyway
    }
  }
  return { id: grant.id, transports: results, posted: taken };
}

async function preflightGrant(base, auth) {
  const res = await fetch(`${base}/api/v1/preflight`, { method: 'POST', headers: auth });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const why = body?.error ? ` ${body.error}` : '';
    const err = new Error(`preflight refused: HTTP ${res.status}${why}`);
    err.status = res.status;
    throw err;
  }
  if (typeof body?.id !== 'string' || !Array.isArray(body.iceServers)) {
    throw new Error('preflight: the server answered without id or iceServers');
  }
  return body;
}

function truncateUtf8(text, maxBytes) {
  let s = String(text ?? 'failed');
  const encoder = new TextEncoder();
  while (encoder.encode(s).length > maxBytes) s = s.slice(0, -1);
  return s;
}

function isRelayCandidate(c) {
  return c.type === 'relay' || / typ relay( |$)/.test(c.candidate || '');
}

// Trickles `from`'s candidates to `to`, holding them until `to` has a remote description.
function trickle(from, to) {
  const held = [];
  from.addEventListener('icecandidate', (e) => {
    if (!e.candidate || !e.candidate.candidate) return;
    if (to.remoteDescription) to.addIceCandidate(e.candidate).catch(() => {});
    else held.push(e.candidate);
  });
  return () => { for (const c of held.splice(0)) to.addIceCandidate(c).catch(() => {}); };
}

// One transport: two peer connections of this page through the relay, a data channel, pings.
async function probeTransport(iceServers, timeoutMs) {
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const probe = { stage: 'gather', start: monotonicMs(), gatherMs: null };
  let timer = null;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ timedOut: true }), timeoutMs);
  });
  const run = probeRun(a, b, probe);
  run.catch(() => {});  // settled after a timeout: the connections are closed by then
  try {
    const outcome = await Promise.race([run, timeout]);
    if (outcome.timedOut) {
      const what = { gather: 'no relay candidate', connect: 'data channel did not open',
        ping: 'no pong' }[probe.stage];
      return failed(probe, `${what} within ${timeoutMs} ms`);
    }
    return { ok: true, gatherMs: Math.round(probe.gatherMs), rttMs: round2(outcome.rttMs),
      error: null };
  } catch (err) {
    return failed(probe, err?.message || String(err));
  } finally {
    clearTimeout(timer);
    a.close();
    b.close();
  }
}

function failed(probe, error) {
  const gatherMs = Math.round(probe.gatherMs ?? monotonicMs() - probe.start);
  return { ok: false, gatherMs, rttMs: null, error };
}

function round2(ms) {
  return Math.round(ms * 100) / 100;
}

async function probeRun(a, b, probe) {
  // Set just before setLocalDescription, which starts gathering (RFC 8829 section 3.5.1).
  let t0 = 0;
  // Resolves true at the first relay candidate, false when gathering ended without one.
  const gathered = new Promise((resolve) => {
    a.addEventListener('icecandidate', (e) => {
      if (probe.gatherMs !== null) return;
      if (e.candidate && !isRelayCandidate(e.candidate)) return;
      probe.gatherMs = monotonicMs() - t0;
      resolve(Boolean(e.candidate));
    });
  });
  const flushToB = trickle(a, b);
  const flushToA = trickle(b, a);
  const channel = a.createDataChannel('preflight');
  b.addEventListener('datachannel', (e) => {
    e.channel.addEventListener('message', (m) => e.channel.send(m.data));  // echo
  });
  const offer = await a.createOffer();
  t0 = monotonicMs();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  flushToB();
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  flushToA();
  if (!(await gathered)) throw new Error('gathering ended without a relay candidate');
  probe.stage = 'connect';
  if (channel.readyState !== 'open') {
    await new Promise((resolve, reject) => {
      channel.addEventListener('open', resolve);
      channel.addEventListener('error', () => reject(new Error('data channel failed')));
    });
  }
  probe.stage = 'ping';
  const rtts = [];
  for (let i = 0; i < kPreflightPings; i += 1) rtts.push(await ping(channel, `ping ${i}`));
  return { rttMs: median(rtts) };
}

function ping(channel, text) {
  return new Promise((resolve) => {
    const sent = monotonicMs();
    const onMessage = (m) => {
      if (m.data !== text) return;
      channel.removeEventListener('message', onMessage);
      resolve(monotonicMs() - sent);
    };
    channel.addEventListener('message', onMessage);
    channel.send(text);
  });
}
