package outage

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// deleteWithUnreachableMember creates a MyResource on m1 and m3, black-holes
// m3 and deletes the MyResource; it returns once the deletion is held with
// Degraded=CleanupPending naming m3, and m1 is cleaned up meanwhile. (A
// stopped API server is the other kind of outage; it costs a graceful
// shutdown and a restart, and the stopped-member test covers it.)
func deleteWithUnreachableMember(t *testing.T, ns string) *hubv1.MyResource {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	mr := newMyResource(ns, "web", "m1", "m3")
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	eventuallyReady(t, mr, 120*time.Second)

	m3 := env.Member("m3")
	m3.Proxy.Cut()
	t.Cleanup(m3.Proxy.Restore)
	g.Expect(env.Hub.Client.Delete(ctx, mr)).To(Succeed())
	deleted := time.Now()
	g.Eventually(func(g Gomega) {
		got := get(ctx, g, mr)
		c := meta.FindStatusCondition(got.Status.Conditions, hubv1.ConditionDegraded)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal(hubv1.ReasonCleanupPending))
		g.Expect(c.Message).To(ContainSubstring("m3"))
		g.Expect(got.Finalizers).To(ContainElement(hubv1.FinalizerName))
	}).WithTimeout(unreachableBound + clusterTimeout).WithPolling(100 * time.Millisecond).Should(Succeed())
	t.Logf("deletion held with Degraded=CleanupPending naming m3 %s after the delete", since(deleted))
	g.Eventually(func(g Gomega) {
		d, s := memberObjects(ctx, g, "m1", ns)
		g.Expect(d).To(BeEmpty())
		g.Expect(s).To(BeEmpty())
	}).WithTimeout(30*time.Second).Should(Succeed(), "the reachable member is cleaned up meanwhile")
	return mr
}

func TestDeletionWhileMemberIsUnreachable(t *testing.T) {
	t.Run("the held deletion completes when the member answers again", func(t *testing.T) {
		g := NewWithT(t)
		ctx := t.Context()
		startOperator(t, "deletion-member-back")
		ns := newNamespace(t)
		mr := deleteWithUnreachableMember(t, ns)

		g.Consistently(func(g Gomega) {
			g.Expect(get(ctx, g, mr).Finalizers).To(ContainElement(hubv1.FinalizerName))
		}).WithTimeout(3*probeInterval).Should(Succeed(), "an unreachable member never releases the finalizer")
		env.Member("m3").Proxy.Restore()
		back := time.Now()
		g.Eventually(func() bool { return gone(ctx, mr) }).WithTimeout(60*time.Second).Should(BeTrue(), "the finalizer goes once m3 is clean")
		t.Logf("MyResource gone %s after m3 answered again", since(back))
		expectExactlyOneEach(t, ns, nil)
	})

	t.Run("deleting the member's registry Secret releases the deletion and says what was orphaned", func(t *testing.T) {
		g := NewWithT(t)
		ctx := t.Context()
		startOperator(t, "deletion-secret-removed")
		ns := newNamespace(t)
		mr := deleteWithUnreachableMember(t, ns)

		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: registryNS, Name: "m3"}}
		g.Expect(env.Hub.Client.Delete(ctx, secret)).To(Succeed())
		t.Cleanup(func() { reRegister(t, "m3") })
		removed := time.Now()
		g.Eventually(func() bool { return gone(ctx, mr) }).WithTimeout(30*time.Second).Should(BeTrue(), "deleting the registry Secret releases the deletion")
		t.Logf("MyResource gone %s after m3's registry Secret was deleted", since(removed))

		want := fmt.Sprintf("Deployment and Service %s/%s", ns, mr.Name)
		g.Eventually(func(g Gomega) {
			notes := orphanedWarnings(ctx, g, ns, mr.Name)
			g.Expect(notes).To(ContainElement(And(ContainSubstring("cluster m3"), ContainSubstring(want))),
				"a Warning event with reason Orphaned names the objects and the cluster")
			t.Logf("Orphaned warning: %q", notes)
		}).WithTimeout(30 * time.Second).Should(Succeed())

		env.Member("m3").Proxy.Restore()
		expectExactlyOneEach(t, ns, map[string][]string{"m3": {"web"}}) // orphaned, as the warning says
		deleteMemberNamespace(t, "m3", ns)
	})
}

// orphanedWarnings returns the notes of Warning events with reason Orphaned
// about the MyResource.
func orphanedWarnings(ctx context.Context, g Gomega, ns, name string) []string {
	var list eventsv1.EventList
	g.Expect(env.Hub.Client.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Type == corev1.EventTypeWarning && e.Reason == hubv1.ReasonOrphaned {
			out = append(out, e.Note)
		}
	}
	return out
}

// reRegister puts a member's registry Secret back as the suite registered it.
func reRegister(t *testing.T, cluster string) {
	t.Helper()
	if err := env.Register(cleanupContext(t), env.Member(cluster), registryNS, nil); err != nil {
		t.Errorf("registering %s again: %v", cluster, err)
	}
}
