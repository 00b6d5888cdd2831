package abuse

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"example.com/hub-operator/test/controlplane"
	"example.com/hub-operator/test/suite"
)

const (
	intruderManager = "intruder"
	intruderLabel   = "intruder.example.com/touched"
	intruderNote    = "intruder.example.com/note"
	fightDuration   = 60 * time.Second
)

func TestForeignWriterIsRevertedOncePerChangeAndItsOwnFieldsAreKept(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := t.Context()
	ns := newNamespace(t, "conflict")
	mr := newMyResource(ns, "web", "m1")
	g.Expect(env.Hub.Client.Create(ctx, mr)).To(Succeed())
	eventuallyReady(t, mr, 120*time.Second)

	m1 := env.Member("m1")
	cfg, err := m1.UserConfig(intruderManager, "system:masters")
	g.Expect(err).NotTo(HaveOccurred())
	intruder, err := client.New(cfg, client.Options{Scheme: controlplane.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	isOwned := func(e controlplane.AuditEvent) bool {
		return e.IsWrite() && e.ObjectRef != nil && e.ObjectRef.Namespace == ns && e.ObjectRef.Name == mr.Name
	}
	mark := suite.AuditLen(g, m1)
	changes, reverted := 0, 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for end := time.Now().Add(fightDuration); time.Now().Before(end); <-tick.C {
		d := memberDeployment(ctx, g, "m1", mr)
		if changes > 0 && d.Spec.Template.Spec.Containers[0].Image == "nginx:1.27" && ptr.Deref(d.Spec.Replicas, 0) == 1 {
			reverted++ // the previous change was reverted within a second
		}
		before := d.DeepCopy()
		d.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("intruder/evil:%d", changes)
		d.Spec.Replicas = ptr.To[int32](3)
		d.Labels[intruderLabel] = "yes"
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[intruderNote] = fmt.Sprint(changes)
		g.Expect(intruder.Patch(ctx, d, client.MergeFrom(before), client.FieldOwner(intruderManager))).To(Succeed())
		changes++
	}
	writes := suite.AuditedSince(g, m1, mark, isOwned)
	t.Logf("intruder changes: %d in %s; operator writes to the Deployment and Service: %d; changes found reverted one second later: %d",
		changes, fightDuration, len(writes), reverted)

	g.Eventually(func(g Gomega) {
		d := memberDeployment(ctx, g, "m1", mr)
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("nginx:1.27"))
		g.Expect(d.Spec.Replicas).To(HaveValue(Equal(int32(1))))
		g.Expect(d.Labels).To(HaveKeyWithValue(intruderLabel, "yes"), "a label the operator does not manage is kept")
		g.Expect(d.Annotations).To(HaveKeyWithValue(intruderNote, fmt.Sprint(changes-1)), "an annotation the operator does not manage is kept")
	}).WithTimeout(60 * time.Second).Should(Succeed())
	eventuallyReady(t, mr, 120*time.Second)

	// How fast each change is reverted depends on the machine's load; that
	// they are reverted during the fight, and not more often than they
	// happen, does not.
	g.Expect(len(writes)).To(BeNumerically(">=", min(5, changes)), "the operator reverts foreign changes while they go on")
	g.Expect(reverted).To(BeNumerically(">", 0), "changes are reverted while they go on")
	g.Expect(len(writes)).To(BeNumerically("<=", changes+5), "at most about one revert per foreign change")

	// At rest again: no write for the object at all.
	settled := suite.AuditLen(g, m1)
	g.Consistently(func() int {
		return len(suite.AuditedSince(g, m1, settled, isOwned))
	}).WithTimeout(10*time.Second).WithPolling(time.Second).Should(BeZero(), "no writes once the other writer stopped")
}
