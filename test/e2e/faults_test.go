package e2e

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

// hostileKubeconfigs are registry kubeconfigs the contract forbids, each
// carrying a recognisable secret that must never leak.
func hostileKubeconfigs(t *testing.T) map[string][]byte {
	t.Helper()
	const token = "sup3r-s3cret-t0ken-value-0123456789"
	base := func(mutate func(user map[string]any, cluster map[string]any)) []byte {
		user := map[string]any{"token": token}
		cluster := map[string]any{"server": "https://127.0.0.1:1", "certificate-authority-data": base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"))}
		mutate(user, cluster)
		return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: %s}]
users: [{name: u, user: %s}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, jsonish(cluster), jsonish(user)))
	}
	return map[string][]byte{
		"bad-garbage": []byte("\x00\x01\x02 not a kubeconfig " + token),
		"bad-exec": base(func(u, _ map[string]any) {
			u["exec"] = map[string]any{"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/touch", "args": []string{"/tmp/pwned"}}
		}),
		"bad-authprov": base(func(u, _ map[string]any) {
			u["auth-provider"] = map[string]any{"name": "oidc", "config": map[string]any{"id-token": token}}
		}),
		"bad-tokenfile": base(func(u, _ map[string]any) { delete(u, "token"); u["tokenFile"] = "/etc/shadow" }),
		"bad-certfile": base(func(u, _ map[string]any) {
			u["client-certificate"] = "/etc/ssl/private/key.pem"
			u["client-key"] = "/etc/ssl/private/key.pem"
		}),
		"bad-cafile": base(func(_, c map[string]any) {
			delete(c, "certificate-authority-data")
			c["certificate-authority"] = "/etc/passwd"
		}),
	}
}

func jsonish(m map[string]any) string {
	var parts []string
	for k, v := range m {
		switch v := v.(type) {
		case string:
			parts = append(parts, fmt.Sprintf("%q: %q", k, v))
		case []string:
			parts = append(parts, fmt.Sprintf("%q: [%s]", k, `"`+strings.Join(v, `","`)+`"`))
		case map[string]any:
			parts = append(parts, fmt.Sprintf("%q: %s", k, jsonish(v)))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestInvalidKubeconfigIsReportedAndNeverLeaks(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	hostile := hostileKubeconfigs(t)
	var names []string
	for name, kc := range hostile {
		g.Expect(controlplane.RegisterKubeconfig(t.Context(), env.Hub, registryNS, name, kc, nil)).To(Succeed())
		names = append(names, name)
		t.Cleanup(func() {
			_ = env.Hub.Client.Delete(cleanupContext(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: registryNS, Name: name}})
		})
	}
	mr := newMyResource(ns, "web", append([]string{"m1"}, names...)...)
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())

	g.Eventually(func(g Gomega) {
		got := get(t, mr)
		for _, name := range names {
			c := suite.ClusterCondition(got, name, hubv1.ClusterConditionApplied)
			g.Expect(c).NotTo(BeNil(), name)
			g.Expect(c.Reason).To(Equal(hubv1.ReasonInvalidKubeconfig), name)
		}
		ok := suite.ClusterCondition(got, "m1", hubv1.ClusterConditionAvailable)
		g.Expect(ok).NotTo(BeNil())
		g.Expect(ok.Status).To(Equal(metav1.ConditionTrue), "valid clusters keep being served")
	}).WithTimeout(60 * time.Second).Should(Succeed())

	g.Eventually(func(g Gomega) {
		for _, name := range names {
			var warned bool
			for _, e := range hubEvents(t, registryNS, name) {
				warned = warned || (e.Type == corev1.EventTypeWarning && e.Regarding.Kind == "Secret")
			}
			g.Expect(warned).To(BeTrue(), "a Warning event on Secret %s", name)
		}
	}).WithTimeout(30 * time.Second).Should(Succeed())

	// Nothing of any registry kubeconfig may show up anywhere a person or a
	// log pipeline can read: logs, events, statuses.
	logs, err := operator.Logs()
	g.Expect(err).NotTo(HaveOccurred())
	var events corev1.EventList
	g.Expect(env.Hub.Client.List(t.Context(), &events)).To(Succeed())
	var mrs hubv1.MyResourceList
	g.Expect(env.Hub.Client.List(t.Context(), &mrs)).To(Succeed())
	seen := logs + fmt.Sprint(events.Items) + fmt.Sprint(mrs.Items) + fmt.Sprint(allHubEvents(t))
	for _, s := range secretStrings(hostile) {
		g.Expect(seen).NotTo(ContainSubstring(s), "secret material leaked")
	}
	g.Expect(fileExists("/tmp/pwned")).To(BeFalse(), "the exec plugin never ran")
}

// secretStrings are the credential strings of every registry kubeconfig,
// valid ones included.
func secretStrings(extra map[string][]byte) []string {
	out := []string{"sup3r-s3cret-t0ken-value-0123456789"}
	kcs := [][]byte{}
	for _, m := range env.Members {
		kcs = append(kcs, m.OperatorKubeconfig)
	}
	for _, kc := range extra {
		kcs = append(kcs, kc)
	}
	for _, data := range kcs {
		cfg, err := clientcmd.Load(data)
		if err != nil {
			continue
		}
		for _, u := range cfg.AuthInfos {
			for _, b := range [][]byte{u.ClientCertificateData, u.ClientKeyData} {
				if len(b) > 0 {
					out = append(out, pemBody(b)...)
				}
			}
			if u.Token != "" {
				out = append(out, u.Token)
			}
		}
	}
	return out
}

// pemBody returns base64 lines of a PEM block long enough to be unique.
func pemBody(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

func allHubEvents(t *testing.T) string {
	var list corev1.EventList
	NewWithT(t).Expect(env.Hub.Client.List(t.Context(), &list)).To(Succeed())
	var b strings.Builder
	for _, e := range list.Items {
		b.WriteString(e.Message)
	}
	return b.String()
}

func TestBlackHoledMemberDoesNotDelayTheOthers(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	m3 := env.Member("m3")
	m3.Proxy.Cut()
	t.Cleanup(m3.Proxy.Restore)

	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	began := time.Now()
	g.Eventually(func(g Gomega) {
		got := get(t, mr)
		for _, c := range []string{"m1", "m2"} {
			a := suite.ClusterCondition(got, c, hubv1.ClusterConditionAvailable)
			g.Expect(a).NotTo(BeNil())
			g.Expect(a.Status).To(Equal(metav1.ConditionTrue), c)
		}
		u := suite.ClusterCondition(got, "m3", hubv1.ClusterConditionApplied)
		g.Expect(u).NotTo(BeNil())
		g.Expect(u.Reason).To(Equal(hubv1.ReasonClusterUnreachable))
		g.Expect(got.Status.ReadyClusters).To(Equal(int32(2)))
	}).WithTimeout(60 * time.Second).Should(Succeed())
	t.Logf("healthy members Ready %s after create while m3 is black-holed", time.Since(began).Round(100*time.Millisecond))

	m3.Proxy.Restore()
	eventuallyReady(t, mr)
}

func TestNoWritesAtRest(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	a := newMyResource(ns, "a", "m1", "m2", "m3")
	b := newMyResource(ns, "b")
	b.Spec.Placement.ClusterSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
	for _, mr := range []*hubv1.MyResource{a, b} {
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	}
	eventuallyReady(t, a)
	eventuallyReady(t, b)
	// Ready is written in the same status patch as the last per-cluster
	// change, and the events of that change are recorded once the patch
	// succeeded (the events broadcaster writes them a moment later): rest
	// begins when the write counts stop moving, and from there on nothing
	// should change.
	var before map[string]int
	g.Eventually(func() bool {
		prev := before
		before = writeCounts(t)
		return prev != nil && maps.Equal(prev, before)
	}).WithTimeout(15*time.Second).WithPolling(time.Second).Should(BeTrue(), "the writes of converging end")
	window := 30 * time.Second
	deadline := time.Now().Add(window)
	g.Consistently(func() map[string]int {
		now := writeCounts(t)
		diff := map[string]int{}
		for k, v := range now {
			if v != before[k] {
				diff[k] = v - before[k]
			}
		}
		return diff
	}).WithTimeout(time.Until(deadline)).WithPolling(2*time.Second).Should(BeEmpty(),
		"the operator writes nothing to any API server at rest (by cluster/verb/resource)")
	_ = client.ObjectKeyFromObject(a)
}

// writeCounts counts the operator identity's writes on every API server, by
// cluster, verb and resource, from the API servers' audit logs. Leases are
// counted apart (leader election), and this suite runs without it.
func writeCounts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, c := range append([]*controlplane.Cluster{env.Hub}, env.Members...) {
		events, err := c.AuditEvents()
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		for _, e := range events {
			if e.IsWrite() && e.Resource() != "leases" {
				out[c.Name+" "+e.Verb+" "+e.Resource()]++
			}
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
