// Drives headless Chromium through a TURN server (relay-only, two peer connections exchanging a
// data channel message) so that record_core_corpus.py, in front of the server, records the
// requests a real browser sends. Usage (from tests/integration/browser, for playwright-core):
//   node ../../fuzz/record_chromium.js PROXY_PORT USERNAME PASSWORD
const path = require('path');
const { chromium } = require(path.join(process.cwd(), 'node_modules', 'playwright-core'));

async function main() {
  const [port, username, credential] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CALLRELAY_CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection'],
  });
  const page = await browser.newPage();
  const result = await page.evaluate(async ({ port, username, credential }) => {
    const iceServers = [{ urls: `turn:127.0.0.1:${port}?transport=udp`, username, credential }];
    const a = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    const b = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    const got = new Promise((resolve) => {
      b.ondatachannel = (e) => { e.channel.onmessage = (m) => resolve(m.data); };
    });
    const ch = a.createDataChannel('corpus');
    ch.onopen = () => ch.send('hello through the relay');
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
    const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 15000));
    return Promise.race([got, timeout]);
  }, { port, username, credential });
  console.log(`chromium: ${result}`);
  await browser.close();
  process.exit(result === 'timeout' ? 1 : 0);
}
main().catch((err) => { console.error(err); process.exit(2); });
