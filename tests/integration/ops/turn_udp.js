// A minimal TURN-over-UDP client for the operations tests (drain, revocation, operator ends),
// written from RFC 8489 / RFC 8656 without the server's codec so the tests stay an independent
// check: Allocate with long-term credentials (MD5 key, MESSAGE-INTEGRITY, as RFC 5389 clients),
// Refresh, ChannelBind and ChannelData, and the ALTERNATE-SERVER of a 300 answer. IPv4 only.
'use strict';

const crypto = require('node:crypto');
const dgram = require('node:dgram');

const kCookie = 0x2112a442;
const kMethod = { allocate: 0x003, refresh: 0x004, channelBind: 0x009 };
const kAttr = {
  username: 0x0006, integrity: 0x0008, errorCode: 0x0009, channelNumber: 0x000c,
  lifetime: 0x000d, xorPeer: 0x0012, realm: 0x0014, nonce: 0x0015, xorRelayed: 0x0016,
  requestedTransport: 0x0019, alternateServer: 0x8023,
};
const kTimeoutMs = 1000;
const kTries = 5;

/// The TURN REST password for `username` with `secret`: base64(HMAC-SHA1(secret, username)).
function restPassword(secret, username) {
  return crypto.createHmac('sha1', secret).update(username).digest('base64');
}

function attr(type, value) {
  const pad = (4 - (value.length % 4)) % 4;
  const out = Buffer.alloc(4 + value.length + pad);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function u32(v) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/// XOR-PEER-ADDRESS value for an IPv4 address (RFC 8489 section 14.2).
function xorAddress(ip, port) {
  const b = Buffer.alloc(8);
  b[1] = 0x01;
  b.writeUInt16BE(port ^ (kCookie >>> 16), 2);
  const parts = ip.split('.').map(Number);
  b.writeUInt32BE(((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) ^ kCookie, 4);
  return b;
}

/// Decodes an address attribute value: XORed (`xor`) or plain (ALTERNATE-SERVER, RFC 8489
/// section 14.15). { family: 4|6, ip, port }, or null when malformed.
function decodeAddress(v, xor, tid) {
  if (v.length < 8) return null;
  const family = v[1] === 0x01 ? 4 : v[1] === 0x02 ? 6 : 0;
  if (family === 0 || (family === 6 && v.length < 20)) return null;
  let port = v.readUInt16BE(2);
  if (xor) port ^= kCookie >>> 16;
  if (family === 4) {
    let a = v.readUInt32BE(4);
    if (xor) a = (a ^ kCookie) >>> 0;
    return { family, ip: [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.'), port };
  }
  const bytes = Buffer.from(v.subarray(4, 20));
  if (xor) {
    const mask = Buffer.concat([u32(kCookie), tid]);
    for (let i = 0; i < 16; ++i) bytes[i] ^= mask[i];
  }
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return { family, ip: groups.join(':'), port };
}

/// Parses a STUN message: { type, tid, attrs: Map(type -> value) }, or null.
function parse(buf) {
  if (buf.length < 20 || (buf[0] & 0xc0) !== 0 || buf.readUInt32BE(4) !== kCookie) return null;
  const len = buf.readUInt16BE(2);
  if (20 + len > buf.length) return null;
  const attrs = new Map();
  for (let off = 20; off + 4 <= 20 + len;) {
    const type = buf.readUInt16BE(off);
    const alen = buf.readUInt16BE(off + 2);
    if (off + 4 + alen > 20 + len) return null;
    if (!attrs.has(type)) attrs.set(type, buf.subarray(off + 4, off + 4 + alen));
    off += 4 + alen + ((4 - (alen % 4)) % 4);
  }
  return { type: buf.readUInt16BE(0), tid: buf.subarray(8, 20), attrs };
}

class TurnClient {
  /// A client 5-tuple towards host:port with a REST username and password.
  constructor(host, port, username, password) {
    this.host = host;
    this.port = port;
    this.username = username;
    this.password = password;
    this.realm = null;
    this.nonce = null;
    this.relayed = null;
    this.sock = dgram.createSocket('udp4');
    this.pending = new Map();  // tid hex -> resolve
    this.onChannelData = null;
    this.sock.on('message', (msg) => this.receive(msg));
  }

  async open() {
    await new Promise((resolve) => this.sock.bind(0, '127.0.0.1', resolve));
  }

  close() {
    this.sock.close();
  }

  receive(msg) {
    if (msg.length >= 4 && (msg[0] & 0xc0) === 0x40) {
      const len = msg.readUInt16BE(2);
      if (this.onChannelData && msg.length >= 4 + len) this.onChannelData(msg.subarray(4, 4 + len));
      return;
    }
    const m = parse(msg);
    if (!m) return;
    const resolve = this.pending.get(m.tid.toString('hex'));
    if (resolve) {
      this.pending.delete(m.tid.toString('hex'));
      resolve(m);
    }
  }

  key() {
    const text = `${this.username}:${this.realm}:${this.password}`;
    return crypto.createHash('md5').update(text).digest();
  }

  /// Builds a request of `method` with `attrs`, signed once the realm and nonce are known.
  build(method, attrs, tid) {
    let body = Buffer.concat(attrs);
    const signed = this.realm !== null;
    if (signed) {
      body = Buffer.concat([body, attr(kAttr.username, Buffer.from(this.username)),
        attr(kAttr.realm, Buffer.from(this.realm)), attr(kAttr.nonce, Buffer.from(this.nonce))]);
    }
    const header = Buffer.alloc(20);
    header.writeUInt16BE(method, 0);
    header.writeUInt32BE(kCookie, 4);
    tid.copy(header, 8);
    if (!signed) {
      header.writeUInt16BE(body.length, 2);
      return Buffer.concat([header, body]);
    }
    // RFC 8489 section 14.5: HMAC over the message up to MESSAGE-INTEGRITY, whose length
    // field already counts the attribute itself (24 bytes).
    header.writeUInt16BE(body.length + 24, 2);
    const mac = crypto.createHmac('sha1', this.key())
      .update(Buffer.concat([header, body])).digest();
    return Buffer.concat([header, body, attr(kAttr.integrity, mac)]);
  }

  /// One transaction, retransmitted until answered: the response, or null.
  async transact(method, attrs) {
    const tid = crypto.randomBytes(12);
    const packet = this.build(method, attrs, tid);
    for (let i = 0; i < kTries; ++i) {
      const answer = new Promise((resolve) => {
        this.pending.set(tid.toString('hex'), resolve);
        setTimeout(() => resolve(null), kTimeoutMs);
      });
      this.sock.send(packet, this.port, this.host);
      const m = await answer;
      if (m) return m;
    }
    this.pending.delete(tid.toString('hex'));
    return null;
  }

  /// The request with the long-term credential dance (401 challenge, 438 stale nonce):
  /// { code (200 or the error), msg }, or { code: null } without an answer.
  async request(method, attrs) {
    for (let round = 0; round < 3; ++round) {
      const m = await this.transact(method, attrs);
      if (!m) return { code: null };
      const err = m.attrs.get(kAttr.errorCode);
      const code = err && err.length >= 4 ? (err[2] & 7) * 100 + err[3] : 200;
      const retry = code === 401 && this.realm === null || code === 438;
      if (m.attrs.has(kAttr.realm)) this.realm = m.attrs.get(kAttr.realm).toString();
      if (m.attrs.has(kAttr.nonce)) this.nonce = m.attrs.get(kAttr.nonce).toString();
      if (!retry) return { code, msg: m };
    }
    return { code: 401 };
  }

  /// RFC 8656 section 7.2. { code, relayed, alternate } (alternate: the ALTERNATE-SERVER of
  /// a 300 answer, decoded as a plain address).
  async allocate() {
    const r = await this.request(kMethod.allocate, [attr(kAttr.requestedTransport, u32(17 << 24))]);
    const out = { code: r.code, relayed: null, alternate: null };
    if (r.msg && r.msg.attrs.has(kAttr.xorRelayed))
      out.relayed = decodeAddress(r.msg.attrs.get(kAttr.xorRelayed), true, r.msg.tid);
      this.relayed = out.relayed;
    if (r.msg && r.msg.attrs.has(kAttr.alternateServer))
      out.alternate = decodeAddress(r.msg.attrs.get(kAttr.alternateServer), false, r.msg.tid);
    return out;
  }

  async refresh(lifetime) {
    return (await this.request(kMethod.refresh, [attr(kAttr.lifetime, u32(lifetime))])).code;
  }

  async channelBind(channel, ip, port) {
    return (await this.request(kMethod.channelBind, [
      attr(kAttr.channelNumber, u32(channel << 16)),
      attr(kAttr.xorPeer, xorAddress(ip, port))])).code;
  }

  sendChannelData(channel, payload) {
    const b = Buffer.alloc(4 + payload.length);
    b.writeUInt16BE(channel, 0);
    b.writeUInt16BE(payload.length, 2);
    payload.copy(b, 4);
    this.sock.send(b, this.port, this.host);
  }
}

module.exports = { TurnClient, restPassword, parse, decodeAddress };
