// Browser side of callrelay's Chromium integration test (tests/integration/browser).
// The test opens relay_test.html and calls these functions with page.evaluate(); each returns
// plain data about what happened, and the test (not the page) decides pass or fail.
// Every wait is bounded so a broken relay fails the test instead of hanging it.
'use strict';

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Two relay-only peer connections that trickle candidates to each other in-page. A candidate is
// added only once the receiving side has its remote description.
function makePair(iceServers) {
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const pcs = { a: new RTCPeerConnection(config), b: new RTCPeerConnection(config) };
  const info = { errors: [], candidates: { a: [], b: [] }, addErrors: [] };
  const remoteSet = {};
  const resolveRemote = {};
  for (const name of ['a', 'b']) {
    remoteSet[name] = new Promise((resolve) => { resolveRemote[name] = resolve; });
  }
  for (const [name, otherName] of [['a', 'b'], ['b', 'a']]) {
    const pc = pcs[name];
    pc.addEventListener('icecandidate', (event) => {
      if (!event.candidate) return;
      info.candidates[name].push(event.candidate.type);
      remoteSet[otherName]
        .then(() => pcs[otherName].addIceCandidate(event.candidate))
        .catch((err) => info.addErrors.push(String(err)));
    });
    pc.addEventListener('icecandidateerror', (event) => {
      info.errors.push({ pc: name, errorCode: event.errorCode, errorText: event.errorText, url: event.url });
    });
  }
  return { pcs, info, resolveRemote };
}

async function negotiate(pair) {
  const { a, b } = pair.pcs;
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  pair.resolveRemote.b();
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  pair.resolveRemote.a();
}

function waitConnected(pc, ms, what) {
  return withTimeout(new Promise((resolve, reject) => {
    const check = () => {
      if (pc.connectionState === 'connected') resolve();
      if (pc.connectionState === 'failed') reject(new Error(`${what}: ICE/DTLS failed`));
    };
    pc.addEventListener('connectionstatechange', check);
    check();
  }), ms, `${what} to connect`);
}

// The selected candidate pair, as candidate types and addresses, from getStats().
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local: local && local.candidateType,
    remote: remote && remote.candidateType,
    localAddress: local && `${local.address}:${local.port}`,
    remoteAddress: remote && `${remote.address}:${remote.port}`,
    relayProtocol: local && local.relayProtocol,
    bytesSent: pair.bytesSent,
    bytesReceived: pair.bytesReceived,
  };
}

async function inboundRtp(pc) {
  const stats = await pc.getStats();
  const byKind = {};
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const kind = s.kind || s.mediaType;
    byKind[kind] = {
      bytesReceived: s.bytesReceived || 0,
      packetsReceived: s.packetsReceived || 0,
      framesDecoded: s.framesDecoded,
    };
  });
  return byKind;
}

// (a) A data channel through the relay: a sends `count` messages, b echoes each one back.
async function runDataChannel(iceServers, count) {
  const pair = makePair(iceServers);
  const { a, b } = pair.pcs;
  const result = { sent: 0, receivedByB: 0, echoedToA: 0, info: pair.info };
  try {
    b.addEventListener('datachannel', (event) => {
      event.channel.addEventListener('message', (msg) => {
        result.receivedByB += 1;
        event.channel.send(`echo ${msg.data}`);
      });
    });
    const channel = a.createDataChannel('relay-test');
    let allEchoed;
    const echoed = new Promise((resolve) => { allEchoed = resolve; });
    channel.addEventListener('message', (msg) => {
      if (String(msg.data).startsWith('echo message ')) result.echoedToA += 1;
      if (result.echoedToA === count) allEchoed();
    });
    const open = new Promise((resolve) => channel.addEventListener('open', resolve));
    await negotiate(pair);
    await waitConnected(a, 20000, 'data channel peer a');
    await withTimeout(open, 10000, 'data channel to open');
    for (let i = 0; i < count; i += 1) {
      channel.send(`message ${i}`);
      result.sent += 1;
    }
    await withTimeout(echoed, 10000, `${count} echoes`);
    result.pairA = await selectedPair(a);
    result.pairB = await selectedPair(b);
  } catch (err) {
    result.error = String(err);
  } finally {
    a.close();
    b.close();
  }
  return result;
}

// (b) A fake audio+video call both ways for `seconds`, then the stats of both ends.
async function runCall(iceServers, seconds) {
  const pair = makePair(iceServers);
  const { a, b } = pair.pcs;
  const result = { info: pair.info };
  const streams = [];
  try {
    for (const pc of [a, b]) {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: true, video: { width: 320, height: 240 },
      });
      streams.push(stream);
      stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    }
    await negotiate(pair);
    await waitConnected(a, 20000, 'call peer a');
    await waitConnected(b, 20000, 'call peer b');
    await sleep(seconds * 1000);
    result.pairA = await selectedPair(a);
    result.pairB = await selectedPair(b);
    result.inboundA = await inboundRtp(a);
    result.inboundB = await inboundRtp(b);
  } catch (err) {
    result.error = String(err);
  } finally {
    streams.forEach((s) => s.getTracks().forEach((t) => t.stop()));
    a.close();
    b.close();
  }
  return result;
}

// (c) Gathering with a credential the server must refuse: which errors and candidates appear.
async function runGatherOnly(iceServers, ms) {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
  const result = { errors: [], candidates: [] };
  pc.addEventListener('icecandidate', (event) => {
    if (event.candidate) result.candidates.push(event.candidate.type);
  });
  pc.addEventListener('icecandidateerror', (event) => {
    result.errors.push({ errorCode: event.errorCode, errorText: event.errorText, url: event.url });
  });
  const complete = new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  try {
    pc.createDataChannel('gather');
    await pc.setLocalDescription(await pc.createOffer());
    await withTimeout(complete, ms, 'ICE gathering to complete');
  } catch (err) {
    result.error = String(err);
  } finally {
    result.gatheringState = pc.iceGatheringState;
    pc.close();
  }
  return result;
}

// (d) As an app would: GET the TURN credentials from callrelay's credential endpoint (a
// cross-origin fetch with the API key as a Bearer token, so a CORS preflight first), then the
// data-channel exchange of (a) with the response's `iceServers` passed unchanged.
async function runDataChannelFromEndpoint(url, apiKey, count) {
  let response;
  try {
    const res = await withTimeout(fetch(url, { headers: { Authorization: `Bearer ${apiKey}` } }),
      10000, 'credential endpoint');
    response = { status: res.status, body: await res.json() };
  } catch (err) {
    return { error: `credential endpoint: ${err}` };
  }
  if (response.status !== 200) {
    return { error: `credential endpoint answered ${response.status}`, response };
  }
  const result = await runDataChannel(response.body.iceServers, count);
  result.response = response;
  return result;
}

window.relayTest = { runDataChannel, runCall, runGatherOnly, runDataChannelFromEndpoint };
document.getElementById('status').textContent = 'loaded';
