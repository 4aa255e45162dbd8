#!/usr/bin/env bash
# Installs the Debian 12 packages callrelay needs: everything to build and run the whole test
# suite, or with --runtime-only just enough to build and run the relay. Idempotent: when every
# package is already installed it changes nothing (and needs no network).
#
# Usage: scripts/install-deps.sh [--runtime-only]
# Runs as root, or through sudo when started by another user.
set -euo pipefail

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }

runtime_only=0
for arg in "$@"; do
  case "$arg" in
    --runtime-only) runtime_only=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

# Compiler, build system and the libraries the relay links.
build_packages=(
  build-essential cmake pkg-config g++ git ca-certificates
  libasio-dev libssl-dev libyaml-cpp-dev prometheus-cpp-dev libhttp-parser-dev zlib1g-dev
  nlohmann-json3-dev libjwt-dev libsqlite3-dev libcurl4-openssl-dev
  libsystemd-dev
)
# io_uring data path for the relay sockets (liburing 2.3 in Debian 12).
build_packages+=(liburing-dev)
# lld: links the test executables several times faster than GNU ld (CMake option
# CALLRELAY_LINKER; without it the build falls back to the compiler's default linker).
build_packages+=(lld)
# Test suite: GoogleTest, clang + libFuzzer/sanitizer runtimes for the fuzz build, real clients
# (coturn's turnutils_*, libnice, headless Chromium driven by playwright-core on node), and the
# process/network tools the integration tests use.
test_packages=(
  clang libclang-rt-14-dev libgtest-dev libgmock-dev googletest libnice-dev
  coturn chromium nodejs iproute2 procps
)
# Call records in PostgreSQL (cluster.postgres_url): libpq to build; the server for the tests,
# which start their own as an unprivileged process.
build_packages+=(libpq-dev)
test_packages+=(postgresql)
# Presence, signaling and shared state between instances in Redis (cluster.redis_url): hiredis
# to build; the server for the tests, which start their own as an unprivileged process.
build_packages+=(libhiredis-dev)
test_packages+=(redis-server redis-tools)
# Prometheus server and promtool (deploy/prometheus checks, live scrape test); curl for /metrics.
test_packages+=(prometheus curl)
# The TCP/TLS tests make a self-signed certificate and probe TLS versions with the openssl CLI.
test_packages+=(openssl)
# deploy/ checks: systemd-analyze verify on the unit.
test_packages+=(systemd)

packages=("${build_packages[@]}")
if [[ $runtime_only == 0 ]]; then
  packages+=("${test_packages[@]}")
  # Debian's npm depends on Debian's nodejs; on a machine whose node comes from elsewhere
  # (nodesource ships npm inside its nodejs package) installing it would conflict.
  if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} == 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

as_root=()
if [[ $(id -u) != 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
  as_root=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# coturn is only here for its test clients: its package must not start a turnserver (it would
# hold port 3478). A policy-rc.d answering 101 tells invoke-rc.d not to start services.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  added_policy=1
fi
remove_policy() { if [[ $added_policy == 1 ]]; then "${as_root[@]}" rm -f "$policy"; fi; }
trap remove_policy EXIT

"${as_root[@]}" apt-get update
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"

# On a machine booted with systemd, also keep the coturn unit from starting at boot.
if [[ " ${missing[*]} " == *" coturn "* && -d /run/systemd/system ]]; then
  "${as_root[@]}" systemctl disable --now coturn.service >/dev/null 2>&1 || true
fi
# Same for prometheus: the tests start their own server on a loopback port.
if [[ " ${missing[*]} " == *" prometheus "* && -d /run/systemd/system ]]; then
  "${as_root[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
echo "install-deps: done"
