package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// leafKeys lists the dotted paths of values' leaves (a list or an empty map
// is a leaf: it is one value to the user).
func leafKeys(prefix string, v any) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var keys []string
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		keys = append(keys, leafKeys(p, sub)...)
	}
	sort.Strings(keys)
	return keys
}

// TestChartReadmeListsEveryValue keeps the chart README's table in step with
// values.yaml: a value is documented when its key, or a parent key
// documented as a whole (like `resources`), is in the table.
func TestChartReadmeListsEveryValue(t *testing.T) {
	values, err := os.ReadFile(filepath.Join(chartDir(), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(values, &v); err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 {
			rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = true
		}
	}
	for _, key := range leafKeys("", v) {
		documented := false
		for p := key; p != ""; p = p[:max(strings.LastIndex(p, "."), 0)] {
			if rows[p] {
				documented = true
				break
			}
		}
		if !documented {
			t.Errorf("value %s is not in the table of charts/hub-operator/README.md", key)
		}
	}
}

// TestChartValuesSchema: values.schema.json refuses a mistyped or misspelt
// value at `helm install` time, with the key in the message, instead of a
// Deployment whose operator exits on a bad flag.
func TestChartValuesSchema(t *testing.T) {
	helmBin(t)
	helm(t, nil, "template", release, chartDir(), "-n", releaseNS,
		"--set", "replicaCount=0,operator.clusterTimeout=1m30s,operator.memberQPS=7.5,podDisruptionBudget.minAvailable=50%")
	for _, bad := range []struct{ set, key string }{
		{"operator.fanOut=abc", "/operator/fanOut"},
		{"operator.clusterTimeout=15", "/operator/clusterTimeout"},
		{"operator.memberProbeInterval=often", "/operator/memberProbeInterval"},
		{"operator.memberProbeTimeout=5", "/operator/memberProbeTimeout"},
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"metrics.port=70000", "/metrics/port"},
		// Prometheus durations have no fractions (promtool: "not a valid duration string").
		{"prometheusRule.memberUnreachableFor=1.5m", "/prometheusRule/memberUnreachableFor"},
		{"metrics.serviceMonitor.interval=500us", "/metrics/serviceMonitor/interval"},
		{"operator.fanout=4", "fanout"},
		{"replicaCount=-1", "/replicaCount"},
	} {
		cmd := exec.CommandContext(t.Context(), helmBin(t), "template", release, chartDir(), "--set", bad.set)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("--set %s was accepted", bad.set)
			continue
		}
		if !strings.Contains(string(out), "schema") || !strings.Contains(string(out), bad.key) {
			t.Errorf("--set %s: want a schema error naming %s, got: %s", bad.set, bad.key, out)
		}
	}
}
