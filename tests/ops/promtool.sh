#!/usr/bin/env bash
# Runs one promtool check on the files in deploy/prometheus/ (ctest: ops.promtool_*).
# Fails when promtool is missing (Debian package `prometheus`, in scripts/install-deps.sh) or
# when promtool rejects a file.
#
# Usage: promtool.sh check-config|check-rules|test-rules DEPLOY_PROMETHEUS_DIR
set -euo pipefail

mode="${1:?usage: promtool.sh check-config|check-rules|test-rules DIR}"
dir="${2:?usage: promtool.sh MODE DIR}"
command -v promtool >/dev/null 2>&1 ||
  { echo "FAIL: promtool not found (install the Debian package 'prometheus': scripts/install-deps.sh)" >&2; exit 1; }
cd "$dir"
case "$mode" in
  check-config) exec promtool check config prometheus.yml prometheus-kubernetes.yml ;;
  check-rules) exec promtool check rules alerts.yml ;;
  test-rules) exec promtool test rules alerts_test.yml alerts_week_test.yml ;;
  *) echo "promtool.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
