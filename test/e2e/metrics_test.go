package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// TestMetrics runs an operator of its own with the metrics endpoint on, over
// a registry of its own (m1 and m2), and scrapes it as Prometheus would. It
// creates no MyResource: this operator and the suite's reconcile every
// MyResource of the hub, and two registries would fight over their status.
func TestMetrics(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	for _, m := range []string{"m1", "m2"} {
		g.Expect(env.Register(t.Context(), env.Member(m), ns, nil)).To(Succeed())
	}
	// RBAC first, so that it has reached the hub's authorizer by the first
	// scrape: the operator caches a denial for a while.
	allowed := serviceAccountToken(t, ns, "metrics-reader", true)
	denied := serviceAccountToken(t, ns, "no-metrics", false)

	addr := "127.0.0.1:" + freePort(t)
	op, err := env.StartOperator(controlplane.OperatorOptions{
		Name:              "metrics-operator",
		RegistryNamespace: ns,
		Args:              []string{"--metrics-bind-address=" + addr, "--member-probe-interval=2s"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		if err := op.Stop(); err != nil {
			t.Errorf("stopping the metrics operator: %v", err)
		}
		if t.Failed() {
			t.Logf("metrics operator log: %s", op.LogPath)
		}
	})
	url := "https://" + addr + "/metrics"

	var families map[string]*dto.MetricFamily
	g.Eventually(func(g Gomega) {
		code, f, err := scrape(t.Context(), url, allowed)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(value(f, "hub_operator_member_cluster_ready", "cluster", "m1")).To(Equal(1.0))
		g.Expect(value(f, "hub_operator_member_cluster_ready", "cluster", "m2")).To(Equal(1.0))
		g.Expect(f).To(HaveKey("hub_operator_myresources"), "the hub cache answered")
		families = f
	}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

	t.Run("an allowed token gets the operator's series", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(value(families, "hub_operator_member_clusters", "state", "ready")).To(Equal(2.0))
		for _, s := range []string{"unreachable", "invalid", "connecting"} {
			g.Expect(value(families, "hub_operator_member_clusters", "state", s)).To(BeZero(), s)
		}
		for _, v := range []string{"true", "false", "unknown"} {
			g.Expect(families["hub_operator_myresources"].GetMetric()).To(ContainElement(
				WithTransform(func(m *dto.Metric) map[string]string { return labels(m) }, Equal(map[string]string{"ready": v}))), v)
		}
		for _, name := range []string{
			"hub_operator_member_probe_duration_seconds", "hub_operator_member_probe_failures_total",
			"hub_operator_member_apply_total", "hub_operator_member_apply_duration_seconds", "hub_operator_member_apply_errors_total",
		} {
			g.Expect(clustersOf(families, name)).To(ConsistOf("m1", "m2"),
				"%s has series for exactly the registered clusters, zero before any apply or probe", name)
		}
		g.Expect(families["hub_operator_member_probe_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount()).To(BeNumerically(">", 0))
		g.Expect(families).To(HaveKey("controller_runtime_reconcile_total"), "controller-runtime's metrics stay on")
		for name, f := range families {
			if !strings.HasPrefix(name, "hub_operator_") {
				continue
			}
			for _, m := range f.GetMetric() {
				g.Expect(labels(m)).NotTo(HaveKey("name"), "%s: no MyResource name on any series", name)
			}
		}
	})

	t.Run("a request without a token is refused", func(t *testing.T) {
		g := NewWithT(t)
		code, _, err := scrape(t.Context(), url, "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusUnauthorized))
	})

	t.Run("a token without permission on /metrics is refused", func(t *testing.T) {
		g := NewWithT(t)
		code, _, err := scrape(t.Context(), url, denied)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusForbidden))
		// The hub's TokenReview fails on a malformed token, which
		// controller-runtime's filter answers with a 500: refused all the same.
		code, _, err = scrape(t.Context(), url, "not-a-token")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(BeNumerically(">=", http.StatusBadRequest))
	})

	t.Run("the dashboard and the alerts query only exported metrics", func(t *testing.T) {
		g := NewWithT(t)
		exprs := dashboardExprs(t)
		exprs = append(exprs, alertExprs(t)...)
		g.Expect(exprs).NotTo(BeEmpty())
		for _, expr := range exprs {
			names := metricNames(expr)
			g.Expect(names).NotTo(BeEmpty(), "query %q names a metric", expr)
			for _, name := range names {
				g.Expect(exported(families, name)).To(BeTrue(), "query %q: metric %s is not in the scrape", expr, name)
			}
		}
	})

	t.Run("readiness follows a member's API server", func(t *testing.T) {
		g := NewWithT(t)
		m1 := env.Member("m1")
		g.Expect(m1.StopAPIServer()).To(Succeed())
		t.Cleanup(func() { restoreMember(t, m1) })
		g.Eventually(func(g Gomega) {
			f := scrapeOK(t.Context(), g, url, allowed)
			g.Expect(value(f, "hub_operator_member_cluster_ready", "cluster", "m1")).To(BeZero())
			g.Expect(value(f, "hub_operator_member_cluster_ready", "cluster", "m2")).To(Equal(1.0))
			g.Expect(value(f, "hub_operator_member_clusters", "state", "unreachable")).To(Equal(1.0))
			g.Expect(value(f, "hub_operator_member_clusters", "state", "ready")).To(Equal(1.0))
			g.Expect(value(f, "hub_operator_member_probe_failures_total", "cluster", "m1")).To(BeNumerically(">", 0))
		}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())

		g.Expect(m1.StartAPIServer(t.Context())).To(Succeed())
		g.Eventually(func(g Gomega) {
			f := scrapeOK(t.Context(), g, url, allowed)
			g.Expect(value(f, "hub_operator_member_cluster_ready", "cluster", "m1")).To(Equal(1.0))
			g.Expect(value(f, "hub_operator_member_clusters", "state", "unreachable")).To(BeZero())
			g.Expect(value(f, "hub_operator_member_clusters", "state", "ready")).To(Equal(2.0))
		}).WithTimeout(90 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	})

	t.Run("a cluster that leaves the registry leaves no series behind", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(env.Hub.Client.Delete(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "m2"}})).To(Succeed())
		g.Eventually(func(g Gomega) {
			f := scrapeOK(t.Context(), g, url, allowed)
			for name, fam := range f {
				for _, m := range fam.GetMetric() {
					if strings.HasPrefix(name, "hub_operator_") {
						g.Expect(labels(m)).NotTo(HaveKeyWithValue("cluster", "m2"), name)
					}
				}
			}
			g.Expect(clustersOf(f, "hub_operator_member_cluster_ready")).To(ConsistOf("m1"))
		}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	})
}

func TestMetricsPromQLNames(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{name: "a bare metric", expr: `workqueue_depth`, want: []string{"workqueue_depth"}},
		{name: "matchers, ranges, grouping and functions are not metrics",
			expr: `histogram_quantile(0.99, sum by (le, cluster) (rate(hub_operator_member_apply_duration_seconds_bucket{job="$job"}[$__rate_interval])))`,
			want: []string{"hub_operator_member_apply_duration_seconds_bucket"}},
		{name: "binary operators with keywords and numbers",
			expr: `sum(rate(a_total[5m])) / on() group_left sum(rate(b_total[5m] offset 1h)) > 1e3 and bool c`,
			want: []string{"a_total", "b_total", "c"}},
		{name: "helm actions inside matchers are dropped",
			expr: `max by (cluster) (hub_operator_member_cluster_ready{job="{{ include "hub-operator.fullname" . }}-metrics"}) == 0`,
			want: []string{"hub_operator_member_cluster_ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(metricNames(tt.expr)).To(Equal(tt.want))
		})
	}
}

// serviceAccountToken creates a ServiceAccount on the hub, allowed to GET
// /metrics when allow is true, and returns a token of it.
func serviceAccountToken(t *testing.T, ns, name string, allow bool) string {
	t.Helper()
	var role *rbacv1.ClusterRole
	if allow {
		role = &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
		}
	}
	return suite.MetricsToken(t, env.Hub, ns, name, role)
}

func freePort(t *testing.T) string {
	t.Helper()
	p, err := controlplane.FreePort()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return strconv.Itoa(p)
}

// scrape GETs url with token as a bearer token ("" sends none) and parses
// the text exposition format of a 200 answer.
func scrape(ctx context.Context, url, token string) (int, map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The operator serves a self-signed certificate, as it does in a cluster
	// without cert-manager; what is tested here is authn/authz, not TLS.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("parsing the scrape of %s: %w", url, err)
	}
	return resp.StatusCode, families, nil
}

func scrapeOK(ctx context.Context, g Gomega, url, token string) map[string]*dto.MetricFamily {
	code, f, err := scrape(ctx, url, token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusOK))
	return f
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// value is the value of the gauge or counter series of family name whose
// label key is val; -1 when there is none, so that a missing series fails
// every expectation.
func value(families map[string]*dto.MetricFamily, name, key, val string) float64 {
	for _, m := range families[name].GetMetric() {
		if labels(m)[key] != val {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// clustersOf lists the distinct cluster labels of a family's series.
func clustersOf(families map[string]*dto.MetricFamily, name string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range families[name].GetMetric() {
		if c := labels(m)["cluster"]; !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// exported says whether a metric name used in a query is in the scrape; a
// histogram's or summary's series carry suffixes its family's name does not.
func exported(families map[string]*dto.MetricFamily, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		f, ok := families[strings.TrimSuffix(name, suffix)]
		if ok && strings.HasSuffix(name, suffix) && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
			return true
		}
	}
	return false
}

// dashboardExprs returns the query of every panel of the chart's dashboards
// and the metrics their template variables read.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	g := NewWithT(t)
	queries, vars := suite.Dashboards(t)
	var exprs []string
	for _, q := range queries {
		exprs = append(exprs, q.Expr)
	}
	for _, v := range vars {
		if v.Type != "query" {
			continue
		}
		metric, _, ok := v.LabelValues()
		g.Expect(ok && metric != "").To(BeTrue(), "variable %s reads label_values of a metric: %q", v.Name, v.Query)
		exprs = append(exprs, metric)
	}
	return exprs
}

// alertExprs returns the expressions of the chart's PrometheusRule template.
func alertExprs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "charts", "hub-operator", "templates", "prometheusrule.yaml"))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var exprs []string
	for _, line := range strings.Split(string(raw), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			exprs = append(exprs, strings.TrimSpace(e))
		}
	}
	return exprs
}

var (
	helmAction = regexp.MustCompile(`\{\{.*?\}\}`)
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchers   = regexp.MustCompile(`\{[^}]*\}`)
	ranges     = regexp.MustCompile(`\[[^\]]*\]`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	// promqlWords are identifiers of PromQL that are not metric names.
	promqlWords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

// metricNames returns the metric names a PromQL expression reads, in order.
// It is a lexer, not a parser: it drops what cannot hold a metric name
// (Helm actions, strings, label matchers, ranges, grouping labels) and keeps
// the identifiers that are not functions, keywords, numbers or variables.
func metricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{helmAction, stringLit, matchers, ranges, grouping} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, loc := range identifier.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(expr[loc[0]-1:loc[0]], "0123456789.$") {
			continue // an exponent, a duration's unit or a Grafana variable
		}
		if strings.HasPrefix(strings.TrimSpace(expr[loc[1]:]), "(") || promqlWords[strings.ToLower(name)] {
			continue
		}
		names = append(names, name)
	}
	return names
}
