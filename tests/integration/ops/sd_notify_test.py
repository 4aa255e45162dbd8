#!/usr/bin/env python3
"""callrelay speaks systemd's notification protocol (sd_notify(3)) to a real NOTIFY_SOCKET:
READY=1 once its listeners are bound (after the "ready" line), WATCHDOG=1 pings at a quarter of
WATCHDOG_USEC while its workers heartbeat, STOPPING=1 when SIGTERM starts the drain, and exit
status 0. The socket is this test's own AF_UNIX datagram socket, as systemd would provide."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import check_json_log  # noqa: E402  (the JSON-log check every harness applies)

TIMEOUT_S = 30
# CALLRELAY_TEST_LOG_FORMAT=json: the server logs JSON lines, each checked at the end.
JSON_LOGS = os.environ.get("CALLRELAY_TEST_LOG_FORMAT") == "json"


def fail(msg, log=""):
    print(f"FAIL: {msg}\n---- callrelay output ----\n{log}", file=sys.stderr)
    sys.exit(1)


def main():
    binary = sys.argv[1]
    work = tempfile.mkdtemp(prefix="callrelay-notify-")
    sock_path = os.path.join(work, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(1.0)
    config = os.path.join(work, "callrelay.yaml")
    with open(config, "w") as f:
        f.write('listen: {udp: ["127.0.0.1:0"]}\n'
                "relay: {ports: {min: 61000, max: 65000}}\n"
                f"workers: 2\nstate_dir: {work}\n"
                'auth: {secrets: ["notifytestsecret"]}\n'
                'http: {listen: "127.0.0.1:0"}\n'
                + ("log: {format: json}\n" if JSON_LOGS else ""))
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)  # unset: the watchdog applies to the process that reads it
    log_path = os.path.join(work, "out.log")
    with open(log_path, "w") as out:
        proc = subprocess.Popen([binary, "--config", config], stdout=out, stderr=out, env=env)
    log = lambda: open(log_path).read()
    messages = []

    def wait_for(what, pred):
        end = time.monotonic() + TIMEOUT_S
        while time.monotonic() < end:
            if any(pred(m) for m in messages):
                return
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                if proc.poll() is not None:
                    fail(f"callrelay exited ({proc.returncode}) before {what}", log())
        fail(f"no {what} within {TIMEOUT_S} s; got {messages}", log())

    try:
        wait_for("READY=1", lambda m: "READY=1" in m.split("\n"))
        ready = '"message":"ready"}\n' if JSON_LOGS else "\nready\n"
        if ready not in "\n" + log():
            fail("READY=1 came before the listeners were bound ('ready' line)", log())
        before = sum(m == "WATCHDOG=1" for m in messages)
        wait_for("three watchdog pings",
                 lambda m: sum(x == "WATCHDOG=1" for x in messages) >= before + 3)
        proc.send_signal(signal.SIGTERM)
        wait_for("STOPPING=1", lambda m: "STOPPING=1" in m.split("\n"))
        try:
            code = proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            fail("callrelay did not exit after SIGTERM with no allocation live", log())
        if code != 0:
            fail(f"exit status {code}, expected 0", log())
        if JSON_LOGS and not check_json_log.check(log_path):
            fail("a log line is not one JSON object (log.format: json)", log())
        print(f"ok: {len(messages)} notifications: "
              f"{sorted(set(m.split(chr(10))[0] for m in messages))}")
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


if __name__ == "__main__":
    main()
