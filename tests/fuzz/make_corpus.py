#!/usr/bin/env python3
"""Writes the fuzz seed corpus (tests/fuzz/corpus/): the RFC 5769 vectors, a few TURN messages
of each kind with every attribute TURN uses, ChannelData datagrams and a mixed TCP stream.

Run it from anywhere after changing it; the generated files are checked in, so CI never runs it.
"""
import hashlib
import hmac
import pathlib
import struct
import zlib

OUT = pathlib.Path(__file__).resolve().parent / "corpus"
COOKIE = 0x2112A442
TID = bytes(range(1, 13))
KEY = b"fuzz"  # the fuzz targets check MESSAGE-INTEGRITY with this key


def attr(t, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", t, len(value)) + value + b"\0" * pad


def xor_addr(ip, port, tid=TID):
    if ":" in ip:
        raw = bytes.fromhex("".join(f"{int(g or 0, 16):04x}" for g in expand6(ip)))
        pad = struct.pack("!I", COOKIE) + tid
        return struct.pack("!BBH", 0, 2, port ^ 0x2112) + bytes(a ^ b for a, b in zip(raw, pad))
    raw = bytes(int(x) for x in ip.split("."))
    pad = struct.pack("!I", COOKIE)
    return struct.pack("!BBH", 0, 1, port ^ 0x2112) + bytes(a ^ b for a, b in zip(raw, pad))


def expand6(ip):
    head, _, tail = ip.partition("::")
    h = head.split(":") if head else []
    t = tail.split(":") if tail else []
    return h + ["0"] * (8 - len(h) - len(t)) + t


def message(msg_type, attrs, integrity=False, fingerprint=True):
    body = b"".join(attrs)
    if integrity:
        header = struct.pack("!HHI", msg_type, len(body) + 24, COOKIE) + TID
        mac = hmac.new(KEY, header + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
    if fingerprint:
        header = struct.pack("!HHI", msg_type, len(body) + 8, COOKIE) + TID
        crc = zlib.crc32(header + body) ^ 0x5354554E
        body += attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", msg_type, len(body), COOKIE) + TID + body


def channel_data(channel, payload, padded):
    pad = (4 - len(payload) % 4) % 4 if padded else 0
    return struct.pack("!HH", channel, len(payload)) + payload + b"\0" * pad


# RFC 5769 sections 2.1-2.4, as the RFC prints them.
RFC5769 = {
    "rfc5769_2_1_request": """
        00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
        00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
        00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
        00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
        80 28 00 04 e5 7a 3b cf""",
    "rfc5769_2_2_ipv4_response": """
        01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 08 00 01 a1 47 e1 12 a6 43
        00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
        80 28 00 04 c0 7d 4c 96""",
    "rfc5769_2_3_ipv6_response": """
        01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
        80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
        00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
        00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
        80 28 00 04 c8 fb 0b 4c""",
    "rfc5769_2_4_long_term": """
        00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
        00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
        00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
        00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
        00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66""",
}


def main():
    OUT.mkdir(exist_ok=True)
    seeds = {name: bytes.fromhex("".join(h.split())) for name, h in RFC5769.items()}
    user, realm, nonce = b"1700000000:alice", b"callrelay", b"0123456789abcdef"
    auth = [attr(0x0006, user), attr(0x0014, realm), attr(0x0015, nonce)]
    seeds["allocate_request"] = message(0x0003, [
        attr(0x0019, b"\x11\0\0\0"), attr(0x000D, struct.pack("!I", 600)), attr(0x001A, b""),
        attr(0x0018, b"\x80"), attr(0x0017, b"\x01\0\0\0"), attr(0x8000, b"\x02\0\0\0"), *auth],
        integrity=True)
    seeds["allocate_success"] = message(0x0103, [
        attr(0x0016, xor_addr("203.0.113.5", 61000)), attr(0x0016, xor_addr("2001:db8::5", 61002)),
        attr(0x0020, xor_addr("198.51.100.1", 40000)), attr(0x000D, struct.pack("!I", 600)),
        attr(0x0022, bytes(range(8))), attr(0x8022, b"callrelay")], integrity=True)
    seeds["error_420"] = message(0x0113, [
        attr(0x0009, b"\0\0\x04\x14Unknown Attribute"), attr(0x000A, struct.pack("!HHH", 0x7F01, 0x7F02, 0x0031))])
    seeds["error_401"] = message(0x0113, [
        attr(0x0009, b"\0\0\x04\x01Unauthorized"), attr(0x0014, realm), attr(0x0015, nonce)], fingerprint=False)
    seeds["send_indication"] = message(0x0016, [
        attr(0x0012, xor_addr("203.0.113.9", 5000)), attr(0x0013, b"hello peer")], fingerprint=False)
    seeds["data_indication_v6"] = message(0x0017, [
        attr(0x0012, xor_addr("2001:db8::42", 61000)), attr(0x0013, bytes(range(37)))], fingerprint=False)
    seeds["channel_bind"] = message(0x0009, [
        attr(0x000C, b"\x40\x01\0\0"), attr(0x0012, xor_addr("203.0.113.9", 5000)), *auth], integrity=True)
    seeds["create_permission"] = message(0x0008, [
        attr(0x0012, xor_addr("203.0.113.9", 0)), attr(0x0012, xor_addr("2001:db8::9", 0)), *auth],
        integrity=True)
    seeds["refresh_zero"] = message(0x0004, [attr(0x000D, b"\0\0\0\0"), *auth], integrity=True)
    seeds["binding_plain"] = message(0x0001, [], fingerprint=False)
    seeds["channel_data"] = channel_data(0x4001, b"rtp payload", padded=False)
    seeds["channel_data_padded"] = channel_data(0x4FFF, b"abcde", padded=True)
    seeds["channel_data_empty"] = channel_data(0x4000, b"", padded=False)
    seeds["stream_mixed"] = (seeds["allocate_request"] + channel_data(0x4001, b"x", padded=True)
                             + seeds["binding_plain"] + channel_data(0x4002, bytes(8), padded=True))
    for name, data in seeds.items():
        (OUT / f"{name}.bin").write_bytes(data)


if __name__ == "__main__":
    main()
