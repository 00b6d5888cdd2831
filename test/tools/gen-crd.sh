#!/usr/bin/env bash
# Generates the MyResource CRD with controller-gen and turns it into a Helm
# template: installed only when .Values.crds.install, and kept on
# `helm uninstall` so users' MyResources survive. A template (not crds/) so
# that `helm upgrade` upgrades it.
#
#   test/tools/gen-crd.sh <controller-gen> <output.yaml>
set -euo pipefail
gen=$1 out=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$gen" crd paths=./api/... output:crd:dir="$tmp"
mkdir -p "$(dirname "$out")"
{
  echo '{{- if .Values.crds.install }}'
  sed -e '/^---$/d' \
      -e 's/^  annotations:$/  annotations:\n    helm.sh\/resource-policy: keep/' \
      "$tmp/example.com_myresources.yaml"
  echo '{{- end }}'
} > "$out"
