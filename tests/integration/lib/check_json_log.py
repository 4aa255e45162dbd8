#!/usr/bin/env python3
"""check_json_log.py LOG...: fails (exit 1, the offending lines on stderr) unless every line of
each server log is one JSON object with the fields every line carries ("time", "level",
"event", "message"). Lines from the first sanitizer report on are not checked: the report
fails the test by itself, in its own words."""
import json
import re
import sys

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:|^==\d+==")
REQUIRED = ("time", "level", "event", "message")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {"error", "warn", "info", "debug"}


def problem(line):
    """Why `line` is not a valid JSON log line, or None."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        return f"not JSON ({e})"
    if not isinstance(obj, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        return f"no {', '.join(missing)}"
    if not isinstance(obj["time"], str) or not TIME.match(obj["time"]):
        return f"time {obj['time']!r} is not RFC 3339 UTC with milliseconds"
    if obj["level"] not in LEVELS:
        return f"unknown level {obj['level']!r}"
    if not isinstance(obj["event"], str) or not obj["event"]:
        return "empty event"
    return None


def check(path):
    bad = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError:
                bad.append((number, "not UTF-8", raw[:200]))
                continue
            if SANITIZER.search(line):
                break
            why = problem(line)
            if why:
                bad.append((number, why, line[:300]))
    for number, why, line in bad[:20]:
        print(f"{path}:{number}: {why}: {line}", file=sys.stderr)
    return not bad


if __name__ == "__main__":
    ok = all([check(p) for p in sys.argv[1:]])
    sys.exit(0 if ok else 1)
