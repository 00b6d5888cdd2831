package suite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"example.com/hub-operator/test/controlplane"
)

// MetricsToken creates the ServiceAccount ns/name on hub and returns a token
// of it, as a Prometheus would hold one. When role is not nil, the
// ClusterRole is created and bound to the ServiceAccount (both deleted when
// the test ends); without one the ServiceAccount may do nothing.
func MetricsToken(t *testing.T, hub *controlplane.Cluster, ns, name string, role *rbacv1.ClusterRole) string {
	t.Helper()
	g := gomega.NewWithT(t)
	g.Expect(hub.Client.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(gomega.Succeed())
	if role != nil {
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
		}
		for _, obj := range []client.Object{role, binding} {
			g.Expect(hub.Client.Create(t.Context(), obj)).To(gomega.Succeed())
			t.Cleanup(func() { _ = hub.Client.Delete(CleanupContext(t), obj) })
		}
	}
	cs, err := kubernetes.NewForConfig(hub.Config)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(gomega.HaveOccurred())
	return tr.Status.Token
}

// DashboardQuery is the query of one target of a panel of a chart dashboard.
type DashboardQuery struct {
	// File is the dashboard's file name under charts/hub-operator/dashboards.
	File  string
	Panel string
	Expr  string
}

// DashboardVariable is a template variable of a chart dashboard.
type DashboardVariable struct {
	File, Name, Type string
	// Query is a query variable's query, e.g. label_values(metric, label).
	Query string
	// AllValue is what the variable stands for when "All" is selected.
	AllValue string
}

var labelValues = regexp.MustCompile(`^label_values\(\s*(?:([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)

// LabelValues parses a label_values(metric, label) query; metric is empty
// for label_values(label), ok false for any other query.
func (v DashboardVariable) LabelValues() (metric, label string, ok bool) {
	sub := labelValues.FindStringSubmatch(v.Query)
	if sub == nil {
		return "", "", false
	}
	return sub[1], sub[2], true
}

// grafanaPanel is the part of a Grafana panel that holds queries; rows nest panels.
type grafanaPanel struct {
	Title   string                  `json:"title"`
	Type    string                  `json:"type"`
	Targets []struct{ Expr string } `json:"targets"`
	Panels  []grafanaPanel          `json:"panels"`
}

// Dashboards parses every Grafana dashboard of the chart
// (charts/hub-operator/dashboards/*.json) and returns the query of every
// panel target and every template variable. A dashboard without a title or
// uid, or a panel without a query, fails the test.
func Dashboards(t *testing.T) ([]DashboardQuery, []DashboardVariable) {
	t.Helper()
	g := gomega.NewWithT(t)
	files, err := filepath.Glob(filepath.Join(controlplane.ChartDir(), "dashboards", "*.json"))
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(files).NotTo(gomega.BeEmpty(), "the chart has dashboards")
	var (
		queries []DashboardQuery
		vars    []DashboardVariable
	)
	for _, path := range files {
		file := filepath.Base(path)
		raw, err := os.ReadFile(path)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		var dash struct {
			Title      string         `json:"title"`
			UID        string         `json:"uid"`
			Panels     []grafanaPanel `json:"panels"`
			Templating struct {
				List []struct {
					Name     string `json:"name"`
					Type     string `json:"type"`
					Query    any    `json:"query"`
					AllValue string `json:"allValue"`
				} `json:"list"`
			} `json:"templating"`
		}
		g.Expect(json.Unmarshal(raw, &dash)).To(gomega.Succeed(), file)
		g.Expect(dash.Title).NotTo(gomega.BeEmpty(), file)
		g.Expect(dash.UID).NotTo(gomega.BeEmpty(), file)
		var walk func([]grafanaPanel)
		walk = func(panels []grafanaPanel) {
			for _, p := range panels {
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				g.Expect(p.Targets).NotTo(gomega.BeEmpty(), "%s: panel %q has a query", file, p.Title)
				for _, tg := range p.Targets {
					g.Expect(tg.Expr).NotTo(gomega.BeEmpty(), "%s: panel %q", file, p.Title)
					queries = append(queries, DashboardQuery{File: file, Panel: p.Title, Expr: tg.Expr})
				}
			}
		}
		walk(dash.Panels)
		for _, v := range dash.Templating.List {
			q, _ := v.Query.(string)
			if m, ok := v.Query.(map[string]any); ok {
				q, _ = m["query"].(string)
			}
			vars = append(vars, DashboardVariable{File: file, Name: v.Name, Type: v.Type, Query: q, AllValue: v.AllValue})
		}
	}
	return queries, vars
}
