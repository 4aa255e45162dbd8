// A minimal RFC 6455 WebSocket client for the integration tests, on node:net and node:crypto
// alone (node 18 or later, no npm package): the opening handshake with Sec-WebSocket-Key and a
// checked Sec-WebSocket-Accept (section 4), masked client frames with 7, 16 and 64-bit payload
// lengths (section 5.2), fragmented server messages reassembled (section 5.4), pings answered
// (section 5.5.2) and the close handshake (section 7). ws:// only: the servers under test listen
// on loopback.
//
//   const ws = await WsClient.connect('ws://127.0.0.1:9641/api/v1/signal?token=...');
//   ws.send('{"type":"ping"}');
//   const text = await ws.next((t) => t.includes('"ack"'), 5000);
//   await ws.close(1000, 'bye');
'use strict';

const crypto = require('node:crypto');
const { EventEmitter } = require('node:events');
const net = require('node:net');

const kAcceptGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // section 1.3
const kOp = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };
const kMaxControlPayload = 125; // section 5.5
const kMaxHandshakeBytes = 16384;
const kDefaultMaxMessageBytes = 16 * 1024 * 1024;
const kCloseWaitMs = 5000;

/// Items awaited in arrival order: next(predicate, timeoutMs) resolves to (and removes) the
/// first item, already queued or still to come, that satisfies predicate; it rejects when the
/// time is up or the queue is ended, naming what it waited for and what came instead.
class MessageQueue {
  constructor(describe = (item) => String(item)) {
    this.items = [];
    this.waiters = [];
    this.endError = null;
    this.describe = describe;
  }

  push(item) {
    const i = this.waiters.findIndex((w) => w.predicate(item));
    if (i < 0) {
      this.items.push(item);
      return;
    }
    const [w] = this.waiters.splice(i, 1);
    clearTimeout(w.timer);
    w.resolve(item);
  }

  /// No more items: every waiter, present and future, is rejected with `error`.
  end(error) {
    if (this.endError) return;
    this.endError = error;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`${w.what}: ${error.message}`));
    }
  }

  next(predicate = () => true, timeoutMs = 5000, what = 'a message') {
    const i = this.items.findIndex((item) => predicate(item));
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]);
    if (this.endError) return Promise.reject(new Error(`${what}: ${this.endError.message}`));
    return new Promise((resolve, reject) => {
      const w = { predicate, resolve, reject, what };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        const seen = this.items.slice(-5).map(this.describe).join('\n  ');
        reject(new Error(`${what}: none within ${timeoutMs} ms; last unclaimed:\n  ${seen || '(none)'}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

/// Reads the HTTP response head of the opening handshake (RFC 7230 section 3): status code,
/// lower-cased header names, and the bytes after the head.
function parseResponseHead(buffer) {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
  if (!status) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`);
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed response header: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: Number(status[1]), headers, rest: buffer.subarray(end + 4) };
}

/// One client frame (section 5.2): FIN, opcode, the mask bit and the 7, 16 or 64-bit length,
/// a fresh masking key (section 5.3), the masked payload.
function encodeFrame(opcode, payload, fin = true) {
  const n = payload.length;
  let header;
  if (n < 126) {
    header = Buffer.alloc(2);
    header[1] = 0x80 | n;
  } else if (n <= 0xffff) {
    header = Buffer.alloc(4);
    header[1] = 0x80 | 126;
    header.writeUInt16BE(n, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(n), 2);
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  const mask = crypto.randomBytes(4);
  const masked = Buffer.alloc(n);
  for (let i = 0; i < n; ++i) masked[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([header, mask, masked]);
}

/// Close frame payload (section 5.5.1): a 2-byte code and a UTF-8 reason, 125 bytes at most.
function closePayload(code, reason) {
  if (code === undefined) return Buffer.alloc(0);
  const text = Buffer.from(reason || '', 'utf8').subarray(0, kMaxControlPayload - 2);
  const out = Buffer.alloc(2 + text.length);
  out.writeUInt16BE(code, 0);
  text.copy(out, 2);
  return out;
}

/// A client connection. Events: 'message' (text, isBinary) for each complete message, 'close'
/// ({code, reason, clean}) once. Every received text message is also queued for next().
class WsClient extends EventEmitter {
  /// Connects to ws://HOST:PORT/PATH and completes the opening handshake (section 4.1).
  /// Resolves to the client; rejects with an Error carrying `status`, `headers` and `body`
  /// when the server answers anything but a valid 101. options: headers (extra request
  /// headers), timeoutMs (handshake, default 5000), maxMessageBytes (default 16 MiB: a
  /// larger announced length closes the connection with 1009 instead of being trusted).
  static connect(url, options = {}) {
    const u = new URL(url);
    if (u.protocol !== 'ws:') throw new Error(`only ws:// URLs are supported: ${url}`);
    const key = crypto.randomBytes(16).toString('base64');
    const expected = crypto.createHash('sha1').update(key + kAcceptGuid).digest('base64');
    const port = Number(u.port || 80);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const extra = Object.entries(options.headers || {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const request = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      `Sec-WebSocket-Key: ${key}\r\n${extra}\r\n`;
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host);
      let head = Buffer.alloc(0);
      const timer = setTimeout(
        () => fail(new Error(`no handshake answer within ${timeoutMs} ms`)), timeoutMs);
      const fail = (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        let res;
        try {
          res = parseResponseHead(head);
        } catch (err) {
          fail(err);
          return;
        }
        if (!res) {
          if (head.length > kMaxHandshakeBytes) fail(new Error('handshake answer head too large'));
          return;
        }
        socket.off('data', onData);
        if (res.status !== 101) {
          // Not upgraded: collect the body the server sends with the refusal.
          let body = res.rest;
          socket.on('data', (c) => { body = Buffer.concat([body, c]); });
          const done = () => {
            const err = new Error(`upgrade refused: HTTP ${res.status} ${body.toString('utf8')}`);
            Object.assign(err, { status: res.status, headers: res.headers, body: body.toString('utf8') });
            fail(err);
          };
          const length = Number(res.headers['content-length']);
          if (Number.isFinite(length) && body.length >= length) done();
          else socket.on('end', done).on('close', done);
          return;
        }
        // Section 4.2.2 step 5 and section 4.1, the client's checks of a 101.
        const h = res.headers;
        const problem = (h.upgrade || '').toLowerCase() !== 'websocket' ? `Upgrade: ${h.upgrade}`
          : !/(^|,)\s*upgrade\s*(,|$)/i.test(h.connection || '') ? `Connection: ${h.connection}`
          : h['sec-websocket-accept'] !== expected
            ? `Sec-WebSocket-Accept: ${h['sec-websocket-accept']} (expected ${expected})`
          : null;
        if (problem) {
          fail(new Error(`invalid 101 answer, ${problem}`));
          return;
        }
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(new WsClient(socket, res.rest, options));
      };
      socket.on('data', onData);
      socket.on('error', fail);
      socket.on('connect', () => socket.write(request));
    });
  }

  constructor(socket, initial, options) {
    super();
    this.socket = socket;
    this.maxMessageBytes = options.maxMessageBytes ?? kDefaultMaxMessageBytes;
    this.buffer = Buffer.alloc(0);
    this.fragments = null; // { opcode, parts, size } while a fragmented message arrives
    this.queue = new MessageQueue((t) => (t.length > 200 ? `${t.slice(0, 200)}...` : t));
    this.closeSent = false;
    this.closeInfo = null;
    this.closed = new Promise((resolve) => this.once('close', resolve));
    this.socketClosed = new Promise((resolve) => socket.once('close', resolve));
    this.decoder = new TextDecoder('utf-8', { fatal: true });
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => {}); // 'close' follows and reports it
    socket.on('close', () => this.finish(1006, '', false));
    if (initial.length > 0) setImmediate(() => this.onData(initial));
  }

  /// True until the close handshake started or the connection dropped.
  get open() { return !this.closeSent && this.closeInfo === null && !this.socket.destroyed; }

  /// Sends a text message; options.fragmentSize splits it into frames of that many bytes
  /// (section 5.4), to exercise a server's reassembly.
  send(text, options = {}) { this.sendData(kOp.text, Buffer.from(text, 'utf8'), options); }

  sendBinary(data, options = {}) { this.sendData(kOp.binary, Buffer.from(data), options); }

  ping(data = '') { this.sendControl(kOp.ping, Buffer.from(data)); }

  /// Resolves to (and removes) the next received text message satisfying predicate; rejects
  /// after timeoutMs or when the connection closes first.
  next(predicate = () => true, timeoutMs = 5000, what = 'a WebSocket message') {
    return this.queue.next(predicate, timeoutMs, what);
  }

  /// Starts the close handshake (section 7.1.2) and resolves to {code, reason, clean} once the
  /// server answered with its close frame and the TCP connection ended (or after 5 s, then the
  /// socket is destroyed and clean is false).
  close(code = 1000, reason = '') {
    if (!this.closeSent && this.closeInfo === null) this.sendControl(kOp.close, closePayload(code, reason));
    this.closeSent = true;
    const timer = setTimeout(() => this.socket.destroy(), kCloseWaitMs);
    return this.socketClosed.then(() => {
      clearTimeout(timer);
      return this.closeInfo;
    });
  }

  /// Drops the TCP connection without a close handshake (a network loss, as the server sees it).
  destroy() { this.socket.destroy(); }

  sendData(opcode, payload, { fragmentSize } = {}) {
    if (!this.open) throw new Error('WebSocket is not open');
    if (!fragmentSize || payload.length <= fragmentSize) {
      this.socket.write(encodeFrame(opcode, payload));
      return;
    }
    for (let at = 0; at < payload.length; at += fragmentSize) {
      const last = at + fragmentSize >= payload.length;
      const op = at === 0 ? opcode : kOp.continuation;
      this.socket.write(encodeFrame(op, payload.subarray(at, at + fragmentSize), last));
    }
  }

  sendControl(opcode, payload) {
    if (payload.length > kMaxControlPayload) throw new Error('control frame payload over 125 bytes');
    if (!this.socket.destroyed && !this.closeSent) this.socket.write(encodeFrame(opcode, payload));
  }

  /// Fails the connection (section 7.1.7): a close frame with `code` if possible, then drop.
  failConnection(code, reason) {
    if (!this.closeSent && !this.socket.destroyed) {
      this.socket.write(encodeFrame(kOp.close, closePayload(code, reason)));
      this.closeSent = true;
    }
    this.finish(code, reason, false);
    this.socket.destroy();
  }

  finish(code, reason, clean) {
    if (this.closeInfo) return;
    this.closeInfo = { code, reason, clean };
    this.queue.end(new Error(`WebSocket closed (${code}${reason ? ` ${reason}` : ''})`));
    this.emit('close', this.closeInfo);
  }

  onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.closeInfo === null) {
      const frame = this.parseFrame();
      if (!frame) return;
      this.onFrame(frame);
    }
  }

  /// One complete frame off the buffer (section 5.2), or null if more bytes are needed. Never
  /// trusts a length: a frame longer than maxMessageBytes fails the connection with 1009.
  parseFrame() {
    const b = this.buffer;
    if (b.length < 2) return null;
    const fin = (b[0] & 0x80) !== 0;
    const opcode = b[0] & 0x0f;
    if ((b[0] & 0x70) !== 0) return this.protocolError('reserved bits set without an extension');
    if ((b[1] & 0x80) !== 0) return this.protocolError('masked frame from the server (section 5.1)');
    let length = b[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return null;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return null;
      const big = b.readBigUInt64BE(2);
      if (big >> 63n) return this.protocolError('64-bit length with its top bit set');
      if (big > BigInt(this.maxMessageBytes)) return this.tooBig(big);
      length = Number(big);
      offset = 10;
    }
    if (length > this.maxMessageBytes) return this.tooBig(length);
    if (b.length < offset + length) return null;
    const payload = b.subarray(offset, offset + length);
    this.buffer = b.subarray(offset + length);
    return { fin, opcode, payload };
  }

  protocolError(why) {
    this.failConnection(1002, why);
    return null;
  }

  tooBig(length) {
    this.failConnection(1009, `frame of ${length} bytes over ${this.maxMessageBytes}`);
    return null;
  }

  onFrame({ fin, opcode, payload }) {
    if (opcode >= 0x8) {
      if (!fin || payload.length > kMaxControlPayload) {
        this.protocolError('fragmented or oversized control frame (section 5.5)');
        return;
      }
      this.onControl(opcode, payload);
      return;
    }
    if (opcode === kOp.continuation) {
      if (!this.fragments) {
        this.protocolError('continuation frame without a message to continue');
        return;
      }
    } else if (opcode === kOp.text || opcode === kOp.binary) {
      if (this.fragments) {
        this.protocolError('new data frame inside a fragmented message (section 5.4)');
        return;
      }
      this.fragments = { opcode, parts: [], size: 0 };
    } else {
      this.protocolError(`unknown opcode ${opcode}`);
      return;
    }
    const f = this.fragments;
    f.parts.push(Buffer.from(payload));
    f.size += payload.length;
    if (f.size > this.maxMessageBytes) {
      this.tooBig(f.size);
      return;
    }
    if (!fin) return;
    this.fragments = null;
    this.deliver(f.opcode, Buffer.concat(f.parts));
  }

  deliver(opcode, data) {
    if (opcode === kOp.binary) {
      this.emit('message', data, true);
      return;
    }
    let text;
    try {
      text = this.decoder.decode(data);
    } catch {
      this.failConnection(1007, 'text message is not UTF-8 (section 8.1)');
      return;
    }
    this.queue.push(text);
    this.emit('message', text, false);
  }

  onControl(opcode, payload) {
    if (opcode === kOp.ping) {
      this.sendControl(kOp.pong, payload); // section 5.5.3: the same application data
    } else if (opcode === kOp.close) {
      const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      const reason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
      // Section 5.5.1: answer with a close frame unless ours went first; the server then
      // closes the TCP connection (section 7.1.1), which we do too if it does not.
      if (!this.closeSent) {
        this.socket.write(encodeFrame(kOp.close, payload.subarray(0, 2)));
        this.closeSent = true;
      }
      this.finish(code, reason, true);
      this.socket.end();
      setTimeout(() => this.socket.destroy(), kCloseWaitMs).unref();
    }
    // A pong answers nothing.
  }
}

module.exports = { WsClient, MessageQueue, encodeFrame };
