// ws_client.js against a raw RFC 6455 server written here on node:net, so that every case the
// client must handle is produced on purpose: 7, 16 and 64-bit lengths both ways, masking of
// client frames, a fragmented message with a ping between its fragments, the close handshake,
// a wrong Sec-WebSocket-Accept, a refused upgrade, a masked or oversized server frame.
// Run with `node --test` (node 18 or later).
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const net = require('node:net');
const { describe, it, after } = require('node:test');

const { WsClient } = require('./ws_client.js');

const kGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/// An unmasked server frame (section 5.2), or a masked one with mask = true (a protocol error).
function serverFrame(opcode, payload, { fin = true, mask = false } = {}) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0, n]) : n <= 0xffff ? Buffer.alloc(4) : Buffer.alloc(10);
  if (n >= 126 && n <= 0xffff) { head[1] = 126; head.writeUInt16BE(n, 2); }
  if (n > 0xffff) { head[1] = 127; head.writeBigUInt64BE(BigInt(n), 2); }
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

/// Reads client frames off `state.buffer`: {fin, opcode, masked, lengthBits, payload}.
function readClientFrames(state) {
  const frames = [];
  for (;;) {
    const b = state.buffer;
    if (b.length < 2) return frames;
    let len = b[1] & 0x7f;
    let off = 2;
    let bits = 7;
    if (len === 126) { if (b.length < 4) return frames; len = b.readUInt16BE(2); off = 4; bits = 16; }
    if (len === 127) { if (b.length < 10) return frames; len = Number(b.readBigUInt64BE(2)); off = 10; bits = 64; }
    const masked = (b[1] & 0x80) !== 0;
    const keyEnd = off + (masked ? 4 : 0);
    if (b.length < keyEnd + len) return frames;
    const key = b.subarray(off, keyEnd);
    const payload = Buffer.from(b.subarray(keyEnd, keyEnd + len));
    if (masked) for (let i = 0; i < len; ++i) payload[i] ^= key[i & 3];
    frames.push({ fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, masked, lengthBits: bits, payload });
    state.buffer = b.subarray(keyEnd + len);
  }
}

/// A server answering close frames as RFC 6455 asks: `handshake(req)` returns the raw answer head (or null
/// for a correct 101); `onFrame(frame, socket)` sees every client frame. Resolves to its port.
function startServer({ handshake = () => null, onFrame = () => {} } = {}) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const state = { buffer: Buffer.alloc(0), upgraded: false };
    socket.on('data', (chunk) => {
      state.buffer = Buffer.concat([state.buffer, chunk]);
      if (!state.upgraded) {
        const end = state.buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const req = state.buffer.subarray(0, end).toString();
        state.buffer = state.buffer.subarray(end + 4);
        const key = /sec-websocket-key: (\S+)/i.exec(req)[1];
        const custom = handshake(req);
        if (custom) {
          socket.end(custom);
          return;
        }
        const accept = crypto.createHash('sha1').update(key + kGuid).digest('base64');
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        state.upgraded = true;
      }
      for (const f of readClientFrames(state)) {
        onFrame(f, socket);
        if (f.opcode === 8 && !socket.destroyed) socket.end(serverFrame(8, f.payload)); // section 5.5.1
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `ws://127.0.0.1:${server.address().port}/path?x=1`,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  })));
}

describe('WsClient (RFC 6455 client)', () => {
  const servers = [];
  after(async () => { for (const s of servers) await s.close(); });
  const serve = async (opts) => { const s = await startServer(opts); servers.push(s); return s; };

  it('sends masked frames with 7, 16 and 64-bit lengths and reads the same back', async () => {
    const seen = [];
    const s = await serve({ onFrame: (f, socket) => {
      seen.push(f);
      if (f.opcode === 1) socket.write(serverFrame(1, f.payload));
    } });
    const ws = await WsClient.connect(s.url);
    for (const n of [5, 300, 70000]) {
      const text = 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2);
      ws.send(text);
      assert.equal(await ws.next((t) => t.length === text.length), text);
    }
    assert.deepEqual(seen.map((f) => [f.masked, f.lengthBits]), [[true, 7], [true, 16], [true, 64]]);
    await ws.close();
  });

  it('reassembles a fragmented message around a ping, and answers the ping', async () => {
    let pong = null;
    const s = await serve({ onFrame: (f, socket) => {
      if (f.opcode === 0xa) pong = f.payload.toString();
      if (f.opcode !== 1) return;
      socket.write(Buffer.concat([serverFrame(1, Buffer.from('hel'), { fin: false }),
        serverFrame(9, Buffer.from('are you there')), serverFrame(0, Buffer.from('lo '), { fin: false }),
        serverFrame(0, Buffer.from('world'))]));
    } });
    const ws = await WsClient.connect(s.url);
    ws.send('go');
    assert.equal(await ws.next(), 'hello world');
    await ws.close();
    assert.equal(pong, 'are you there');
  });

  it('sends a fragmented message when asked', async () => {
    const frames = [];
    const s = await serve({ onFrame: (f) => frames.push(f) });
    const ws = await WsClient.connect(s.url);
    ws.send('abcdefgh', { fragmentSize: 3 });
    await ws.close();
    const data = frames.filter((f) => f.opcode <= 2);
    assert.deepEqual(data.map((f) => [f.opcode, f.fin, f.payload.toString()]),
      [[1, false, 'abc'], [0, false, 'def'], [0, true, 'gh']]);
  });

  it('completes the close handshake', async () => {
    const s = await serve();
    const ws = await WsClient.connect(s.url);
    assert.deepEqual(await ws.close(4000, 'bye'), { code: 4000, reason: 'bye', clean: true });
    await assert.rejects(ws.next(() => true, 100), /closed/);
  });

  it('answers a server close and reports its code', async () => {
    const s = await serve({ onFrame: (f, socket) => {
      if (f.opcode === 1) socket.write(serverFrame(8, Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('gone')])));
    } });
    const ws = await WsClient.connect(s.url);
    ws.send('x');
    assert.deepEqual(await ws.closed, { code: 4000, reason: 'gone', clean: true });
  });

  it('refuses a wrong Sec-WebSocket-Accept', async () => {
    const s = await serve({ handshake: () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
      'Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n' });
    await assert.rejects(WsClient.connect(s.url), /Sec-WebSocket-Accept/);
  });

  it('reports a refused upgrade with its status and body', async () => {
    const body = '{"error": "token refused: expired"}';
    const s = await serve({ handshake: () => 'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\n\r\n${body}` });
    const err = await WsClient.connect(s.url).catch((e) => e);
    assert.equal(err.status, 401);
    assert.equal(err.body, body);
  });

  it('fails the connection on a masked server frame (1002) and an oversized one (1009)', async () => {
    const sent = [];
    const s = await serve({ onFrame: (f, socket) => {
      if (f.opcode === 8) sent.push(f.payload.readUInt16BE(0));
      if (f.opcode !== 1) return;
      const big = Buffer.alloc(10);
      big[0] = 0x81; big[1] = 127; big.writeBigUInt64BE(2n ** 40n, 2);
      socket.write(f.payload.toString() === 'masked' ? serverFrame(1, Buffer.from('x'), { mask: true }) : big);
    } });
    for (const [what, code] of [['masked', 1002], ['big', 1009]]) {
      const ws = await WsClient.connect(s.url, { maxMessageBytes: 1 << 20 });
      ws.send(what);
      assert.equal((await ws.closed).code, code, what);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(sent, [1002, 1009]);
  });

  it('next() gives up after its timeout, naming what it waited for', async () => {
    const s = await serve();
    const ws = await WsClient.connect(s.url);
    await assert.rejects(ws.next((t) => t === 'never', 50, 'the never message'), /the never message: none within 50 ms/);
    ws.destroy();
  });
});
