#!/usr/bin/env bash
# Generates the MyResource CRD with controller-gen and turns it into a Helm
# template: installed only when .Values.crds.install, and kept on
# `helm uninstall` so users' MyResources survive. A template (not crds/) so
# that `helm upgrade` upgrades it.
#
#   test/tools/gen-crd.sh <controller-gen> <output.yaml>
#
# generateEmbeddedObjectMeta: without it the pod template's metadata is a
# bare `type: object` and the API server prunes its labels and annotations.
#
# The descriptions inside spec.deployment.template are Kubernetes' own
# PodSpec docs (kubectl explain pod.spec has them). With them the CRD is
# 330 KB as JSON, over the 256 KiB a client-side `kubectl apply` can keep in
# its last-applied annotation; without them it is 90 KB. Every description
# of this API's own fields stays.
set -euo pipefail
gen=$1 out=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$gen" crd:generateEmbeddedObjectMeta=true paths=./api/... output:crd:dir="$tmp"
mkdir -p "$(dirname "$out")"

# Deletes every description (its line and deeper-indented continuation lines)
# nested more than one level below the first `template:` key, i.e. inside the
# PodTemplateSpec, but keeps the description of the template field itself.
strip_template_docs() {
  awk '
    function indent(l) { match(l, /^ */); return RLENGTH }
    BEGIN { skip = -1 }
    {
      ind = indent($0)
      if (skip >= 0) { if (ind > skip || $0 ~ /^ *$/) next; skip = -1 }
      if (in_t && ind <= t_ind && $0 !~ /^ *$/) in_t = 0
      if (in_t && ind > t_ind + 2 && $0 ~ /^ *description:/) { skip = ind; next }
      if (!seen && $0 ~ /^ *template:$/) { in_t = 1; seen = 1; t_ind = ind }
      print
    }' "$1"
}

# metav1.LabelSelector and corev1.ServicePort are validated in Go by the API
# server, but their CRD schemas carry no bounds, and field markers cannot
# reach inside them. Without bounds every CEL rule that iterates a selector
# is estimated at megabytes of input and the CRD is refused; with them the
# clusterSelector and Service port rules fit the cost budget, also inside
# overrides[]. The bounds are Kubernetes' own (label key 317, label value and
# port name 63 characters) plus list sizes no real selector reaches (the
# ClusterSelector docs in api/v1 state them to users). Each
# entry is a schema path suffix and the lines added under it; a key line is
# matched by the path of keys above it, so text inside descriptions, which
# is indented under its `description:` key, is never touched.
add_bounds() {
  awk '
    function indent(l) { match(l, /^ */); return RLENGTH }
    BEGIN {
      sel = "clusterSelector/properties/"
      add[sel "matchExpressions"] = "maxItems: 16"
      add[sel "matchExpressions/items/properties/key"] = "maxLength: 317"
      add[sel "matchExpressions/items/properties/operator"] = "enum:\n- In\n- NotIn\n- Exists\n- DoesNotExist"
      add[sel "matchLabels"] = "maxProperties: 64"
      add[sel "matchLabels/additionalProperties"] = "maxLength: 63"
      add["service/properties/ports/items/properties/name"] = "maxLength: 63"
      depth = 0
    }
    {
      print
      if (!match($0, /^ *[A-Za-z0-9_.-]+:/)) next
      ind = indent($0)
      while (depth > 0 && ind_at[depth] >= ind) depth--
      key = substr($0, ind + 1); sub(/:.*/, "", key)
      depth++; ind_at[depth] = ind; name[depth] = key
      path = name[1]
      for (d = 2; d <= depth; d++) path = path "/" name[d]
      for (t in add) {
        if (length(path) > length(t) && substr(path, length(path) - length(t)) == "/" t) {
          n = split(add[t], lines, "\n")
          for (i = 1; i <= n; i++) printf "%*s%s\n", ind + 2, "", lines[i]
        }
      }
    }' "$1"
}

{
  echo '{{- if .Values.crds.install }}'
  strip_template_docs "$tmp/example.com_myresources.yaml" > "$tmp/stripped.yaml"
  add_bounds "$tmp/stripped.yaml" |
    sed -e '/^---$/d' \
        -e 's/^  annotations:$/  annotations:\n    helm.sh\/resource-policy: keep/'
  echo '{{- end }}'
} > "$out"
