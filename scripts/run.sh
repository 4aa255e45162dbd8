#!/usr/bin/env bash
# One command from a fresh machine to a running relay: installs the runtime build
# dependencies, builds callrelay (without tests, in build-run/) and starts it. With no
# arguments it runs on the embedded default configuration: STUN/TURN on UDP 3478, and a REST
# secret generated on first start in the state directory (/var/lib/callrelay; for a user who
# cannot write there, ~/.local/state/callrelay). Arguments go to callrelay, e.g.
#   bash scripts/run.sh --config /etc/callrelay/callrelay.yaml
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh" --runtime-only
cmake -S "$root" -B "$root/build-run" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCALLRELAY_BUILD_TESTS=OFF -DCALLRELAY_BUILD_BENCH=OFF
cmake --build "$root/build-run" -j "$(nproc)" --target callrelay

args=("$@")
default_state=/var/lib/callrelay
if [[ $# == 0 && $(id -u) != 0 && ! -w $default_state && ! -w $(dirname "$default_state") ]]; then
  args=(--state-dir "${XDG_STATE_HOME:-$HOME/.local/state}/callrelay")
fi
exec "$root/build-run/app/callrelay" "${args[@]}"
