#!/usr/bin/env bash
# make test: every package's tests, in two phases, then a table of how long
# each package took.
#
#   1. The unit packages and the smaller control-plane ones (at most a hub
#      and two or three members, short-lived) run two at a time, as
#      `go test ./...` would.
#   2. The suites that run the operator binary against a hub and members
#      for minutes (up to about 17 processes each) run one at a time.
#      Two of them side by side pushed the load of the 2-core machine to
#      14-18 and every bounded wait in them then measured the other suite.
#
# Usage: test/run-tests.sh [go test flags...]   (GO picks the go binary)
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
flags=("$@")

# The heavy suites, in the order they run: the shortest first, so that a
# broken build or environment fails fast. test/prometheus (a hub, two members,
# the operator and a Prometheus server for about a minute) needs Debian's
# prometheus package: `apt-get install -y --no-install-recommends prometheus`.
heavy=(./test/prometheus ./test/chart ./test/e2e ./test/faults/outage ./test/faults/abuse)

module=$($GO list -m)
light=()
while read -r pkg; do
  rel=".${pkg#"$module"}"
  skip=
  for h in "${heavy[@]}"; do [[ $rel == "$h" ]] && skip=1; done
  [[ -z $skip ]] && light+=("$rel")
done < <($GO list ./...)

logs=$(mktemp -d)
results=$logs/results
trap 'rm -rf "$logs"' EXIT
status=0

# run LABEL PACKAGES...: go test, its per-package result lines kept for the
# table, with the wall time of the whole invocation (build included).
run() {
  local label=$1
  shift
  local began=$SECONDS
  echo "[test] $label: go test ${flags[*]} $*"
  $GO test "${flags[@]}" "$@" 2>&1 | tee "$logs/run.log"
  local rc=${PIPESTATUS[0]}
  grep -E '^(ok\s|FAIL\s|--- (PASS|FAIL))' "$logs/run.log" >>"$results"
  echo "[test] $label: exit $rc after $((SECONDS - began)) s wall"
  printf 'WALL\t%s\t%d\t%d\n' "$label" "$((SECONDS - began))" "$rc" >>"$results"
  ((rc == 0)) || status=1
}

began=$SECONDS
run "light packages (-p 2)" -p 2 "${light[@]}"
for pkg in "${heavy[@]}"; do
  # -v: each test's own figures (how long its waits took) and duration are
  # in the log, next to the bounds they are measured against.
  run "$pkg" -p 1 -v "$pkg"
done

echo
echo "[test] time per package (go test's figure: the test binary's run, build excluded)"
grep -E '^(ok|FAIL)\s+example' "$results" | awk '{printf "  %-6s %-50s %s\n", $1, $2, $3}'
echo "[test] wall time per phase (build included)"
awk -F'\t' '$1 == "WALL" {printf "  %-40s %5d s  exit %d\n", $2, $3, $4}' "$results"
echo "[test] the slowest tests of the control-plane suites"
grep -E '^--- (PASS|FAIL)' "$results" | sed -E 's/^--- (PASS|FAIL): ([^ ]+) \(([0-9.]+)s\)/\3 \1 \2/' | sort -rn | head -12 |
  awk '{printf "  %8.1f s  %-4s %s\n", $1, $2, $3}'
grep -E '^--- FAIL' "$results" | sed 's/^/  /'
echo "[test] make test: exit $status after $((SECONDS - began)) s"
exit $status
