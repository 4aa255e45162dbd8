// Known loss, jitter and round-trip times through a call's allocation, against what callrelay
// measures (injected_loss.sh starts the server; node 18 or later, no npm package).
//
//   node injected_loss.js HTTP_BASE API_KEY INTEG_TOOL
//
// An active call alice -> bob over signaling (audio only, SDP with opus/48000); then with
// alice's call-scoped credentials `integ_tool rtp-stream` allocates, binds a channel to a UDP
// peer of its own and sends 12 s of RTP (50 packets/s) leaving out every 20th sequence number
// (5% loss) and moving send times +8/-8 ms around the grid (RFC 3550 jitter converging to
// 16 ms), while the two sides exchange ICE checks through the relay, the peer answering after
// 30 ms and the client after 20 ms (relay-observed RTT >= 50 ms). Checked:
//  - /metrics while the media flows: alice's allocation has callrelay_allocation_media_jitter_seconds
//    within 10% of 16 ms once the estimator has converged (3 s in): the median of the scrapes,
//    and three scrapes in four;
//  - after the media: callrelay_allocation_media_loss_ratio within 0.005 of the tool's ratio (0.05);
//    relay-source audio intervals counted (some fair or poor), no client-source interval (no
//    client sent `stats`), the loss, jitter and RTT histograms observed;
//  - after hang-up: the allocation's series are gone (the call ended it); the record's
//    quality.caller_to_callee.audio.relay has the loss ratio within 0.005, mean jitter within
//    10% of 16 ms (worst at least 90% of it), mean RTT >= 50 ms, and nothing else was measured
//    (no client summaries, no video, nothing from bob, who sent no media), no disagreement, no
//    fallback.
'use strict';

const assert = require('node:assert/strict');

const q = require('./quality_lib.js');
const { expectAck } = require('../lib/signal_client.js');

const kSeconds = 12;
const kSkipEvery = 20;
const kJitterMs = 8;         // the tool's send-time offset; RFC 3550 jitter converges to 2x
const kPeerDelayMs = 30;
const kClientDelayMs = 20;
const kLossTolerance = 0.005;
const kJitterTolerance = 0.10;  // relative
const kConvergedAfterMs = 3000; // the A.8 estimator is within 0.1% of its limit after ~110 packets

/// alice's per-allocation media series (exactly one allocation of hers).
function allocationSeries(samples, name, user) {
  return q.select(samples, name).filter((s) => s.labels.user === user);
}

async function main(httpBase, apiKey, tool) {
  const { caller, callee, call, callerIce } = await q.activeCall(httpBase, apiKey, 'alice', 'bob');
  console.error(`call ${call} active`);
  const turn = q.udpTurnServer(callerIce);
  assert.match(turn.username, new RegExp(`^\\d+:alice:call=${call}$`),
    `call-scoped username: ${q.show(turn)}`);
  const stream = q.startRtpStream(tool, turn, [kSeconds, kSkipEvery, kJitterMs, kPeerDelayMs,
    kClientDelayMs, 120]);
  const allocated = await stream.next('allocated ', 10000);
  const startedAt = Date.now();
  const wantJitter = 2 * kJitterMs / 1000;

  // While the media flows: the live jitter, scrape after scrape.
  const jitterSamples = [];
  let mediaLine = null;
  stream.next('media ', (kSeconds + 30) * 1000).then((l) => { mediaLine = l; }, () => {});
  while (mediaLine === null && Date.now() - startedAt < (kSeconds + 30) * 1000) {
    const samples = await q.scrape(httpBase);
    const jitter = allocationSeries(samples, 'callrelay_allocation_media_jitter_seconds', 'alice');
    if (Date.now() - startedAt >= kConvergedAfterMs && mediaLine === null && jitter.length > 0) {
      assert.equal(jitter.length, 1, `one jitter series for alice's allocation: ${q.show(jitter)}`);
      jitterSamples.push(jitter[0].value);
    }
    await q.sleep(500);
  }
  const media = JSON.parse((await stream.next('media ', 1000)).slice('media '.length));
  console.error(`${allocated}; media ${q.show(media)}; relay jitter (s) ${q.show(jitterSamples)}`);
  assert.equal(media.spanned, kSeconds * 50);
  assert.equal(media.loss_ratio, 1 / kSkipEvery);
  // The tool kept its schedule (else the relay would rightly measure something else).
  q.near(media.jitter_ms_sent, media.jitter_ms_pattern, media.jitter_ms_pattern * 0.05,
    'jitter of the actual send times (a loaded machine cannot keep the schedule)');
  assert.ok(jitterSamples.length >= 5,
    'callrelay_allocation_media_jitter_seconds for alice\'s allocation on >= 5 scrapes during ' +
    `the media: ${q.show(jitterSamples)}`);
  // A scheduling hiccup on a loaded machine delays a packet at the relay and lifts the estimator
  // for about a second (RFC 3550 A.8 smooths by 1/16 a packet): the median must be right and
  // three scrapes in four within the tolerance.
  const sorted = [...jitterSamples].sort((a, b) => a - b);
  q.near(sorted[Math.floor(sorted.length / 2)], wantJitter, wantJitter * kJitterTolerance,
    'median callrelay_allocation_media_jitter_seconds');
  const within = jitterSamples.filter((j) => Math.abs(j - wantJitter) <= wantJitter * kJitterTolerance);
  assert.ok(within.length >= 0.75 * jitterSamples.length,
    `callrelay_allocation_media_jitter_seconds within 10% of ${wantJitter} on 3 scrapes in 4: ` +
    q.show(jitterSamples));

  // After the media: cumulative loss, the interval counters and histograms.
  let samples = await q.scrape(httpBase);
  const loss = allocationSeries(samples, 'callrelay_allocation_media_loss_ratio', 'alice');
  assert.equal(loss.length, 1, `one loss series for alice's allocation: ${q.show(loss)}`);
  q.near(loss[0].value, media.loss_ratio, kLossTolerance, 'callrelay_allocation_media_loss_ratio');
  samples = await q.waitFor('two relay audio intervals', async () => {
    const s = await q.scrape(httpBase);
    return q.total(s, 'callrelay_call_quality_intervals_total', { source: 'relay', kind: 'audio' }) >= 2
      ? s : undefined;
  }, 20000);
  const intervals = (match) => q.total(samples, 'callrelay_call_quality_intervals_total', match);
  const impaired = intervals({ source: 'relay', kind: 'audio', class: 'fair' }) +
    intervals({ source: 'relay', kind: 'audio', class: 'poor' });
  assert.ok(impaired >= 1, `relay audio intervals at 5% loss are fair or poor: ${q.show(
    q.select(samples, 'callrelay_call_quality_intervals_total'))}`);
  assert.equal(intervals({ source: 'client' }), 0, 'no client interval: nobody sent stats');
  assert.equal(intervals({ kind: 'video' }), 0, 'no video interval: no video was sent');
  const relayAudio = { source: 'relay', kind: 'audio' };
  for (const h of ['mos', 'loss_ratio', 'jitter_seconds', 'rtt_seconds']) {
    assert.ok(q.total(samples, `callrelay_call_quality_${h}_count`, relayAudio) >= 2,
      `callrelay_call_quality_${h} observed relay audio intervals`);
  }
  const rttCount = q.total(samples, 'callrelay_call_quality_rtt_seconds_count', relayAudio);
  assert.ok(q.total(samples, 'callrelay_call_quality_rtt_seconds_sum', relayAudio) >=
    rttCount * (kPeerDelayMs + kClientDelayMs) / 1000,
  'relay RTT >= the peer\'s and the client\'s answer delays');

  // Hang up: the call ends alice's allocation; its record.
  expectAck(await caller.hangup(call), 'hangup');
  for (const d of [caller, callee]) await d.next('ended', { call });
  await q.waitFor('alice\'s allocation series to go', async () => {
    const s = await q.scrape(httpBase);
    const left = allocationSeries(s, 'callrelay_allocation_media_loss_ratio', 'alice');
    return left.length === 0 ? true : undefined;
  }, 10000);
  stream.child.kill('SIGTERM');
  const exit = await stream.exited();
  assert.deepEqual(exit, { code: 0, signal: null },
    'rtp-stream exits 0 (everything relayed, checks answered)');

  const rec = await q.fetchRecord(httpBase, apiKey, call);
  console.error(`record quality: ${q.show(rec.quality)}`);
  assert.equal(rec.outcome, 'completed');
  assert.ok(rec.relay.bytes_caller_to_callee > 0, `relay: ${q.show(rec.relay)}`);
  const quality = rec.quality;
  assert.ok(quality && typeof quality === 'object', `record has quality: ${q.show(rec)}`);
  const s = quality.caller_to_callee.audio.relay;
  q.checkSummary(s, 'caller_to_callee.audio.relay');
  assert.ok(s.intervals >= 2, `intervals: ${q.show(s)}`);
  q.near(s.loss_ratio, media.loss_ratio, kLossTolerance, 'record loss_ratio');
  q.near(s.mean_jitter_ms, 2 * kJitterMs, 2 * kJitterMs * kJitterTolerance, 'record mean_jitter_ms');
  assert.ok(s.worst_jitter_ms >= 2 * kJitterMs * (1 - kJitterTolerance) &&
    s.worst_jitter_ms <= 2 * kJitterMs * 2, `record worst_jitter_ms near ${2 * kJitterMs}: ${q.show(s)}`);
  assert.ok(s.mean_rtt_ms >= kPeerDelayMs + kClientDelayMs,
    `mean_rtt_ms >= ${kPeerDelayMs + kClientDelayMs} (the answers' delays): ${q.show(s)}`);
  assert.ok(s.worst_rtt_ms >= s.mean_rtt_ms, `worst_rtt_ms: ${q.show(s)}`);
  assert.ok(s.worst_loss_ratio >= 0.04, `worst_loss_ratio: ${q.show(s)}`);
  assert.equal(quality.caller_to_callee.audio.client, null, 'no client summary without stats');
  for (const [dir, kind] of [['caller_to_callee', 'video'], ['callee_to_caller', 'audio'],
    ['callee_to_caller', 'video']]) {
    assert.deepEqual(quality[dir][kind], { relay: null, client: null }, `${dir}.${kind}: nothing measured`);
  }
  assert.equal(quality.client_underreports, 0);
  assert.equal(quality.loss_after_relay, 0);
  assert.deepEqual(quality.video_fallbacks, []);
  for (const d of [caller, callee]) await d.close(1000, 'done');
}

const [httpBase, apiKey, tool] = process.argv.slice(2);
if (!tool) {
  console.error('usage: injected_loss.js HTTP_BASE API_KEY INTEG_TOOL');
  process.exit(2);
}
main(httpBase, apiKey, tool).then(() => process.exit(0), (err) => {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  q.killChildren();
  process.exit(1);
});
