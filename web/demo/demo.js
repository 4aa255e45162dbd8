// The callrelay demo page: sign in with a name (POST /demo/api/token), see who is online
// (GET /demo/api/online, polled), check the path to the relay (preflight), call with audio and
// video through the relay, follow the call's quality, and read a summary when it ends. Uses
// only the SDK callrelay serves (/sdk/callrelay.js) and the browser; no external resources.
import { CallClient, preflight } from '/sdk/callrelay.js';

const kPollMs = 2500;
const kTransports = ['udp', 'tcp', 'tls'];
const kOutcomeText = {
  completed: 'Completed', declined: 'Declined', cancelled: 'Cancelled', missed: 'Not answered',
  busy: 'Busy', failed: 'Failed', 'peer-disconnected': 'The other side dropped', closed: 'Closed',
};

const $ = (id) => document.getElementById(id);
const state = {
  user: '', token: '', url: '', client: null, call: null, pollTimer: null, preflightDone: false,
  activeAt: 0, timerId: null, mos: {}, ringer: null, incoming: null,
};

// --- small helpers ------------------------------------------------------------------------

function show(view) {
  for (const id of ['view-signin', 'view-lobby', 'view-call']) $(id).hidden = id !== view;
}

function toast(text, kind = 'error') {
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.textContent = text;
  $('toasts').append(el);
  setTimeout(() => el.remove(), 6000);
}

function initials(name) {
  return [...name.trim()].slice(0, 2).join('').toUpperCase();
}

function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

async function postJson(path, body) {
  const res = await fetch(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

// --- sounds (WebAudio: nothing to download) -------------------------------------------------

let audioContext = null;

function unlockAudio() {
  if (!audioContext) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx) audioContext = new Ctx();
  }
  if (audioContext && audioContext.state === 'suspended') audioContext.resume().catch(() => {});
}

// A repeating two-tone ring (incoming) or a softer ring-back (outgoing); returns stop().
function startRing(kind) {
  if (!audioContext) return () => {};
  const tones = kind === 'incoming' ? [660, 880] : [440, 480];
  const level = kind === 'incoming' ? 0.18 : 0.06;
  const burst = () => {
    const t0 = audioContext.currentTime;
    for (const [i, freq] of tones.entries()) {
      const osc = audioContext.createOscillator();
      const gain = audioContext.createGain();
      osc.frequency.value = freq;
      osc.type = 'sine';
      const start = kind === 'incoming' ? t0 + i * 0.25 : t0;
      const length = kind === 'incoming' ? 0.22 : 1.6;
      gain.gain.setValueAtTime(0, start);
      gain.gain.linearRampToValueAtTime(level, start + 0.02);
      gain.gain.setValueAtTime(level, start + length - 0.05);
      gain.gain.linearRampToValueAtTime(0, start + length);
      osc.connect(gain).connect(audioContext.destination);
      osc.start(start);
      osc.stop(start + length + 0.05);
    }
  };
  burst();
  const id = setInterval(burst, kind === 'incoming' ? 1500 : 4000);
  return () => clearInterval(id);
}

function stopRing() {
  if (state.ringer) state.ringer();
  state.ringer = null;
}

// --- signing in and out ---------------------------------------------------------------------

async function signIn(name) {
  $('signin-error').hidden = true;
  $('signin-button').disabled = true;
  try {
    const grant = await postJson('/demo/api/token', { user: name });
    const client = await CallClient.connect({ url: grant.url, token: grant.token });
    Object.assign(state, { user: grant.user, token: grant.token, url: grant.url, client });
    sessionStorage.setItem('callrelay-demo-user', grant.user);
    client.on('incoming', onIncoming);
    client.on('disconnected', ({ reason }) => signedOut(`Disconnected (${reason}).`));
    client.on('error', (err) => console.warn('callrelay:', err));
    $('me-name').textContent = grant.user;
    $('me').hidden = false;
    show('view-lobby');
    pollOnline();
    state.pollTimer = setInterval(pollOnline, kPollMs);
    if (!state.preflightDone) runPreflight();
  } catch (err) {
    $('signin-error').textContent = `Could not sign in: ${err.message}`;
    $('signin-error').hidden = false;
  } finally {
    $('signin-button').disabled = false;
  }
}

function signedOut(message) {
  clearInterval(state.pollTimer);
  stopRing();
  if (state.client) state.client.close();
  Object.assign(state, { client: null, call: null, incoming: null, user: '', token: '' });
  $('incoming').hidden = true;
  $('me').hidden = true;
  show('view-signin');
  if (message) toast(message);
}

// --- who is online --------------------------------------------------------------------------

async function pollOnline() {
  try {
    const res = await fetch('/demo/api/online', { cache: 'no-store' });
    if (!res.ok) return;
    const { users } = await res.json();
    renderPeople(users.filter((u) => u !== state.user));
  } catch {
    // the next poll tries again
  }
}

function renderPeople(users) {
  const list = $('people');
  list.replaceChildren(...users.map((name) => {
    const li = document.createElement('li');
    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.textContent = initials(name);
    const label = document.createElement('span');
    label.className = 'person';
    label.textContent = name;
    const video = document.createElement('button');
    video.className = 'primary';
    video.textContent = 'Video call';
    video.addEventListener('click', () => startCall(name, true));
    const audio = document.createElement('button');
    audio.className = 'secondary';
    audio.textContent = 'Audio';
    audio.title = 'Audio-only call';
    audio.addEventListener('click', () => startCall(name, false));
    const busy = Boolean(state.call);
    video.disabled = busy;
    audio.disabled = busy;
    li.append(avatar, label, audio, video);
    return li;
  }));
  $('people-empty').hidden = users.length > 0;
  $('online-count').textContent = users.length ? `${users.length} other${users.length > 1 ? 's' : ''}` : '';
}

// --- the connection check -------------------------------------------------------------------

function setCheck(transport, cls, text) {
  const li = document.querySelector(`#checks li[data-transport="${transport}"]`);
  li.className = cls;
  li.querySelector('.state').textContent = text;
}

async function runPreflight() {
  $('preflight-error').hidden = true;
  $('preflight-run').disabled = true;
  for (const t of kTransports) setCheck(t, 'running', 'Checking…');
  try {
    const result = await preflight({ token: state.token, url: state.url });
    state.preflightDone = true;
    for (const t of kTransports) {
      const r = result.transports[t];
      if (!r) setCheck(t, 'skipped', 'Not tested');
      else if (r.ok) setCheck(t, 'ok', `OK · ${r.rttMs.toFixed(1)} ms`);
      else if (r.gatherMs === null) setCheck(t, 'skipped', 'Not offered');
      else setCheck(t, 'failed', 'Failed');
      if (r && !r.ok) {
        document.querySelector(`#checks li[data-transport="${t}"]`).title = r.error || '';
      }
    }
  } catch (err) {
    for (const t of kTransports) setCheck(t, 'failed', '—');
    $('preflight-error').textContent = err.status === 503
      ? 'The server hands out no TURN credentials: set api.public_host (or api.uris), or try it on this machine with config/demo-local.yaml.'
      : `The check could not run: ${err.message}`;
    $('preflight-error').hidden = false;
  } finally {
    $('preflight-run').disabled = false;
  }
}

// --- calls ----------------------------------------------------------------------------------

function relayOnly() {
  state.relayOnly = $('relay-only').checked;  // as this call was made, for its summary
  return state.relayOnly;
}

async function startCall(name, video) {
  if (state.call) return;
  unlockAudio();
  try {
    const call = await state.client.call(name, { audio: true, video, relayOnly: relayOnly() });
    enterCall(call, name);
    state.ringer = startRing('outgoing');
  } catch (err) {
    toast(`Could not call ${name}: ${err.message}`);
  }
}

function onIncoming(call) {
  if (state.call || state.incoming) {  // already busy here: this device declines
    call.decline('busy');
    return;
  }
  state.incoming = call;
  $('incoming-avatar').textContent = initials(call.from);
  $('incoming-title').textContent = `${call.from} is calling`;
  $('incoming-kind').textContent = call.media.video ? 'Video call' : 'Audio call';
  $('accept').textContent = call.media.video ? 'Accept with video' : 'Accept';
  $('accept-audio').hidden = !call.media.video;
  $('incoming').hidden = false;
  state.ringer = startRing('incoming');
  call.on('ended', () => {
    if (state.incoming !== call) return;
    state.incoming = null;
    stopRing();
    $('incoming').hidden = true;
  });
}

async function answer(video) {
  const call = state.incoming;
  if (!call) return;
  state.incoming = null;
  stopRing();
  $('incoming').hidden = true;
  try {
    enterCall(call, call.from);
    await call.accept({ audio: true, video, relayOnly: relayOnly() });
    $('local-video').srcObject = call.localStream;
  } catch (err) {
    toast(`Could not answer: ${err.message}`);
  }
}

function decline() {
  const call = state.incoming;
  if (!call) return;
  state.incoming = null;
  stopRing();
  $('incoming').hidden = true;
  call.decline();
}

function enterCall(call, peer) {
  state.call = call;
  state.activeAt = 0;
  state.mos = {};
  $('peer-avatar').textContent = initials(peer);
  $('peer-name').textContent = peer;
  $('bar-peer').textContent = peer;
  $('timer').textContent = '0:00';
  $('fallback').hidden = true;
  $('remote-video').srcObject = null;
  $('remote-video').classList.remove('live');
  $('local-video').srcObject = call.localStream;
  $('local-video').hidden = !(call.localStream?.getVideoTracks().length);
  setPressed('mute', false);
  setPressed('camera', false);
  $('camera').disabled = !(call.localStream?.getVideoTracks().length) && call.direction === 'outgoing';
  for (const el of document.querySelectorAll('.q-val')) {
    el.textContent = '–';
    el.className = 'q-val';
  }
  renderPeerFlags(call.peerMedia, call);
  setCallState(call.state, call);
  show('view-call');

  call.on('state', (s) => {
    setCallState(s, call);
    renderPeerFlags(call.peerMedia, call);  // the accept told the caller what the callee sends
  });
  call.on('remote-stream', (stream) => {
    $('remote-video').srcObject = stream;
    $('remote-video').classList.add('live');
  });
  call.on('peer-media', (m) => renderPeerFlags({ ...call.peerMedia, ...m }, call));
  call.on('quality', (q) => onQuality(q));
  call.on('video-fallback', () => {
    $('fallback-text').textContent = 'Your video is paused: the connection is poor. Audio continues.';
    $('resume-video').hidden = true;
    $('fallback').hidden = false;
  });
  call.on('video-recoverable', () => {
    $('fallback-text').textContent = 'The connection is good again.';
    $('resume-video').hidden = false;
    $('fallback').hidden = false;
  });
  call.on('video-restored', () => { $('fallback').hidden = true; });
  call.on('ended', (info) => leaveCall(call, info));
}

function setCallState(s, call) {
  const text = {
    ringing: call.direction === 'outgoing' ? 'Calling…' : 'Answering…',
    connecting: 'Connecting…', active: 'Connected', reconnecting: 'Reconnecting…', ended: 'Ended',
  }[s] || s;
  $('call-status').textContent = text;
  $('bar-state').textContent = text;
  if (s !== 'ringing') stopRing();
  if (s === 'active' && !state.activeAt) {
    state.activeAt = performance.now();
    state.timerId = setInterval(() => {
      $('timer').textContent = formatDuration(performance.now() - state.activeAt);
    }, 500);
  }
  $('hangup').title = s === 'ringing' && call.direction === 'outgoing' ? 'Cancel' : 'Hang up';
}

function renderPeerFlags(media, call) {
  const flags = [];
  if (media.audio === false && call.state !== 'ringing') flags.push('Muted');
  if (media.video === false && call.media.video && call.state !== 'ringing') {
    flags.push(media.reason === 'poor-quality' ? 'Video paused (poor connection)' : 'Camera off');
  }
  $('peer-flags').replaceChildren(...flags.map((f) => {
    const span = document.createElement('span');
    span.className = 'flag';
    span.textContent = f;
    return span;
  }));
  // No picture to show (audio call, camera off, video paused): the name stays on screen.
  $('remote-placeholder').classList.toggle('cover', media.video === false || !call.media.video);
}

function onQuality(q) {
  const el = document.querySelector(`.q[data-kind="${q.kind}"] .q-val[data-dir="${q.direction}"]`);
  if (el) {
    el.textContent = `${q.mos.toFixed(1)}`;
    el.className = `q-val ${q.class}`;
    el.title = `${q.direction === 'inbound' ? 'You receive' : 'They receive'}: ${q.class}, ` +
      `MOS ${q.mos.toFixed(2)}, loss ${(q.lossRatio * 100).toFixed(1)} %, ` +
      `jitter ${q.jitterMs.toFixed(1)} ms` + (q.rttMs == null ? '' : `, RTT ${q.rttMs.toFixed(0)} ms`);
  }
  const key = `${q.direction} ${q.kind}`;
  const acc = state.mos[key] || (state.mos[key] = { sum: 0, n: 0, worst: 5 });
  acc.sum += q.mos;
  acc.n += 1;
  acc.worst = Math.min(acc.worst, q.mos);
}

function leaveCall(call, info) {
  if (state.call !== call) return;
  stopRing();
  clearInterval(state.timerId);
  const duration = state.activeAt ? performance.now() - state.activeAt : 0;
  state.call = null;
  $('remote-video').srcObject = null;
  $('local-video').srcObject = null;
  show(state.client ? 'view-lobby' : 'view-signin');
  showSummary(call, info, duration);
  pollOnline();
}

function showSummary(call, info, duration) {
  const rows = [
    ['With', call.direction === 'outgoing' ? call.to : call.from],
    ['Outcome', `${kOutcomeText[info.outcome] || info.outcome}` +
      (info.reason && info.outcome !== 'completed' ? ` (${info.reason})` : '')],
    ['Duration', duration ? formatDuration(duration) : '—'],
    ['Path', state.relayOnly ? 'Through the relay only' : 'Relay or direct'],
  ];
  for (const kind of ['audio', 'video']) {
    for (const dir of ['inbound', 'outbound']) {
      const acc = state.mos[`${dir} ${kind}`];
      if (!acc) continue;
      const mean = acc.sum / acc.n;
      rows.push([`${kind === 'audio' ? 'Audio' : 'Video'} ${dir === 'inbound' ? 'received' : 'sent'}`,
        `MOS ${mean.toFixed(2)} mean, ${acc.worst.toFixed(2)} worst (${acc.n} intervals)`]);
    }
  }
  $('summary-list').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    return [dt, dd];
  }));
  $('summary-title').textContent = info.outcome === 'completed' ? 'Call ended' : 'Call not connected';
  $('summary').hidden = false;
}

function setPressed(id, on) {
  $(id).setAttribute('aria-pressed', String(on));
  $(id).classList.toggle('off', on);
}

// --- wiring ---------------------------------------------------------------------------------

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  unlockAudio();
  const name = $('user').value.trim();
  if (name) signIn(name);
});
$('sign-out').addEventListener('click', () => signedOut(''));
$('preflight-run').addEventListener('click', runPreflight);
$('accept').addEventListener('click', () => answer(Boolean(state.incoming?.media.video)));
$('accept-audio').addEventListener('click', () => answer(false));
$('decline').addEventListener('click', decline);
$('summary-close').addEventListener('click', () => { $('summary').hidden = true; });
$('hangup').addEventListener('click', () => {
  const call = state.call;
  if (!call) return;
  if (call.state === 'ringing' && call.direction === 'outgoing') call.cancel();
  else call.hangup();
});
$('mute').addEventListener('click', () => {
  const call = state.call;
  if (!call) return;
  call.setMuted(!call.muted);
  setPressed('mute', call.muted);
  $('mute').querySelector('span').textContent = call.muted ? 'Unmute' : 'Mute';
});
$('camera').addEventListener('click', () => {
  const call = state.call;
  if (!call) return;
  call.setCameraEnabled(!call.cameraEnabled);
  setPressed('camera', !call.cameraEnabled);
  $('local-video').classList.toggle('dark', !call.cameraEnabled);
});
$('resume-video').addEventListener('click', async () => {
  if (state.call && await state.call.resumeVideo()) $('fallback').hidden = true;
});
window.addEventListener('beforeunload', () => { if (state.client) state.client.close(); });

$('user').value = sessionStorage.getItem('callrelay-demo-user') || '';
window.callrelayDemo = state;  // for the browser tests and the curious
