package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
)

// TestMemberEventsAreMirrored: a member Warning event about an owned object
// shows on the hub MyResource, and its count updates raise one hub event's
// count instead of adding events.
func TestMemberEventsAreMirrored(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	mr := newMyResource(ns, "web", "m1")
	g.Expect(env.Hub.Client.Create(t.Context(), mr)).To(Succeed())
	eventuallyReady(t, mr)
	t.Cleanup(func() { _ = env.Hub.Client.Delete(cleanupContext(t), mr) })
	m1 := env.Member("m1").Client

	t.Run("an event about the owned Deployment, counted ten more times, is one hub event", func(t *testing.T) {
		g := NewWithT(t)
		dep := memberDeployment(t, "m1", mr)
		g.Expect(dep).NotTo(BeNil())
		now := metav1.Now()
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: dep.Name + "."},
			InvolvedObject: corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: dep.Name, UID: dep.UID},
			Type:           corev1.EventTypeWarning,
			Reason:         "E2EFailedCreate",
			Message:        `pods "web-x" is forbidden: exceeded quota: compute`,
			Source:         corev1.EventSource{Component: "e2e"},
			Count:          1, FirstTimestamp: now, LastTimestamp: now,
		}
		g.Expect(m1.Create(t.Context(), ev)).To(Succeed())
		wantNote := fmt.Sprintf("[cluster m1] Deployment/%s: %s", dep.Name, ev.Message)
		g.Eventually(func(g Gomega) {
			got := mirroredEvents(t, mr, ev.Reason)
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Type).To(Equal(corev1.EventTypeWarning))
			g.Expect(got[0].Note).To(HavePrefix(fmt.Sprintf("[cluster m1] Deployment/%s:", dep.Name)))
			g.Expect(got[0].Note).To(Equal(wantNote))
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())

		for n := int32(2); n <= 11; n++ {
			g.Expect(m1.Get(t.Context(), client.ObjectKeyFromObject(ev), ev)).To(Succeed())
			ev.Count, ev.LastTimestamp = n, metav1.Now()
			g.Expect(m1.Update(t.Context(), ev)).To(Succeed())
			g.Eventually(func() int32 {
				return mirroredCount(mirroredEvents(t, mr, ev.Reason))
			}).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).Should(Equal(n), "hub count after member count %d", n)
		}
		got := mirroredEvents(t, mr, ev.Reason)
		g.Expect(got).To(HaveLen(1), "ten count updates are one hub event, not eleven")
		g.Expect(got[0].Note).To(Equal(wantNote))
		g.Expect(mirroredCount(got)).To(BeNumerically(">", 1))
	})

	t.Run("an event about an owned Pod is mirrored with the Pod's name", func(t *testing.T) {
		g := NewWithT(t)
		var pods corev1.PodList
		g.Eventually(func(g Gomega) {
			g.Expect(m1.List(t.Context(), &pods, client.InNamespace(ns), client.MatchingLabels{hubv1.OwnerNameLabel: mr.Name})).To(Succeed())
			g.Expect(pods.Items).NotTo(BeEmpty(), "the owned Pods carry the owner labels")
		}).WithTimeout(30 * time.Second).Should(Succeed())
		pod := pods.Items[0]
		now := metav1.Now()
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: pod.Name + "."},
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID},
			Type:           corev1.EventTypeWarning,
			Reason:         "E2EBackOff",
			Message:        "Back-off pulling image \"nginx:1.27\"",
			Source:         corev1.EventSource{Component: "kubelet"},
			Count:          1, FirstTimestamp: now, LastTimestamp: now,
		}
		g.Expect(m1.Create(t.Context(), ev)).To(Succeed())
		g.Eventually(func(g Gomega) {
			got := mirroredEvents(t, mr, ev.Reason)
			g.Expect(got).To(HaveLen(1))
			g.Expect(got[0].Note).To(Equal(fmt.Sprintf("[cluster m1] Pod/%s: %s", pod.Name, ev.Message)))
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(Succeed())
	})
}

// mirroredEvents lists the hub events on mr with the given reason that
// mirror a member event.
func mirroredEvents(t *testing.T, mr *hubv1.MyResource, reason string) []eventsv1.Event {
	t.Helper()
	var out []eventsv1.Event
	for _, e := range hubEvents(t, mr.Namespace, mr.Name) {
		if e.Reason == reason && strings.HasPrefix(e.Note, "[cluster ") && e.Regarding.Kind == "MyResource" {
			out = append(out, e)
		}
	}
	return out
}

// mirroredCount is the highest count among events: the events.k8s.io
// series count, or the legacy count, or 1.
func mirroredCount(events []eventsv1.Event) int32 {
	var n int32
	for _, e := range events {
		c := max(e.DeprecatedCount, 1)
		if e.Series != nil {
			c = max(c, e.Series.Count)
		}
		n = max(n, c)
	}
	return n
}
