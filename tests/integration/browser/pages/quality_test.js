// Browser side of callrelay's call quality test (tests/integration/browser/quality.test.js): one
// page per user, driving the SDK that callrelay serves. Before the SDK is imported the page
// wraps RTCPeerConnection so that the test can send this user's TURN traffic through a lossy
// UDP proxy (the iceServers the server handed out are rewritten: its UDP URI points at the
// proxy, and the TCP and TLS URIs are left out so that the media must take it). The test calls
// these helpers with page.evaluate(); each returns plain data and the test decides.
// Every wait is bounded.

const NativePeerConnection = window.RTCPeerConnection;
let rewriteUdp = null;  // { from: 'turn:HOST:PORT', to: 'turn:HOST:PROXYPORT' } or null
const rewritten = [];   // the iceServers each peer connection got, after rewriting

function rewriteServers(servers) {
  if (!rewriteUdp || !Array.isArray(servers)) return servers;
  return servers.map((s) => {
    const urls = [].concat(s.urls).filter((u) => /^turn:[^?]+(\?transport=udp)?$/.test(u))
      .map((u) => u.replace(rewriteUdp.from, rewriteUdp.to));
    return { ...s, urls };
  }).filter((s) => s.urls.length > 0);
}

window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(config, ...rest) {
    const c = config && config.iceServers
      ? { ...config, iceServers: rewriteServers(config.iceServers) } : config;
    rewritten.push(c?.iceServers ?? null);
    super(c, ...rest);
  }
};

let sdk = null;
let client = null;
const tracked = new Map();  // call id -> { call, states, events, ended }
const incoming = [];

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function until(check, ms, what) {
  return withTimeout(new Promise((resolve) => {
    const poll = () => {
      const v = check();
      if (v !== undefined) resolve(v);
      else setTimeout(poll, 100);
    };
    poll();
  }), ms, what);
}

function entry(id) {
  const t = tracked.get(id);
  if (!t) throw new Error(`unknown call ${id}`);
  return t;
}

// Every event of the call, in order, with what it carried (time in ms since the page loaded).
function track(call) {
  const t = { call, states: [call.state], events: [], ended: null };
  tracked.set(call.id, t);
  const note = (name, data) => t.events.push({ name, at: Math.round(performance.now()), data });
  call.on('state', (s) => t.states.push(s));
  call.on('ended', (info) => { t.ended = info; });
  for (const name of ['quality', 'peer-media', 'video-fallback', 'video-recoverable',
    'video-restored']) {
    call.on(name, (data) => note(name, data ?? {}));
  }
  return t;
}

async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId && stats.get(pairId);
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return { local: local?.candidateType, remote: remote?.candidateType,
    relayProtocol: local?.relayProtocol, url: local?.url };
}

window.qualityTest = {
  // Sends this user's UDP TURN traffic to `to` instead of `from` (host:port of turn: URIs).
  proxyUdp(from, to) {
    rewriteUdp = { from: `turn:${from}`, to: `turn:${to}` };
  },

  rewritten() { return rewritten; },

  async load(sdkUrl) {
    sdk = await import(sdkUrl);
    document.getElementById('status').textContent = 'sdk loaded';
    return Object.keys(sdk).sort();
  },

  async connect(url, token, options = {}) {
    client = await sdk.CallClient.connect({ url, token, ...options });
    client.on('incoming', (call) => {
      track(call);
      incoming.push(call.id);
    });
    return { user: client.user, device: client.device };
  },

  async call(to, options) {
    const call = await client.call(to, options);
    track(call);
    return { id: call.id };
  },

  async waitIncoming(count = 1, ms = 10000) {
    const id = await until(() => incoming[count - 1], ms, `incoming call #${count}`);
    return { id, from: entry(id).call.from };
  },

  async accept(id, options) {
    await entry(id).call.accept(options);
    return { ok: true };
  },

  hangup(id) { entry(id).call.hangup(); },

  async waitState(id, state, ms = 20000) {
    const t = entry(id);
    await until(() => (t.call.state === state ? true : undefined), ms,
      `call ${id} in state ${state} (now ${t.call.state}, seen ${t.states})`);
    return { state: t.call.state, states: t.states };
  },

  async waitEnded(id, ms = 20000) {
    const t = entry(id);
    await until(() => (t.ended ? true : undefined), ms, `call ${id} ended (${t.states})`);
    return { ended: t.ended, states: t.states };
  },

  // The call's events so far, its live quality, peerMedia and fallback state.
  info(id) {
    const t = entry(id);
    return { state: t.call.state, events: t.events, quality: t.call.quality,
      peerMedia: t.call.peerMedia, videoFallback: Boolean(t.call.videoFallback) };
  },

  async pair(id) {
    const pc = entry(id).call.pc;
    return pc ? selectedPair(pc) : null;
  },

  resumeVideo(id) { return entry(id).call.resumeVideo(); },

  // The video this side has sent so far: frames (padding and probes are packets, not frames)
  // and packets of its video sender(s).
  async videoSent(id) {
    const pc = entry(id).call.pc;
    const out = { frames: 0, packets: 0 };
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out.frames += s.framesSent || 0;
        out.packets += s.packetsSent || 0;
      }
    });
    return out;
  },

  async preflight(url, token, timeoutMs) {
    try {
      return await sdk.preflight({ url, token, timeoutMs });
    } catch (err) {
      return { error: String(err) };
    }
  },
};
document.getElementById('status').textContent = 'ready';
