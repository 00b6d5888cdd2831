package prometheus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"
)

// alertTests is the part of a promtool unit test file that says which alert
// each case evaluates and what it expects.
type alertTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string           `json:"alertname"`
			ExpAlerts []map[string]any `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestAlertRules checks the chart's PrometheusRule with promtool: the rules
// are valid, and the unit tests committed next to the chart show every alert
// firing when it should and silent otherwise. The rules promtool loads are
// rendered from the chart here, so the tests cannot drift from it.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	g := NewWithT(t)
	rules := renderRules(t)
	alerts := rules.alerts()
	g.Expect(alerts).NotTo(BeEmpty(), "the chart's PrometheusRule has alerts")
	testFile := chartFile("tests", "alerts_test.yaml")
	raw, err := os.ReadFile(testFile)
	g.Expect(err).NotTo(HaveOccurred())
	var tests alertTests
	g.Expect(yaml.Unmarshal(raw, &tests)).To(Succeed())
	g.Expect(tests.RuleFiles).To(Equal([]string{"rules.yaml"}), "%s loads the rules the test renders", testFile)

	// unitTests runs the committed tests against rules in a directory of
	// their own.
	unitTests := func(t *testing.T, rules ruleGroups) (string, error) {
		dir := t.TempDir()
		writeRules(t, filepath.Join(dir, "rules.yaml"), rules)
		if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return run(t, dir, promtool, "test", "rules", "alerts_test.yaml")
	}

	t.Run("promtool check rules passes on the rendered rules", func(t *testing.T) {
		for _, set := range [][]string{
			nil,
			// Durations the values schema lets through, as Prometheus spells them.
			{"prometheusRule.memberUnreachableFor=1d", "prometheusRule.myResourceNotReadyFor=1h30m", "prometheusRule.reconcileErrorsFor=300ms",
				"prometheusRule.severity=critical", "prometheusRule.labels.release=kube-prometheus-stack"},
		} {
			path := filepath.Join(t.TempDir(), "rules.yaml")
			writeRules(t, path, renderRules(t, set...))
			out, err := run(t, "", promtool, "check", "rules", path)
			NewWithT(t).Expect(err).NotTo(HaveOccurred(), "promtool check rules with %v:\n%s", set, out)
			t.Logf("values %v: %s", set, strings.TrimSpace(out))
		}
	})

	t.Run("promtool test rules passes", func(t *testing.T) {
		out, err := unitTests(t, rules)
		NewWithT(t).Expect(err).NotTo(HaveOccurred(), "promtool test rules %s:\n%s", testFile, out)
		t.Logf("%s", strings.TrimSpace(out))
	})

	t.Run("every alert has a test where it fires and one where it is silent", func(t *testing.T) {
		g := NewWithT(t)
		fires, silent := map[string]int{}, map[string]int{}
		for _, tc := range tests.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					silent[a.Alertname]++
				}
			}
		}
		var names []string
		for _, a := range alerts {
			names = append(names, a.Alert)
			g.Expect(fires).To(HaveKey(a.Alert), "%s has no test in %s where it fires", a.Alert, testFile)
			g.Expect(silent).To(HaveKey(a.Alert), "%s has no test in %s where it stays silent", a.Alert, testFile)
		}
		for name := range fires {
			g.Expect(names).To(ContainElement(name), "%s tests alert %s, which the chart does not have", testFile, name)
		}
		for name := range silent {
			g.Expect(names).To(ContainElement(name), "%s tests alert %s, which the chart does not have", testFile, name)
		}
		t.Logf("%d alerts, each tested firing and silent: %v", len(names), names)
	})

	// The tests really test the rules: with an alert's expression made
	// empty, its firing case fails; with its for dropped, so that it fires
	// at once, its silent case while pending fails.
	mutations := []struct {
		what   string
		mutate func(r map[string]any)
	}{
		{"never fires", func(r map[string]any) { r["expr"] = "vector(1) < 0" }},
		{"fires at once", func(r map[string]any) { delete(r, "for") }},
	}
	for _, a := range alerts {
		for _, m := range mutations {
			what, mutate := m.what, m.mutate
			t.Run(a.Alert+" tests fail when it "+what, func(t *testing.T) {
				broken := renderRules(t)
				for _, grp := range broken.Groups {
					for _, r := range grp.Rules {
						if r["alert"] == a.Alert {
							mutate(r)
						}
					}
				}
				out, err := unitTests(t, broken)
				g := NewWithT(t)
				g.Expect(err).To(HaveOccurred(), "promtool test rules passes when %s %s:\n%s", a.Alert, what, out)
				g.Expect(out).To(ContainSubstring("alertname: "+a.Alert), "promtool names the alert")
			})
		}
	}
}
