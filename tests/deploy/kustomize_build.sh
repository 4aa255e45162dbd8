#!/bin/bash
# kustomize_build.sh DIR...: `kubectl kustomize` builds each kustomization (every resource file
# found and parsed as Kubernetes objects, names unique per kind) and the build holds as many
# objects as the listed files do. Exit 77 (skipped) without kubectl, which Debian does not
# package; the structure of the manifests is checked by deploy_tests either way.
set -u
command -v kubectl >/dev/null || { echo "SKIP: kubectl not installed"; exit 77; }
for dir in "$@"; do
  out="$(kubectl kustomize "$dir" 2>&1)" || { echo "FAIL: kubectl kustomize $dir: $out"; exit 1; }
  built="$(printf '%s\n' "$out" | grep -c '^kind: ')"
  listed=0
  for file in $(sed -nE 's/^  - ([A-Za-z0-9._-]+\.yaml)$/\1/p' "$dir/kustomization.yaml"); do
    listed=$((listed + $(grep -c '^kind: ' "$dir/$file")))
  done
  [ "$built" -gt 0 ] && [ "$built" -eq "$listed" ] ||
    { echo "FAIL: $dir builds $built objects, its files hold $listed"; exit 1; }
  echo "ok: $dir: $built objects"
done
