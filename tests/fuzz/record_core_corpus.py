#!/usr/bin/env python3
"""A recording UDP proxy for fuzz_turn_core's seed corpus (tests/fuzz/corpus_core/).

Real clients (turnutils_uclient, libnice, Chromium) talk to a running callrelay through this
proxy; every datagram a client sends is recorded. On exit (SIGINT/SIGTERM or --seconds) the
proxy writes two seeds per client source, in fuzz_turn_core's input format (see the comment at
the top of fuzz_turn_core.cpp):
  NAME-N.raw     the datagrams as sent (the 401 round, then requests signed for the live
                 server, which the harness's authenticator refuses: the unauthenticated paths)
  NAME-N.signed  the same with the re-sign bit, so the harness gives each request valid
                 credentials and the authenticated handlers run on the clients' real attributes
A timer event (one second) separates datagrams that were more than a second apart.

Usage: record_core_corpus.py --server 127.0.0.1:3478 --out DIR --name turnutils [--seconds N]
It prints "proxy listening 127.0.0.1:PORT" once ready; point the client at that port.
"""
import argparse
import os
import selectors
import signal
import socket
import struct
import sys
import time

KIND_CLIENT = 0
KIND_TIMER = 2
BIT_RESIGN = 0x20
SETTINGS = 0x02  # RFC 5766 channel numbers accepted, as callrelay's default


def event(kind, payload):
    return struct.pack("!BH", kind, len(payload)) + payload


def seed(datagrams, client_index, resign):
    out = bytearray([SETTINGS])
    last = None
    for when, data in datagrams:
        if last is not None and when - last > 1.0:
            out += event(KIND_TIMER, struct.pack("!Hh", 1000 // 16, 0))
        last = when
        out += event(KIND_CLIENT | ((client_index & 3) << 2) | (BIT_RESIGN if resign else 0), data)
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="callrelay's UDP listener, host:port")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--max-datagrams", type=int, default=40,
                    help="per client: the handshake and a few data packets are enough")
    args = ap.parse_args()
    host, port = args.server.rsplit(":", 1)
    server = (host, int(port))
    lhost, lport = args.listen.rsplit(":", 1)

    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((lhost, int(lport)))
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, None)
    backs = {}      # client address -> socket towards the server
    recorded = {}   # client address -> [(time, bytes)]
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    print(f"proxy listening {lhost}:{front.getsockname()[1]}", flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    while not stop and (deadline is None or time.monotonic() < deadline):
        for key, _ in sel.select(timeout=0.2):
            sock = key.fileobj
            data, addr = sock.recvfrom(65535)
            if key.data is None:  # from a client
                if addr not in backs:
                    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    back.bind((lhost, 0))
                    backs[addr] = back
                    recorded[addr] = []
                    sel.register(back, selectors.EVENT_READ, addr)
                if len(recorded[addr]) < args.max_datagrams:
                    recorded[addr].append((time.monotonic(), data))
                backs[addr].sendto(data, server)
            else:  # from the server, back to its client
                front.sendto(data, key.data)
    os.makedirs(args.out, exist_ok=True)
    for n, (addr, datagrams) in enumerate(recorded.items()):
        if not datagrams:
            continue
        for suffix, resign in (("raw", False), ("signed", True)):
            path = os.path.join(args.out, f"{args.name}-{n}.{suffix}")
            with open(path, "wb") as f:
                f.write(seed(datagrams, n, resign))
    print(f"recorded {sum(len(d) for d in recorded.values())} datagrams from {len(recorded)} "
          f"clients into {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
