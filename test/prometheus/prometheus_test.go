package prometheus

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// Bounds of the waits. Prometheus scrapes and evaluates every second; what
// takes long is the operator on a loaded 2-core machine (a member restart
// reconnects with backoff).
const (
	waitScrape = 60 * time.Second
	waitReady  = 90 * time.Second
	waitQuery  = 60 * time.Second
)

// alertFor is the for: of every alert in the live run: short, so that the
// alerts fire within the scenario (their minutes-long defaults are tested by
// promtool against synthetic series).
const alertFor = "2s"

// monitoring is what the chart renders for Prometheus: the metrics Service,
// the ServiceMonitor endpoint scraping it, the metrics-reader ClusterRole and
// the alerts.
type monitoring struct {
	service  string
	endpoint endpoint
	reader   *rbacv1.ClusterRole
	rules    ruleGroups
}

// endpoint is a ServiceMonitor endpoint. Decoding is strict: a field the
// chart adds must be translated into the scrape config below.
type endpoint struct {
	Port            string `json:"port"`
	Scheme          string `json:"scheme"`
	Path            string `json:"path,omitempty"`
	Interval        string `json:"interval"`
	BearerTokenFile string `json:"bearerTokenFile"`
	TLSConfig       struct {
		InsecureSkipVerify bool `json:"insecureSkipVerify"`
	} `json:"tlsConfig"`
}

func renderMonitoring(t *testing.T) monitoring {
	t.Helper()
	g := NewWithT(t)
	var mon monitoring
	var svcLabels, selector, shipped map[string]string
	for _, m := range controlplane.RenderChart(t, release, releaseNS, "--set",
		"metrics.serviceMonitor.enabled=true,dashboards.enabled=true,prometheusRule.enabled=true,prometheusRule.memberUnreachableFor="+alertFor+
			",prometheusRule.myResourceNotReadyFor="+alertFor+",prometheusRule.reconcileErrorsFor="+alertFor+
			",prometheusRule.rolloutHaltedFor="+alertFor) {
		switch m.Kind {
		case "Service":
			var svc corev1.Service
			g.Expect(yaml.Unmarshal(m.YAML, &svc)).To(Succeed())
			mon.service, svcLabels = svc.Name, svc.Labels
		case "ServiceMonitor":
			var sm struct {
				metav1.TypeMeta `json:",inline"`
				Metadata        map[string]any `json:"metadata"`
				Spec            struct {
					Selector struct {
						MatchLabels map[string]string `json:"matchLabels"`
					} `json:"selector"`
					Endpoints []endpoint `json:"endpoints"`
				} `json:"spec"`
			}
			g.Expect(yaml.UnmarshalStrict(m.YAML, &sm)).To(Succeed(), "the ServiceMonitor has fields this test does not translate")
			g.Expect(sm.Spec.Endpoints).To(HaveLen(1))
			mon.endpoint, selector = sm.Spec.Endpoints[0], sm.Spec.Selector.MatchLabels
		case "ConfigMap":
			var cm corev1.ConfigMap
			g.Expect(yaml.Unmarshal(m.YAML, &cm)).To(Succeed())
			if cm.Labels["grafana_dashboard"] == "1" {
				shipped = cm.Data
			}
		case "ClusterRole":
			if strings.HasSuffix(m.Name, "-metrics-reader") {
				mon.reader = &rbacv1.ClusterRole{}
				g.Expect(yaml.Unmarshal(m.YAML, mon.reader)).To(Succeed())
			}
		case "PrometheusRule":
			var pr struct {
				Spec ruleGroups `json:"spec"`
			}
			g.Expect(yaml.Unmarshal(m.YAML, &pr)).To(Succeed())
			mon.rules = pr.Spec
		}
	}
	// The dashboards ship as they are in the chart (no Helm action in them
	// is rendered), so the files are what Grafana gets.
	files, err := filepath.Glob(chartFile("dashboards", "*.json"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shipped).To(HaveLen(len(files)), "the dashboards ConfigMap holds every dashboard of the chart")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(shipped).To(HaveKeyWithValue(filepath.Base(f), strings.TrimRight(string(raw), "\n")), "the ConfigMap ships %s as it is", f)
	}
	g.Expect(mon.service).NotTo(BeEmpty(), "the chart renders a metrics Service")
	g.Expect(mon.reader).NotTo(BeNil(), "the chart renders the metrics-reader ClusterRole")
	g.Expect(mon.rules.alerts()).NotTo(BeEmpty(), "the chart renders alerts")
	for k, v := range selector {
		g.Expect(svcLabels).To(HaveKeyWithValue(k, v), "the ServiceMonitor selects the metrics Service")
	}
	// In a pod, that file is the Prometheus ServiceAccount's token; here the
	// token is written to a file of the test's.
	g.Expect(mon.endpoint.BearerTokenFile).To(Equal("/var/run/secrets/kubernetes.io/serviceaccount/token"))
	return mon
}

// scrapeConfig is the scrape job prometheus-operator makes of the
// ServiceMonitor endpoint (job = the Service's name), aimed at the operator
// on this machine and scraping every second.
func (mon monitoring) scrapeConfig(target, tokenFile string) map[string]any {
	path := mon.endpoint.Path
	if path == "" {
		path = "/metrics"
	}
	return map[string]any{
		"job_name":        mon.service,
		"scheme":          mon.endpoint.Scheme,
		"metrics_path":    path,
		"scrape_interval": "1s",
		"scrape_timeout":  "1s",
		"authorization":   map[string]any{"type": "Bearer", "credentials_file": tokenFile},
		"tls_config":      map[string]any{"insecure_skip_verify": mon.endpoint.TLSConfig.InsecureSkipVerify},
		"static_configs": []any{map[string]any{
			"targets": []string{target},
			"labels":  map[string]string{"namespace": releaseNS, "service": mon.service, "endpoint": mon.endpoint.Port},
		}},
	}
}

// TestPrometheus runs the real operator against a hub and two members and a
// real Prometheus scraping it as the chart's ServiceMonitor says, drives a
// scenario that moves every series the dashboards and alerts read, and
// checks that every dashboard query returns data and every alert fires.
func TestPrometheus(t *testing.T) {
	promBin := tool(t, "prometheus")
	controlplane.HelmBinary(t)
	env := controlplane.StartForTest(t, controlplane.Options{Members: []controlplane.MemberOptions{
		{Name: "m1", FakeNodes: true}, // Deployments become Available; the quota controller runs
		{Name: "m2"},
	}})
	g := NewWithT(t)
	ctx := t.Context()
	hub := env.Hub.Client
	bin, err := controlplane.BuildOperator(true)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(env.Hub.InstallCRDs(ctx)).To(Succeed())
	for _, m := range env.Members {
		g.Expect(env.Register(ctx, m, suite.RegistryNamespace, nil)).To(Succeed())
	}
	mon := renderMonitoring(t)
	job := mon.service

	// Prometheus's ServiceAccount, bound to the chart's metrics-reader
	// ClusterRole before the operator starts: the operator caches a denial.
	g.Expect(hub.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}})).To(Succeed())
	token := suite.MetricsToken(t, env.Hub, "monitoring", "prometheus", mon.reader)
	dir := filepath.Join(env.Dir, "prometheus")
	g.Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	tokenFile := filepath.Join(dir, "token")
	g.Expect(os.WriteFile(tokenFile, []byte(token), 0o600)).To(Succeed())
	writeRules(t, filepath.Join(dir, "rules.yaml"), mon.rules)

	port, err := controlplane.FreePort()
	g.Expect(err).NotTo(HaveOccurred())
	target := "127.0.0.1:" + strconv.Itoa(port)
	_, err = env.StartOperator(controlplane.OperatorOptions{
		Binary: bin, RegistryNamespace: suite.RegistryNamespace,
		Args: append(suite.FastFailureArgs(), "--metrics-bind-address="+target),
	})
	g.Expect(err).NotTo(HaveOccurred())
	prom := startPrometheus(t, promBin, dir, map[string]any{
		"global":         map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files":     []string{"rules.yaml"},
		"scrape_configs": []any{mon.scrapeConfig(target, tokenFile)},
	})
	began := time.Now()
	sel := func(matchers string) string { return fmt.Sprintf(`{job=%q%s}`, job, matchers) }

	t.Run("Prometheus scrapes the operator with the ServiceAccount token", func(t *testing.T) {
		prom.waitFor(t, "the scrape is up", "up"+sel(""), waitScrape, func(v model.Vector) error {
			if len(v) != 1 || v[0].Value != 1 {
				return fmt.Errorf("up = %v; target: %s", v, prom.targetError(t.Context()))
			}
			return nil
		})
		prom.waitFor(t, "both members ready", `hub_operator_member_clusters`+sel(`,state="ready"`), waitReady, value(2))
	})

	mr := suite.NewMyResource(suite.NewNamespace(t, hub, "apps"), "web", 1, "m1")
	t.Run("a Ready MyResource", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(hub.Create(t.Context(), mr)).To(Succeed())
		suite.EventuallyReady(t, hub, mr, waitReady)
		prom.waitFor(t, "it counts as Ready", `hub_operator_myresources`+sel(`,ready="true"`), waitQuery, value(1))
		prom.waitFor(t, "applies to m1 are counted", `hub_operator_member_apply_total`+sel(`,cluster="m1"`), waitQuery, positive)
		prom.waitFor(t, "no member is alerted as unreachable", `ALERTS{alertname="HubOperatorMemberClusterUnreachable"}`, waitQuery, empty)
	})

	t.Run("an apply the member's ResourceQuota refuses", func(t *testing.T) {
		g := NewWithT(t)
		ctx := t.Context()
		ns := suite.NewNamespace(t, hub, "refused")
		m1 := env.Member("m1")
		g.Expect(m1.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		suite.RefuseDeployments(t, m1, ns)
		g.Expect(hub.Create(ctx, suite.NewMyResource(ns, "refused", 1, "m1"))).To(Succeed())

		prom.waitFor(t, "the refusal is counted", `hub_operator_member_apply_errors_total`+sel(`,cluster="m1",reason="ApplyFailed"`), waitQuery, positive)
		prom.waitFor(t, "it counts as not Ready", `hub_operator_myresources`+sel(`,ready="false"`), waitQuery, value(1))
		prom.waitFor(t, "the reconcile errors are counted", `controller_runtime_reconcile_errors_total`+sel(`,controller="myresource"`), waitQuery, positive)
		prom.waitFor(t, "HubOperatorMyResourceNotReady fires", `ALERTS{alertname="HubOperatorMyResourceNotReady",alertstate="firing"}`,
			waitQuery, labelValues("ready", "false"))
		prom.waitFor(t, "HubOperatorReconcileErrors fires", `ALERTS{alertname="HubOperatorReconcileErrors",alertstate="firing"}`,
			waitQuery, labelValues("controller", "myresource"))
	})

	// A Deployment of someone else's where the canary would put its own: the
	// first revision fails there (Conflict) and the rollout halts.
	t.Run("a rollout halted at its canary", func(t *testing.T) {
		g := NewWithT(t)
		ctx := t.Context()
		ns := suite.NewNamespace(t, hub, "halted")
		m1 := env.Member("m1")
		g.Expect(m1.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		g.Expect(m1.Client.Create(ctx, suite.ForeignDeployment(ns, "halted"))).To(Succeed())
		halted := suite.NewMyResource(ns, "halted", 1, "m1", "m2")
		halted.Spec.Rollout = &hubv1.RolloutSpec{Stages: []hubv1.RolloutStage{{Name: "canary", Selection: hubv1.Selection{ClusterNames: []string{"m1"}}}}}
		g.Expect(hub.Create(ctx, halted)).To(Succeed())

		prom.waitFor(t, "it counts as Halted", `hub_operator_rollouts`+sel(`,phase="Halted"`), waitQuery, value(1))
		prom.waitFor(t, "the failed cluster is counted", `hub_operator_rollout_cluster_updates_total`+sel(`,result="failed"`), waitQuery, positive)
		prom.waitFor(t, "HubOperatorRolloutHalted fires", `ALERTS{alertname="HubOperatorRolloutHalted",alertstate="firing"}`,
			waitQuery, labelValues("phase", "Halted"))
	})

	t.Run("a member's API server stopped and started again", func(t *testing.T) {
		g := NewWithT(t)
		m2 := env.Member("m2")
		g.Expect(m2.StopAPIServer()).To(Succeed())
		// A failed wait leaves m2 stopped: start it, so that the later
		// subtests still see two members (an error says it already runs).
		t.Cleanup(func() { _ = m2.StartAPIServer(suite.CleanupContext(t)) })
		prom.waitFor(t, "m2 is not ready", `hub_operator_member_cluster_ready`+sel(`,cluster="m2"`), waitQuery, value(0))
		prom.waitFor(t, "m2 counts as unreachable", `hub_operator_member_clusters`+sel(`,state="unreachable"`), waitQuery, value(1))
		prom.waitFor(t, "m2's failed probes are counted", `hub_operator_member_probe_failures_total`+sel(`,cluster="m2"`), waitQuery, positive)
		prom.waitFor(t, "HubOperatorMemberClusterUnreachable fires for m2 alone", `ALERTS{alertname="HubOperatorMemberClusterUnreachable",alertstate="firing"}`,
			waitQuery, labelValues("cluster", "m2"))

		g.Expect(m2.StartAPIServer(t.Context())).To(Succeed())
		prom.waitFor(t, "m2 is ready again", `hub_operator_member_cluster_ready`+sel(`,cluster="m2"`), waitReady, value(1))
		prom.waitFor(t, "the alert is resolved", `ALERTS{alertname="HubOperatorMemberClusterUnreachable"}`, waitQuery, empty)
	})

	// A new generation applies again, so that the apply rates and latencies
	// of the last minute are not zero when the dashboards are asked.
	t.Run("a changed MyResource", func(t *testing.T) {
		g := NewWithT(t)
		cur := suite.Get(t.Context(), g, hub, mr)
		cur.Spec.Deployment.Replicas = ptr.To[int32](2)
		g.Expect(hub.Update(t.Context(), cur)).To(Succeed())
		suite.EventuallyReady(t, hub, mr, waitReady)
	})

	t.Run("every dashboard query returns data", func(t *testing.T) {
		queries, vars := suite.Dashboards(t)
		values := dashboardValues(t, prom, vars)
		returned := 0
		for _, q := range queries {
			t.Run(q.Panel, func(t *testing.T) {
				expr := substitute(t, q.Expr, values)
				got := prom.waitFor(t, q.File, expr, waitQuery, func(v model.Vector) error {
					for _, s := range v {
						if !math.IsNaN(float64(s.Value)) && !math.IsInf(float64(s.Value), 0) {
							return nil
						}
					}
					return fmt.Errorf("no series with a finite value: %v", v)
				})
				returned++
				t.Logf("%d series, e.g. %s", len(got), got[0])
			})
		}
		t.Logf("%d of %d dashboard queries returned data", returned, len(queries))
	})

	t.Run("every alert of the chart fired", func(t *testing.T) {
		var want []string
		for _, a := range mon.rules.alerts() {
			want = append(want, a.Alert)
		}
		window := time.Since(began).Round(time.Second) + time.Minute
		prom.waitFor(t, "the alerts that fired", fmt.Sprintf(`count by (alertname) (count_over_time(ALERTS{alertstate="firing"}[%ds]))`, int(window.Seconds())),
			waitQuery, func(v model.Vector) error {
				var got []string
				for _, s := range v {
					got = append(got, string(s.Metric["alertname"]))
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					return fmt.Errorf("fired %v, want %v", got, want)
				}
				return nil
			})
	})
}

// dashboardValues asks Prometheus for the values of the dashboards' query
// variables (label_values(metric, label)), which must find the operator's
// job, and returns what each variable and Grafana's own interval variables
// stand for in a query.
func dashboardValues(t *testing.T, prom *server, vars []suite.DashboardVariable) map[string]string {
	t.Helper()
	values := map[string]string{
		"__rate_interval": "1m",
		"__interval":      "1s",
		"__range":         "5m",
	}
	for _, v := range vars {
		switch v.Type {
		case "datasource":
			continue
		case "query":
		default:
			t.Fatalf("%s: variable %s of type %s: say here what it stands for", v.File, v.Name, v.Type)
		}
		metric, label, ok := v.LabelValues()
		if !ok {
			t.Fatalf("%s: variable %s: query %q is not label_values(...)", v.File, v.Name, v.Query)
		}
		if metric == "" {
			metric = fmt.Sprintf(`{%s!=""}`, label)
		}
		vec := prom.waitFor(t, fmt.Sprintf("%s: variable %s", v.File, v.Name), fmt.Sprintf("group by (%s) (%s)", label, metric), waitQuery,
			func(v model.Vector) error {
				if len(v) == 0 {
					return fmt.Errorf("no values")
				}
				return nil
			})
		var alts []string
		for _, s := range vec {
			// A regular expression inside a PromQL string, as Grafana writes it.
			alts = append(alts, strings.ReplaceAll(regexp.QuoteMeta(string(s.Metric[model.LabelName(label)])), `\`, `\\`))
		}
		values[v.Name] = "(" + strings.Join(alts, "|") + ")"
	}
	t.Logf("dashboard variables: %v", values)
	return values
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// substitute replaces Grafana variables in expr by values; an unknown one
// fails the test.
func substitute(t *testing.T, expr string, values map[string]string) string {
	t.Helper()
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := values[name]
		if !ok {
			t.Fatalf("query %q uses variable $%s, which is not one of %v", expr, name, slices.Sorted(maps.Keys(values)))
		}
		return v
	})
}

// waitFor polls expr until check accepts its result, within timeout (or
// fails the test), and returns the accepted result.
func (s *server) waitFor(t *testing.T, what, expr string, timeout time.Duration, check func(model.Vector) error) model.Vector {
	t.Helper()
	var got model.Vector
	start := time.Now()
	NewWithT(t).Eventually(func() error {
		v, err := s.query(t.Context(), expr)
		if err != nil {
			return err
		}
		if err := check(v); err != nil {
			return err
		}
		got = v
		return nil
	}).WithTimeout(timeout).WithPolling(500*time.Millisecond).Should(Succeed(), "%s: %s", what, expr)
	t.Logf("%s after %s: %s", what, time.Since(start).Round(100*time.Millisecond), expr)
	return got
}

// targetError is the last scrape error of the targets, for a failed wait.
func (s *server) targetError(ctx context.Context) string {
	r, err := s.API.Targets(ctx)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, tg := range r.Active {
		out = append(out, fmt.Sprintf("%s %s %q", tg.ScrapeURL, tg.Health, tg.LastError))
	}
	return strings.Join(out, "; ")
}

// value accepts one series of value want.
func value(want float64) func(model.Vector) error {
	return func(v model.Vector) error {
		if len(v) != 1 || float64(v[0].Value) != want {
			return fmt.Errorf("want one series of value %v, got %v", want, v)
		}
		return nil
	}
}

// positive accepts one series of a value above zero.
func positive(v model.Vector) error {
	if len(v) != 1 || v[0].Value <= 0 {
		return fmt.Errorf("want one series of a value above zero, got %v", v)
	}
	return nil
}

// empty accepts no series.
func empty(v model.Vector) error {
	if len(v) > 0 {
		return fmt.Errorf("want no series, got %v", v)
	}
	return nil
}

// labelValues accepts exactly one series, with label set to val.
func labelValues(label, val string) func(model.Vector) error {
	return func(v model.Vector) error {
		if len(v) != 1 || string(v[0].Metric[model.LabelName(label)]) != val {
			return fmt.Errorf("want one series with %s=%q, got %v", label, val, v)
		}
		return nil
	}
}
