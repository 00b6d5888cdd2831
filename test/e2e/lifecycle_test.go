package e2e

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

func TestSpecChangesAndDriftConverge(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	eventuallyReady(t, mr)

	t.Run("a spec change reaches every member and observedGeneration follows", func(t *testing.T) {
		g := NewWithT(t)
		cur := get(t, mr)
		cur.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:1.29"
		g.Expect(env.Hub.Client.Update(t.Context(), cur)).To(Succeed())
		got := eventuallyReady(t, mr)
		g.Expect(got.Generation).To(Equal(cur.Generation))
		for _, c := range got.Status.Clusters {
			g.Expect(c.ObservedGeneration).To(Equal(got.Generation), "cluster %s", c.Name)
		}
		for _, cl := range []string{"m1", "m2"} {
			g.Expect(memberDeployment(t, cl, mr).Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.29"))
		}
	})

	t.Run("an image edited in a member is reverted", func(t *testing.T) {
		g := NewWithT(t)
		d := memberDeployment(t, "m2", mr)
		d.Spec.Template.Spec.Containers[0].Image = "evil:latest"
		g.Expect(env.Member("m2").Client.Update(t.Context(), d)).To(Succeed())
		g.Eventually(func() string {
			return memberDeployment(t, "m2", mr).Spec.Template.Spec.Containers[0].Image
		}).WithTimeout(15 * time.Second).Should(Equal("nginx:1.29"))
	})

	t.Run("a Deployment deleted in a member is recreated", func(t *testing.T) {
		g := NewWithT(t)
		d := memberDeployment(t, "m1", mr)
		g.Expect(env.Member("m1").Client.Delete(t.Context(), d)).To(Succeed())
		g.Eventually(func() bool {
			now := memberDeployment(t, "m1", mr)
			return now != nil && now.UID != d.UID
		}).WithTimeout(15 * time.Second).Should(BeTrue())
		eventuallyReady(t, mr)
	})
}

func TestUnmanagedObjectIsNeverTakenOver(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	m2 := env.Member("m2")
	g.Expect(m2.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	theirs := suite.ForeignDeployment(ns, "web")
	g.Expect(m2.Client.Create(t.Context(), theirs, client.FieldOwner("payments-deployer"))).To(Succeed())
	before := memberDeployment(t, "m2", theirs)

	mr := newMyResource(ns, "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	g.Eventually(func(g Gomega) {
		got := get(t, mr)
		c := suite.ClusterCondition(got, "m2", hubv1.ClusterConditionApplied)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(hubv1.ReasonConflict))
		g.Expect(c.Message).To(ContainSubstring("payments-deployer"), "names the existing owner's field manager")
		ok := suite.ClusterCondition(got, "m1", hubv1.ClusterConditionAvailable)
		g.Expect(ok).NotTo(BeNil())
		g.Expect(ok.Status).To(Equal(metav1.ConditionTrue), "the other cluster is fine")
	}).WithTimeout(60 * time.Second).Should(Succeed())
	after := memberDeployment(t, "m2", theirs)
	g.Expect(after.Spec).To(Equal(before.Spec), "the unmanaged Deployment is untouched")
	g.Expect(after.Labels).To(Equal(before.Labels))
	g.Expect(after.Annotations).NotTo(HaveKey(hubv1.OwnerUIDAnnotation))
	audit, err := m2.AuditEvents()
	g.Expect(err).NotTo(HaveOccurred())
	// A write the member refused changed nothing: the operator applies an
	// object its cache says is missing without force, and one created a
	// moment before the cache saw it refuses that apply as a Conflict.
	for _, e := range audit {
		if e.IsWrite() && !e.Refused() && e.Resource() == "deployments" && e.ObjectRef.Namespace == ns && e.ObjectRef.Name == "web" {
			t.Errorf("the operator wrote to the unmanaged object: %s %s", e.Verb, e.RequestURI)
		}
	}
}

func TestSuspendHoldsSpecChanges(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1", "m2")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	eventuallyReady(t, mr)

	cur := get(t, mr)
	cur.Spec.Suspend = true
	cur.Spec.Deployment.Template.Spec.Containers[0].Image = "nginx:suspended"
	g.Expect(env.Hub.Client.Update(t.Context(), cur)).To(Succeed())
	g.Eventually(func() string {
		return readyReason(get(t, mr))
	}).WithTimeout(30 * time.Second).Should(Equal(hubv1.ReasonSuspended))
	g.Consistently(func() []string {
		return []string{
			memberDeployment(t, "m1", mr).Spec.Template.Spec.Containers[0].Image,
			memberDeployment(t, "m2", mr).Spec.Template.Spec.Containers[0].Image,
		}
	}).WithTimeout(5*time.Second).Should(Equal([]string{"nginx:1.27", "nginx:1.27"}), "no member gets the change while suspended")

	cur = get(t, mr)
	cur.Spec.Suspend = false
	g.Expect(env.Hub.Client.Update(t.Context(), cur)).To(Succeed())
	eventuallyReady(t, mr)
	g.Expect(memberDeployment(t, "m1", mr).Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:suspended"))
}

func TestDeletion(t *testing.T) {
	t.Run("Delete removes the objects from every member, then the finalizer", func(t *testing.T) {
		g := NewWithT(t)
		ns := newNamespace(t)
		mr := newMyResource(ns, "web", "m1", "m2", "m3")
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
		eventuallyReady(t, mr)
		deleteAndWait(t, mr)
		for _, c := range []string{"m1", "m2", "m3"} {
			g.Expect(memberDeployment(t, c, mr)).To(BeNil(), "Deployment gone from %s", c)
			g.Expect(memberService(t, c, mr)).To(BeNil(), "Service gone from %s", c)
		}
	})

	t.Run("Orphan leaves the objects", func(t *testing.T) {
		g := NewWithT(t)
		ns := newNamespace(t)
		mr := newMyResource(ns, "web", "m1")
		mr.Spec.DeletionPolicy = hubv1.DeletionPolicyOrphan
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
		eventuallyReady(t, mr)
		deleteAndWait(t, mr)
		g.Expect(memberDeployment(t, "m1", mr)).NotTo(BeNil())
		g.Expect(memberService(t, "m1", mr)).NotTo(BeNil())
	})

	t.Run("a stopped member holds the deletion with CleanupPending until its Secret is deleted", func(t *testing.T) {
		g := NewWithT(t)
		ns := newNamespace(t)
		mr := newMyResource(ns, "web", "m1", "m3")
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
		eventuallyReady(t, mr)

		m3 := env.Member("m3")
		g.Expect(m3.StopAPIServer()).To(Succeed())
		t.Cleanup(func() { restoreMember(t, m3) })
		g.Expect(env.Hub.Client.Delete(t.Context(), mr)).To(Succeed())
		g.Eventually(func(g Gomega) {
			got := get(t, mr)
			c := findCondition(got, hubv1.ConditionDegraded)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(hubv1.ReasonCleanupPending))
			g.Expect(c.Message).To(ContainSubstring("m3"))
		}).WithTimeout(60 * time.Second).Should(Succeed())
		g.Expect(memberDeployment(t, "m1", mr)).To(BeNil(), "the reachable member is cleaned up meanwhile")

		var secret corev1.Secret
		g.Expect(env.Hub.Client.Get(t.Context(), client.ObjectKey{Namespace: registryNS, Name: "m3"}, &secret)).To(Succeed())
		g.Expect(env.Hub.Client.Delete(t.Context(), &secret)).To(Succeed())
		g.Eventually(func() bool {
			err := env.Hub.Client.Get(t.Context(), client.ObjectKeyFromObject(mr), &hubv1.MyResource{})
			return err != nil && client.IgnoreNotFound(err) == nil
		}).WithTimeout(30*time.Second).Should(BeTrue(), "deleting the registry Secret releases the deletion")
		// Events are recorded once the write they report on succeeded (here
		// the finalizer's removal), and written by the events broadcaster a
		// moment later: wait for it rather than read once.
		g.Eventually(func() []string { return hubEventReasons(t, ns, "web") }).WithTimeout(10*time.Second).
			Should(ContainElement(hubv1.ReasonOrphaned), "a Warning says what was left behind")
	})

	t.Run("force-orphan releases a stuck deletion at once", func(t *testing.T) {
		g := NewWithT(t)
		ns := newNamespace(t)
		mr := newMyResource(ns, "web", "m2")
		g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
		eventuallyReady(t, mr)
		m2 := env.Member("m2")
		m2.Proxy.Cut()
		t.Cleanup(m2.Proxy.Restore)
		g.Expect(env.Hub.Client.Delete(t.Context(), mr)).To(Succeed())
		g.Eventually(func() string {
			c := findCondition(get(t, mr), hubv1.ConditionDegraded)
			if c == nil {
				return ""
			}
			return c.Reason
		}).WithTimeout(60 * time.Second).Should(Equal(hubv1.ReasonCleanupPending))
		// A patch, not an update: the operator keeps writing the status of a
		// deletion it cannot finish, and a user's annotation must not race it.
		cur := get(t, mr)
		forced := cur.DeepCopy()
		forced.Annotations = map[string]string{hubv1.ForceOrphanAnnotation: "true"}
		g.Expect(env.Hub.Client.Patch(t.Context(), forced, client.MergeFrom(cur))).To(Succeed())
		g.Eventually(func() bool {
			err := env.Hub.Client.Get(t.Context(), client.ObjectKeyFromObject(mr), &hubv1.MyResource{})
			return err != nil && client.IgnoreNotFound(err) == nil
		}).WithTimeout(15 * time.Second).Should(BeTrue())
		m2.Proxy.Restore()
		g.Expect(memberDeployment(t, "m2", mr)).NotTo(BeNil(), "force-orphan leaves member objects in place")
	})
}

// restoreMember brings a member back: API server running, registry Secret present.
func restoreMember(t *testing.T, m *controlplane.Cluster) {
	t.Helper()
	if err := m.StartAPIServer(cleanupContext(t)); err != nil && !isAlreadyRunning(err) {
		t.Errorf("restarting %s: %v", m.Name, err)
	}
	if err := env.Register(cleanupContext(t), m, registryNS, nil); err != nil {
		t.Errorf("re-registering %s: %v", m.Name, err)
	}
}

func isAlreadyRunning(err error) bool {
	return err != nil && strings.Contains(err.Error(), "already running")
}

func findCondition(mr *hubv1.MyResource, typ string) *metav1.Condition {
	for i := range mr.Status.Conditions {
		if mr.Status.Conditions[i].Type == typ {
			return &mr.Status.Conditions[i]
		}
	}
	return nil
}

func readyReason(mr *hubv1.MyResource) string {
	if c := findCondition(mr, hubv1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func hubEventReasons(t *testing.T, ns, name string) []string {
	var out []string
	for _, e := range hubEvents(t, ns, name) {
		out = append(out, e.Reason)
	}
	return out
}
