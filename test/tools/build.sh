#!/usr/bin/env bash
# Builds one pinned tools module's binaries into BIN_DIR, from the Go module
# proxy only. A stamp file records the module's go.mod+go.sum hash, so a
# second run with the same pins does nothing.
#
#   test/tools/build.sh <module-dir> <bin-dir>
set -euo pipefail
mod=$(cd "$1" && pwd)
bin=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
name=$(basename "$mod")
mkdir -p "$bin/.stamps"
stamp="$bin/.stamps/$name"
want=$(cat "$mod/go.mod" "$mod/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

start=$(date +%s)
say() { printf '[tools] %-6s %4ds  %s\n' "$name" $(( $(date +%s) - start )) "$*"; }

# A user who already has matching binaries (setup-envtest users) points
# KUBEBUILDER_ASSETS at them; those are used as they are and not built.
prebuilt() {
  if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/$1 ]]; then
    say "using $KUBEBUILDER_ASSETS/$1, not building it"
    return 0
  fi
  return 1
}

# version of the module that provides the binaries, for -X stamping
modver() { (go list -m -f '{{.Version}}' "$1"); }

cd "$mod"
case $name in
  k8s)
    v=$(modver k8s.io/kubernetes); minor=${v#v1.}; minor=${minor%%.*}
    ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
    done
    for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      prebuilt "$b" && continue
      say "building $b $v (cold, 2 idle cores: kube-apiserver ~9 min, the others 1-3 min)"
      go build -trimpath -ldflags "$ld" -o "$bin/$b" "k8s.io/kubernetes/cmd/$b"
    done ;;
  etcd)
    v=$(modver go.etcd.io/etcd/server/v3)
    prebuilt etcd && { echo "$want" > "$stamp"; exit 0; }
    say "building etcd $v (~1 min cold)"
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 ;;
  kwok)
    v=$(modver sigs.k8s.io/kwok)
    ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=1.37.2"
    for b in kwok kwokctl; do
      say "building $b $v (~1.5 min cold)"
      go build -trimpath -ldflags "$ld" -o "$bin/$b" "sigs.k8s.io/kwok/cmd/$b"
    done ;;
  *)
    say "building the pinned tools of $name"
    go build -trimpath -ldflags "-s -w" -o "$bin/" tool ;;
esac
echo "$want" > "$stamp"
say "done"
