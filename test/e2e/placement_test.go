package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestApplyReachesExactlyTheSelectedMembers(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	got := eventuallyReady(t, mr)

	g.Expect(got.Status.SelectedClusters).To(Equal(int32(2)))
	g.Expect(got.Status.ReadyClusters).To(Equal(int32(2)))
	g.Expect(got.Status.ReadySummary).To(Equal("2/2"))
	g.Expect(got.Finalizers).To(ContainElement(hubv1.FinalizerName))
	g.Expect(got.Status.Clusters).To(HaveLen(2))
	g.Expect(got.Status.Clusters[0].Name).To(Equal("m1"), "sorted by name")
	for _, c := range got.Status.Clusters {
		g.Expect(c.Replicas).To(Equal(int32(2)))
		g.Expect(c.ReadyReplicas).To(Equal(int32(2)), "replica counts come from the member")
		g.Expect(c.AvailableReplicas).To(Equal(int32(2)))
		g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
	}

	for _, cluster := range []string{"m1", "m2"} {
		d := memberDeployment(t, cluster, mr)
		g.Expect(d).NotTo(BeNil(), "Deployment in %s", cluster)
		s := memberService(t, cluster, mr)
		g.Expect(s).NotTo(BeNil(), "Service in %s", cluster)
		for _, obj := range []client.Object{d, s} {
			g.Expect(obj.GetNamespace()).To(Equal(ns), "member namespace is the hub namespace")
			g.Expect(obj.GetLabels()).To(And(
				HaveKeyWithValue(hubv1.ManagedByLabel, "hub-operator"),
				HaveKeyWithValue(hubv1.OwnerNamespaceLabel, ns),
				HaveKeyWithValue(hubv1.OwnerNameLabel, "web")))
			g.Expect(obj.GetAnnotations()).To(HaveKeyWithValue(hubv1.OwnerUIDAnnotation, string(got.UID)))
			var managers []string
			for _, mf := range obj.GetManagedFields() {
				if mf.Operation == metav1.ManagedFieldsOperationApply {
					managers = append(managers, mf.Manager)
				}
			}
			g.Expect(managers).To(ConsistOf("hub-operator"), "server-side applied by hub-operator")
		}
		g.Expect(d.Spec.Selector.MatchLabels).To(HaveKeyWithValue(hubv1.SelectorLabel, "web"))
		g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(hubv1.SelectorLabel, "web"))
	}
	g.Expect(memberDeployment(t, "m3", mr)).To(BeNil(), "m3 is not selected")
	g.Expect(memberService(t, "m3", mr)).To(BeNil())
}

func TestPlacementFollowsSelectorsAndLabels(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)

	all := newMyResource(ns, "all")
	all.Spec.Placement = hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{}}}
	prod := newMyResource(ns, "prod")
	prod.Spec.Placement = hubv1.Placement{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}}
	none := newMyResource(ns, "none")
	none.Spec.Placement = hubv1.Placement{}
	for _, mr := range []*hubv1.MyResource{all, prod, none} {
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	}
	g.Expect(clusterNames(eventuallyReady(t, all))).To(Equal([]string{"m1", "m2", "m3"}), "{} selects every registered cluster")
	g.Expect(clusterNames(eventuallyReady(t, prod))).To(Equal([]string{"m1", "m3"}))
	g.Expect(eventuallyReady(t, none).Status.SelectedClusters).To(BeZero(), "an absent selector selects nothing")
	for _, c := range []string{"m1", "m2", "m3"} {
		g.Expect(memberDeployment(t, c, none)).To(BeNil())
	}

	t.Run("relabelling a registry Secret moves the workload", func(t *testing.T) {
		g := NewWithT(t)
		l := env.Labels("m2")
		l["env"] = "prod"
		relabel(t.Context(), t, "m2", l)
		t.Cleanup(func() { relabel(cleanupContext(t), t, "m2", env.Labels("m2")) })
		g.Eventually(func() []string { return clusterNames(get(t, prod)) }).WithTimeout(30 * time.Second).
			Should(Equal([]string{"m1", "m2", "m3"}))
		eventuallyReady(t, prod)
		g.Expect(memberDeployment(t, "m2", prod)).NotTo(BeNil())
	})

	t.Run("a cluster dropped from the placement is cleaned up, the others stay", func(t *testing.T) {
		g := NewWithT(t)
		cur := get(t, prod)
		cur.Spec.Placement = hubv1.Placement{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}}
		g.Expect(env.Hub.Client.Update(t.Context(), cur)).To(Succeed())
		g.Eventually(func() bool {
			return memberDeployment(t, "m3", prod) == nil && memberService(t, "m3", prod) == nil
		}).WithTimeout(30*time.Second).Should(BeTrue(), "objects in m3 are deleted")
		got := eventuallyReady(t, prod)
		g.Expect(clusterNames(got)).To(Equal([]string{"m1"}))
		g.Expect(memberDeployment(t, "m1", prod)).NotTo(BeNil(), "m1 keeps its objects")
	})
}

func TestOverridesLandOnlyWhereTheySelect(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2", "m3")
	mr.Spec.Overrides = []hubv1.Override{
		{Selection: hubv1.Selection{ClusterNames: []string{"m1"}}, Replicas: ptr.To[int32](3)},
		{Selection: hubv1.Selection{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "us"}}}, Image: "nginx:1.28"},
		{Selection: hubv1.Selection{ClusterNames: []string{"m3"}}, Env: []corev1.EnvVar{{Name: "TIER", Value: "gold"}}},
	}
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	eventuallyReady(t, mr)

	m1, m2, m3 := memberDeployment(t, "m1", mr), memberDeployment(t, "m2", mr), memberDeployment(t, "m3", mr)
	g.Expect(*m1.Spec.Replicas).To(Equal(int32(3)))
	g.Expect(*m2.Spec.Replicas).To(Equal(int32(2)))
	g.Expect(m1.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
	g.Expect(m2.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.28"))
	g.Expect(m3.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.28"))
	g.Expect(m3.Spec.Template.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: "TIER", Value: "gold"}))
	g.Expect(m1.Spec.Template.Spec.Containers[0].Env).To(BeEmpty())
	g.Expect(m2.Spec.Template.Spec.Containers[0].Env).To(BeEmpty())
}

func clusterNames(mr *hubv1.MyResource) []string {
	var out []string
	for _, c := range mr.Status.Clusters {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

// relabel replaces a registry Secret's cluster labels.
func relabel(ctx context.Context, t *testing.T, cluster string, labels map[string]string) {
	t.Helper()
	var s corev1.Secret
	g := NewWithT(t)
	g.Expect(env.Hub.Client.Get(ctx, client.ObjectKey{Namespace: registryNS, Name: cluster}, &s)).To(Succeed())
	s.Labels = map[string]string{hubv1.MemberClusterLabel: "true"}
	for k, v := range labels {
		s.Labels[k] = v
	}
	g.Expect(env.Hub.Client.Update(ctx, &s)).To(Succeed())
}
