package prometheus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"example.com/hub-operator/test/controlplane"
)

const (
	// release and releaseNS are the chart's release; the rules select the
	// job of its metrics Service, hub-hub-operator-metrics.
	release   = "hub"
	releaseNS = "hub-operator-system"
)

// tool finds a binary of Debian's prometheus package on PATH. A missing one
// fails the test, as make test must not pass without it, but under -short,
// where it skips.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not on PATH: install Debian's prometheus package (`apt-get install -y --no-install-recommends prometheus`: "+
		"/usr/bin/prometheus and /usr/bin/promtool; .ci/run does it)", name)
	if testing.Short() {
		t.Skip(msg)
	}
	t.Fatal(msg)
	return ""
}

// run runs a command and returns its combined output and error.
func run(t *testing.T, dir, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// alertRule is an alerting rule of a rules file.
type alertRule struct{ Alert, Expr, For string }

// ruleGroups is a Prometheus rules file: the spec of a PrometheusRule.
type ruleGroups struct {
	Groups []struct {
		Name  string           `json:"name"`
		Rules []map[string]any `json:"rules"`
	} `json:"groups"`
}

// alerts lists the alert rules of every group.
func (g ruleGroups) alerts() []alertRule {
	var out []alertRule
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			a, _ := r["alert"].(string)
			if a == "" {
				continue
			}
			e, _ := r["expr"].(string)
			f, _ := r["for"].(string)
			out = append(out, alertRule{Alert: a, Expr: e, For: f})
		}
	}
	return out
}

// renderRules renders the chart's PrometheusRule (more values in set) and
// returns its spec, a Prometheus rules file.
func renderRules(t *testing.T, set ...string) ruleGroups {
	t.Helper()
	args := []string{"--set", "prometheusRule.enabled=true"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	var found []ruleGroups
	for _, m := range controlplane.RenderChart(t, release, releaseNS, args...) {
		if m.Kind != "PrometheusRule" {
			continue
		}
		var pr struct {
			Spec ruleGroups `json:"spec"`
		}
		if err := yaml.Unmarshal(m.YAML, &pr); err != nil {
			t.Fatalf("PrometheusRule %s: %v", m.Name, err)
		}
		found = append(found, pr.Spec)
	}
	if len(found) != 1 {
		t.Fatalf("the chart rendered %d PrometheusRules with %s, want 1", len(found), strings.Join(args, " "))
	}
	return found[0]
}

// writeRules writes rules as a rules file at path.
func writeRules(t *testing.T, path string, rules ruleGroups) {
	t.Helper()
	b, err := yaml.Marshal(rules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// chartFile is a file of the chart.
func chartFile(parts ...string) string {
	return filepath.Join(append([]string{controlplane.ChartDir()}, parts...)...)
}
