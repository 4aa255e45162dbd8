// Browser side of callrelay's calls test (tests/integration/browser/calls.test.js): one page per
// user or device, driving the SDK that callrelay serves (/sdk/callrelay.js, imported across
// origins) and, for the hostile cases, a raw WebSocket. The test calls these helpers with
// page.evaluate(); each returns plain data and the test (not the page) decides pass or fail.
// Every wait is bounded, so a broken server fails the test instead of hanging it.

let sdk = null;
let client = null;
const tracked = new Map();  // call id -> { call, states, events, ended }
const incoming = [];        // call ids, in arrival order
const clientEvents = [];    // 'disconnected' and 'error' of the client
const raws = new Map();     // raw WebSocket handle -> { ws, inbox, waiters, closed }
let nextRaw = 1;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves when check() returns a value other than undefined (checked on every SDK event and
// every 100 ms).
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

function track(call) {
  const t = { call, states: [call.state], events: [], ended: null };
  tracked.set(call.id, t);
  call.on('state', (s) => t.states.push(s));
  call.on('ended', (info) => { t.ended = info; });
  for (const name of ['ringing', 'peer-reconnecting', 'peer-resumed']) {
    call.on(name, () => t.events.push(name));
  }
  call.on('remote-stream', () => t.events.push('remote-stream'));
  if (call.state === 'ended') t.ended = call.endInfo;
  return t;
}

function summary(t) {
  return { id: t.call.id, state: t.call.state, states: t.states, events: t.events, ended: t.ended };
}

async function inboundBytes(pc) {
  const out = { audio: 0, video: 0 };
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && (s.kind === 'audio' || s.kind === 'video')) {
      out[s.kind] += s.bytesReceived || 0;
    }
  });
  return out;
}

async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  if (!pairId) {
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pairId = s.id;
    });
  }
  const pair = pairId && stats.get(pairId);
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return { local: local?.candidateType, remote: remote?.candidateType };
}

window.callsTest = {
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
    client.on('disconnected', (e) => clientEvents.push({ type: 'disconnected', reason: e.reason }));
    client.on('error', (e) => clientEvents.push({ type: 'error', code: e.code, message: String(e) }));
    return { user: client.user, device: client.device, tenant: client.tenant };
  },

  async call(to, options) {
    const call = await client.call(to, options);
    return summary(track(call));
  },

  async waitIncoming(count = 1, ms = 10000) {
    const id = await until(() => incoming[count - 1], ms, `incoming call #${count}`);
    const { call } = entry(id);
    return { id, from: call.from, media: call.media, state: call.state };
  },

  incomingCount() { return incoming.length; },

  async accept(id, options) {
    try {
      await entry(id).call.accept(options);
      return { ok: true };
    } catch (err) {
      return { ok: false, code: err.code, message: String(err) };
    }
  },

  decline(id) { entry(id).call.decline(); },
  cancel(id) { entry(id).call.cancel(); },
  hangup(id) { entry(id).call.hangup(); },

  async waitState(id, state, ms = 20000) {
    const t = entry(id);
    await until(() => (t.call.state === state ? true : undefined), ms,
      `call ${id} in state ${state} (now ${t.call.state}, seen ${t.states})`);
    return summary(t);
  },

  async waitEnded(id, ms = 20000) {
    const t = entry(id);
    await until(() => (t.ended ? true : undefined), ms, `call ${id} ended (${t.states})`);
    return summary(t);
  },

  // Waits until the call went through `states` in this order (other states may come between).
  async waitStates(id, states, ms = 20000) {
    const t = entry(id);
    await until(() => {
      let i = 0;
      for (const s of t.states) if (s === states[i]) i += 1;
      return i === states.length ? true : undefined;
    }, ms, `call ${id} through ${states} (seen ${t.states})`);
    return summary(t);
  },

  // Waits until the call's events include `events` in this order.
  async waitEvents(id, events, ms = 20000) {
    const t = entry(id);
    await until(() => {
      let i = 0;
      for (const e of t.events) if (e === events[i]) i += 1;
      return i === events.length ? true : undefined;
    }, ms, `call ${id} events ${events} (seen ${t.events})`);
    return summary(t);
  },

  info(id) { return summary(entry(id)); },

  // The selected candidate pair's types and whether audio and video bytes keep arriving: waits
  // until both kinds received more than `grow` bytes since the first sample.
  async media(id, grow = 2000, ms = 15000) {
    const pc = entry(id).call.pc;
    if (!pc) return { error: 'no peer connection' };
    const first = await inboundBytes(pc);
    let last = first;
    try {
      await until(() => {
        inboundBytes(pc).then((b) => { last = b; });
        return last.audio - first.audio > grow && last.video - first.video > grow ? true
          : undefined;
      }, ms, 'audio and video bytes received');
    } catch (err) {
      return { error: String(err), first, last, pair: await selectedPair(pc) };
    }
    return { first, last, pair: await selectedPair(pc), connection: pc.connectionState };
  },

  localTracks(id) {
    const s = entry(id).call.localStream;
    return s ? s.getTracks().map((tr) => ({ kind: tr.kind, readyState: tr.readyState })) : [];
  },

  clientEvents() { return clientEvents; },
  close() { client.close(); },

  // --- raw WebSocket, for what the SDK would never send ------------------------------------
  async rawOpen(url, ms = 5000) {
    const h = nextRaw++;
    const r = { ws: new WebSocket(url), inbox: [], closed: null };
    raws.set(h, r);
    r.ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { msg = { unparsable: e.data }; }
      r.inbox.push(msg);
    };
    r.ws.onclose = (e) => { r.closed = { code: e.code, reason: e.reason }; };
    await until(() => (r.inbox.length || r.closed ? true : undefined), ms, 'raw socket welcome');
    return { handle: h, first: r.inbox.shift() ?? null, closed: r.closed };
  },

  rawSend(h, text) { raws.get(h).ws.send(text); },

  // Waits for `count` more messages (or the close) and returns them.
  async rawTake(h, count, ms = 5000) {
    const r = raws.get(h);
    try {
      await until(() => (r.inbox.length >= count || r.closed ? true : undefined), ms,
        `${count} raw messages (have ${r.inbox.length})`);
    } catch (err) {
      return { messages: r.inbox.splice(0), closed: r.closed, error: String(err) };
    }
    return { messages: r.inbox.splice(0, count), closed: r.closed };
  },

  async rawClosed(h, ms = 5000) {
    const r = raws.get(h);
    try {
      await until(() => (r.closed ? true : undefined), ms, 'raw socket close');
    } catch (err) {
      return { closed: null, error: String(err), inbox: r.inbox };
    }
    return { closed: r.closed, inbox: r.inbox };
  },
};
document.getElementById('status').textContent = 'ready';
