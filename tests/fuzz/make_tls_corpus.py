#!/usr/bin/env python3
"""Writes the seeds of fuzz_tls_session (tests/fuzz/corpus_tls/) in the target's input format
(see fuzz_tls_session.cpp): raw mode (first byte odd) with the ClientHellos Python's OpenSSL
sends for TLS 1.3 and TLS 1.2, and session mode (first byte even) with fixed pseudo-random
operation streams of a few sizes, which libFuzzer then mutates.

Run it from anywhere after changing it; the generated files are checked in, so CI never runs it.
"""
import pathlib
import random
import ssl

OUT = pathlib.Path(__file__).resolve().parent / "corpus_tls"


def client_hello(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def main():
    OUT.mkdir(exist_ok=True)
    for name, version in (("hello_tls13", ssl.TLSVersion.TLSv1_3),
                          ("hello_tls12", ssl.TLSVersion.TLSv1_2)):
        (OUT / f"{name}.bin").write_bytes(b"\x01" + client_hello(version))
    for size in (64, 512, 4096, 16384):
        rng = random.Random(size)
        (OUT / f"session_{size}.bin").write_bytes(
            b"\x00" + bytes(rng.randrange(256) for _ in range(size)))


if __name__ == "__main__":
    main()
