#!/usr/bin/env bash
# Prints the go.mod replace block that pins every Kubernetes staging module to
# the published version matching K8S_VERSION (k8s.io/kubernetes vX.Y.Z ->
# staging modules v0.Y.Z). k8s.io/kubernetes requires its staging modules at
# v0.0.0 and maps them to ./staging with replace directives that do not apply
# to a consumer, so a consumer must pin them itself.
#
# Usage: hack/gen-replace.sh v1.36.3 > /tmp/replace.txt
set -euo pipefail
version="${1:?usage: gen-replace.sh vMAJOR.MINOR.PATCH}"
staging="v0.${version#v1.}"
proxy="${GOPROXY_URL:-https://proxy.golang.org}"
echo "replace ("
curl -fsS "${proxy}/k8s.io/kubernetes/@v/${version}.mod" \
  | awk '/^[[:space:]]+k8s\.io\/[a-z0-9-]+ v0\.0\.0$/ {print $1}' \
  | sort -u \
  | while read -r mod; do printf '\t%s => %s %s\n' "$mod" "$mod" "$staging"; done
echo ")"
