// One active call with client `stats` and relayed RTP, for quality_metrics.sh (node 18 or later,
// no npm package).
//
//   node quality_driver.js HTTP_BASE API_KEY INTEG_TOOL SUMMARY_JSON
//
// alice calls bob (audio; SDP with opus/48000). While the call is active:
//  - `integ_tool rtp-stream` relays 11 s of RTP with alice's call-scoped credentials, every
//    20th sequence number left out (5% relay-observed loss on the caller's leg);
//  - every second each device sends a `stats` report (interval_ms 1000, as the SDK does every
//    5 s): bob received alice's audio with 10% loss (90 received, 10 lost), 20 ms jitter and a
//    40 ms pair RTT, so each of his reports is a poor client interval of caller_to_callee, and
//    more loss than the relay saw (loss after the relay); alice received bob's audio without
//    loss (2 ms jitter, 10 ms RTT), an excellent interval of callee_to_caller. Every report is
//    acknowledged.
// Then alice hangs up, and one preflight (POST /api/v1/preflight with alice's token) reports
// udp ok (120 ms gather, 3.5 ms RTT) and tcp failed. SUMMARY_JSON gets the counts and the
// expected client MOS, for the PromQL checks.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');

const q = require('../quality/quality_lib.js');
const { expectAck } = require('../lib/signal_client.js');

const kStreamSeconds = 11;
const kBobInbound = { kind: 'audio', packets_received: 90, packets_lost: 10, jitter_ms: 20,
  bitrate_bps: 32000 };
const kBobRttMs = 40;
const kAliceInbound = { kind: 'audio', packets_received: 100, packets_lost: 0, jitter_ms: 2,
  bitrate_bps: 32000 };
const kAliceRttMs = 10;

/// The README's E-model (calls/core/quality.hpp), for the expected MOS bucket of a report.
function eModelMos(rttMs, jitterMs, lossRatio) {
  const latency = rttMs + 2 * jitterMs + 10;
  let r = latency < 160 ? 93.2 - latency / 40 : 93.2 - (latency - 120) / 10;
  r -= 2.5 * lossRatio * 100;
  r = Math.min(100, Math.max(0, r));
  return Math.min(4.5, Math.max(1, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)));
}

function statsPayload(inbound, rttMs) {
  return {
    interval_ms: 1000,
    inbound: [inbound],
    outbound: [{ kind: 'audio', packets_sent: 50, bitrate_bps: 32000 }],
    pair: { local_type: 'relay', remote_type: 'relay', protocol: 'udp', relay_protocol: 'udp',
      rtt_ms: rttMs },
  };
}

async function preflight(httpBase, token) {
  const post = (path, body) => fetch(`${httpBase}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const res = await post('/api/v1/preflight');
  const text = await res.text();
  assert.equal(res.status, 200, `POST /api/v1/preflight: ${text}`);
  const { id } = JSON.parse(text);
  assert.match(id, /^p_[A-Za-z0-9_-]{22}$/, `preflight id: ${text}`);
  const result = await post('/api/v1/preflight/result', { id, results: [
    { transport: 'udp', ok: true, gather_ms: 120, rtt_ms: 3.5 },
    { transport: 'tcp', ok: false, gather_ms: 5000, error: 'no relay candidate' },
  ] });
  assert.equal(result.status, 204, `POST /api/v1/preflight/result: ${await result.text()}`);
}

async function main(httpBase, apiKey, tool, summaryPath) {
  const { caller, callee, call, callerIce } = await q.activeCall(httpBase, apiKey, 'alice', 'bob');
  const stream = q.startRtpStream(tool, q.udpTurnServer(callerIce), [kStreamSeconds, 20, 4, 10, 10, 60]);
  await stream.next('allocated ', 10000);
  let mediaDone = false;
  const media = stream.next('media ', (kStreamSeconds + 30) * 1000).finally(() => { mediaDone = true; });
  let reports = 0;
  while (!mediaDone) {
    expectAck(await callee.request('stats', call, statsPayload(kBobInbound, kBobRttMs)), 'bob stats');
    expectAck(await caller.request('stats', call, statsPayload(kAliceInbound, kAliceRttMs)), 'alice stats');
    ++reports;
    await q.sleep(1000);
  }
  console.error(`${await media}; ${reports} stats reports from each side`);
  expectAck(await caller.hangup(call), 'hangup');
  for (const d of [caller, callee]) await d.next('ended', { call });
  stream.child.kill('SIGTERM');
  assert.deepEqual(await stream.exited(), { code: 0, signal: null }, 'rtp-stream exit status');
  await preflight(httpBase, await q.issueToken(httpBase, apiKey, 'alice'));
  for (const d of [caller, callee]) await d.close(1000, 'done');
  const summary = {
    call, reports,
    bobMos: eModelMos(kBobRttMs, kBobInbound.jitter_ms, 0.1),
    aliceMos: eModelMos(kAliceRttMs, kAliceInbound.jitter_ms, 0),
  };
  fs.writeFileSync(summaryPath, JSON.stringify(summary, null, 1));
  console.error(`driven: ${q.show(summary)}`);
}

const [httpBase, apiKey, tool, summaryPath] = process.argv.slice(2);
if (!summaryPath) {
  console.error('usage: quality_driver.js HTTP_BASE API_KEY INTEG_TOOL SUMMARY_JSON');
  process.exit(2);
}
main(httpBase, apiKey, tool, summaryPath).then(() => process.exit(0), (err) => {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  q.killChildren();
  process.exit(1);
});
