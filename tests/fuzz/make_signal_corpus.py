#!/usr/bin/env python3
"""Writes the seed corpora of the signaling fuzz targets: corpus_signal/ (client messages of
every type, as the browser SDK sends them) and corpus_token/ (tokens, and header/claims pairs
that fuzz_signal_token signs itself).

Run it from anywhere after changing it; the generated files are checked in, so CI never runs it.
"""
import base64
import hashlib
import hmac
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
CALL = "c_Yq3vT0bE-x_9kLmNoPqRsT"
SECRET = b"fuzz-signaling-secret-0123456789abcdef"  # as in fuzz_signal_token.cpp
NOW = 1999999000  # the target's clock

SDP = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "a=group:BUNDLE 0 1", "a=msid-semantic: WMS stream",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Hk8s", "a=ice-pwd:5u9M0Cx3QhR1yT8aPz2dLw7b", "a=ice-options:trickle",
    "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:"
    "C2:43:F0:A1:58:D0:A1:2C:19:08",
    "a=setup:actpass", "a=mid:0", "a=sendrecv", "a=rtcp-mux", "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:0 PCMU/8000",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=mid:1", "a=sendrecv",
    "a=rtcp-mux", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli", "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
]) + "\r\n"

CANDIDATE = ("candidate:842163049 1 udp 1677729535 203.0.113.7 51234 typ srflx raddr 0.0.0.0 "
             "rport 0 generation 0 ufrag Hk8s network-cost 999")

MESSAGES = {
    "invite": {"type": "invite", "seq": 1,
               "payload": {"to": "bob", "media": {"audio": True, "video": True}}},
    "invite_audio": {"type": "invite", "seq": 3, "payload": {"to": "Zoë"}},
    "ringing": {"type": "ringing", "seq": 1, "call": CALL},
    "accept": {"type": "accept", "seq": 2, "call": CALL,
               "payload": {"media": {"audio": True, "video": False}}},
    "decline": {"type": "decline", "seq": 2, "call": CALL, "payload": {"reason": "busy"}},
    "cancel": {"type": "cancel", "seq": 2, "call": CALL},
    "hangup": {"type": "hangup", "seq": 9, "call": CALL, "payload": {"reason": "ice-failed"}},
    "offer": {"type": "offer", "seq": 2, "call": CALL, "payload": {"sdp": SDP}},
    "offer_restart": {"type": "offer", "seq": 5, "call": CALL,
                      "payload": {"sdp": SDP, "restart": True}},
    "answer": {"type": "answer", "seq": 3, "call": CALL,
               "payload": {"sdp": SDP.replace("a=setup:actpass", "a=setup:active")}},
    "candidate": {"type": "candidate", "seq": 4, "call": CALL,
                  "payload": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0,
                              "usernameFragment": "Hk8s"}},
    "candidate_end": {"type": "candidate", "seq": 6, "call": CALL,
                      "payload": {"candidate": "", "sdpMid": None, "sdpMLineIndex": None}},
    "ice_restart": {"type": "ice-restart", "seq": 7, "call": CALL},
    "connected": {"type": "connected", "seq": 8, "call": CALL, "payload": {}},
    "stats": {"type": "stats", "seq": 12, "call": CALL, "payload": {
        "interval_ms": 5000,
        "inbound": [{"kind": "audio", "packets_received": 250, "packets_lost": 3,
                     "jitter_ms": 4.2, "bitrate_bps": 32000, "frames_decoded": 0,
                     "frames_dropped": 0},
                    {"kind": "video", "packets_received": 880, "packets_lost": 20,
                     "jitter_ms": 12.75, "bitrate_bps": 812345.5, "frames_decoded": 149,
                     "frames_dropped": 1}],
        "outbound": [{"kind": "video", "packets_sent": 900, "bitrate_bps": 800000,
                      "rtt_ms": 12.5, "remote_packets_lost": 9, "remote_jitter_ms": 3.1}],
        "pair": {"local_type": "relay", "remote_type": "srflx", "protocol": "udp",
                 "relay_protocol": "tls", "rtt_ms": 10.2}}},
    "stats_minimal": {"type": "stats", "seq": 13, "call": CALL,
                      "payload": {"interval_ms": 1000, "inbound": [{"kind": "audio",
                                                                    "jitter_ms": None}]}},
    "media_fallback": {"type": "media", "seq": 14, "call": CALL,
                       "payload": {"audio": True, "video": False, "reason": "poor-quality"}},
    "media_restored": {"type": "media", "seq": 15, "call": CALL,
                       "payload": {"video": True, "reason": "quality-restored"}},
    # Above the tiny limits of the target, so that libFuzzer grows inputs past them.
    "offer_large": {"type": "offer", "seq": 10, "call": CALL,
                    "payload": {"sdp": SDP + "a=ssrc:2797402823 cname:q2Yb1nFhK8s0zT3e\r\n" * 60}},
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(header, claims, key=SECRET):
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def main():
    signal = HERE / "corpus_signal"
    signal.mkdir(exist_ok=True)
    for name, message in MESSAGES.items():
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        (signal / f"{name}.json").write_text(text, encoding="utf-8")

    hs256 = {"alg": "HS256", "typ": "JWT"}
    alice = {"sub": "alice", "tenant": "acme", "iat": NOW, "exp": NOW + 300}
    tokens = {
        "valid": token(hs256, alice),
        "valid_no_tenant": token(hs256, {"sub": "bob", "exp": NOW + 3600}),
        "expired": token(hs256, dict(alice, exp=NOW - 1)),
        "other_key": token(hs256, alice, key=b"another-secret-of-at-least-32-bytes"),
        "alg_none": b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(alice).encode()) + ".",
        "alg_hs512": token({"alg": "HS512", "typ": "JWT"}, alice),
        # Well signed but above the 4096-byte limit; also lets libFuzzer grow inputs that far.
        "too_long": token(hs256, dict(alice, pad="p" * 3200)),
    }
    tok = HERE / "corpus_token"
    tok.mkdir(exist_ok=True)
    for name, text in tokens.items():
        (tok / f"{name}.jwt").write_text(text)
    # Header and claims as JSON on two lines: the target signs them with its secret.
    pairs = {
        "signed_valid": (hs256, alice),
        "signed_far_exp": (hs256, dict(alice, exp=NOW + 86400)),
        "signed_bad_sub": (hs256, {"sub": "a:b", "exp": NOW + 60}),
        "signed_crit": ({"alg": "HS256", "crit": ["exp"]}, alice),
    }
    for name, (header, claims) in pairs.items():
        (tok / f"{name}.txt").write_text(json.dumps(header) + "\n" + json.dumps(claims))


if __name__ == "__main__":
    main()
