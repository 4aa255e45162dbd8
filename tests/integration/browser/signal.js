// Node side helpers for the calls test (calls.test.js): signaling JWTs signed here with
// node:crypto (any backend can mint them: HS256 over the shared secret, RFC 7519 and RFC 7518
// section 3.2), raw WebSocket upgrade requests, callrelay's JSON API, and a TCP proxy the test
// can sever to cut a browser's signaling connection. Runs on node 18.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');

const { mintToken } = require('../lib/signal_client.js');

/// Sends a WebSocket upgrade request (RFC 6455 section 4.1) for `path` to 127.0.0.1:port and
/// resolves to { status, body }: 101 when the server upgraded (the socket is then closed).
function upgradeRequest(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, method: 'GET',
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
      },
    });
    req.setTimeout(5000, () => req.destroy(new Error(`upgrade request ${path}: no answer in 5 s`)));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/// A JSON request to callrelay's HTTP listener with the API key; resolves to { status, body }.
async function apiRequest(port, method, path, key, body) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* the status says enough */ }
  return { status: res.status, body: json, text };
}

/// A TCP proxy on 127.0.0.1 to 127.0.0.1:targetPort. sever(ms) destroys every proxied
/// connection at once and refuses (accepts, then destroys) new ones for ms milliseconds: what a
/// browser sees when its network drops and comes back.
function startTcpProxy(targetPort) {
  const live = new Set();
  let refuseUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    live.add(client);
    live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      connections: () => live.size / 2,
      sever(refuseMs) {
        refuseUntil = Date.now() + refuseMs;
        for (const s of [...live]) s.destroy();
      },
      close: () => new Promise((r) => {
        for (const s of [...live]) s.destroy();
        server.close(r);
      }),
    }));
  });
}

module.exports = { mintToken, upgradeRequest, apiRequest, startTcpProxy };
