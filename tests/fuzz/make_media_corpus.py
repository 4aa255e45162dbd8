#!/usr/bin/env python3
"""Writes the seeds of fuzz_media_monitor (tests/fuzz/corpus_media/): RTP streams with and
without a payload map, padding, a restart, and Binding transactions crossing both ways, in the
target's input format (see fuzz_media_monitor.cpp).

Run it from anywhere after changing it; the generated files are checked in, so CI never runs it.
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus_media"
COOKIE = 0x2112A442
ROLE = {"unknown": 0, "audio": 1, "video": 2, "repair": 3}
CLOCK = {0: 0, 1: 1, 48000: 2, 0xFFFFFFFF: 3}


def rtp(ssrc, seq, ts, pt, payload=40, padding=0, marker=False):
    first = 0x80 | (0x20 if padding else 0)
    body = b"\xab" * payload + (b"\0" * (padding - 1) + bytes([padding]) if padding else b"")
    return struct.pack("!BBHII", first, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + body


def binding(kind, tid):
    return struct.pack("!HHI", kind, 0, COOKIE) + tid


def record(step_ms, datagram, from_peer=False):
    assert len(datagram) < 128 and step_ms < 128
    return bytes([step_ms, len(datagram) | (0x80 if from_peer else 0)]) + datagram


def payload_map(entries):
    nibbles = [0] * 128
    for pt, (role, clock) in entries.items():
        nibbles[pt] = ROLE[role] | CLOCK[clock] << 2
    return bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, 128, 2))


def audio(n, ssrc=0x1111, seq=100, step=960, ms=20, pt=111):
    return b"".join(record(ms, rtp(ssrc, seq + i, i * step, pt)) for i in range(n))


def main():
    OUT.mkdir(exist_ok=True)
    video = b"".join(record(0 if i % 3 else 33, rtp(0x2222, 5000 + i, (i // 3) * 3000, 96,
                                                   payload=100, marker=i % 3 == 2))
                     for i in range(30))
    rtx = b"".join(record(5, rtp(0x3333, 9000 + i, i * 3000, 97, payload=60)) for i in range(5))
    padding = b"".join(record(7, rtp(0x2222, 5030 + i, 30000, 96, payload=0, padding=100))
                       for i in range(3))
    checks = (record(1, binding(0x0001, bytes(range(12))))
              + record(2, binding(0x0001, bytes(range(1, 13))), True)
              + record(5, binding(0x0101, bytes(range(12))), True)
              + record(3, binding(0x0101, bytes(range(1, 13)))))
    seeds = {
        "audio_no_map.bin": b"\0" + audio(20),
        "audio_dynamic_guess.bin": b"\0" + audio(20, pt=100),
        "audio_wrap_and_restart.bin": b"\0" + audio(10, seq=65530) + audio(10, seq=30000),
        "video_rtx_padding_map.bin": b"\1" + payload_map(
            {96: ("video", 0), 97: ("repair", 0), 111: ("audio", 48000)}) + video + rtx + padding,
        "bindings_both_legs.bin": b"\0" + checks + audio(5),
        "odd_clocks_map.bin": b"\1" + payload_map(
            {111: ("audio", 1), 96: ("video", 0xFFFFFFFF)}) + audio(10) + video[:200],
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
