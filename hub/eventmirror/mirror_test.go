package eventmirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	hubv1 "example.com/hub-operator/api/v1"
)

// mirrorFixture is a hub holding MyResource team-a/web and a member cache
// holding its Pods web-1 and web-2 and a Pod of someone else.
type mirrorFixture struct {
	hub    client.Client
	member client.Reader
	writes *int
	now    time.Time
}

func newMirrorFixture(t *testing.T) *mirrorFixture {
	t.Helper()
	scheme := runtime.NewScheme()
	NewWithT(t).Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	NewWithT(t).Expect(hubv1.AddToScheme(scheme)).To(Succeed())
	writes := 0
	count := func(do func() error) error {
		writes++
		return do()
	}
	hub := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(&hubv1.MyResource{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", UID: "mr-uid"}}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				return count(func() error { return c.Create(ctx, obj, opts...) })
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
				return count(func() error { return c.Patch(ctx, obj, p, opts...) })
			},
		}).Build()
	owned := map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a", hubv1.OwnerNameLabel: "web"}
	pod := func(name string, l map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, Labels: l}}
	}
	member := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
		WithObjects(pod("web-1", owned), pod("web-2", owned), pod("theirs-1", map[string]string{"app": "theirs"})).Build()
	return &mirrorFixture{hub: hub, member: member, writes: &writes, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *mirrorFixture) mirror(burst int) *Mirror {
	return &Mirror{Hub: f.hub, Burst: burst, Interval: 10 * time.Second, now: func() time.Time { return f.now }}
}

// podWarning is a member Warning event about Pod pod, seen count times.
func podWarning(uid, pod, reason, msg string, count int32) *corev1.Event {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "team-a", Name: pod + "." + uid, UID: types.UID(uid)},
		Type:           corev1.EventTypeWarning,
		Reason:         reason,
		Message:        msg,
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "team-a", Name: pod},
		Count:          count,
		FirstTimestamp: metav1.NewTime(t0),
		LastTimestamp:  metav1.NewTime(t0.Add(time.Duration(count) * time.Second)),
	}
}

func (f *mirrorFixture) hubEvents(t *testing.T, g Gomega) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(f.hub.List(t.Context(), &list, client.InNamespace("team-a"))).To(Succeed())
	return list.Items
}

func TestMirrorRecordsOneHubEventPerMemberEvent(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	m := f.mirror(0)

	g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off pulling image", 1))).To(Succeed())
	events := f.hubEvents(t, g)
	g.Expect(events).To(HaveLen(1))
	e := events[0]
	g.Expect(e.Type).To(Equal(corev1.EventTypeWarning))
	g.Expect(e.Reason).To(Equal("BackOff"))
	g.Expect(e.Note).To(Equal("[cluster m1] Pod/web-1: Back-off pulling image"))
	g.Expect(e.Regarding).To(Equal(corev1.ObjectReference{
		APIVersion: "example.com/v1", Kind: "MyResource", Namespace: "team-a", Name: "web", UID: "mr-uid",
	}))
	g.Expect(e.Action).To(Equal(mirrorAction))
	g.Expect(e.ReportingController).To(Equal("hub-operator"))
	g.Expect(e.Series).To(BeNil(), "a first occurrence has no series")
	g.Expect(*f.writes).To(Equal(1))

	// The same member event counted again, ten times: one hub event whose
	// count follows the member's.
	for n := int32(2); n <= 11; n++ {
		g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off pulling image", n))).To(Succeed())
	}
	events = f.hubEvents(t, g)
	g.Expect(events).To(HaveLen(1))
	g.Expect(events[0].Series).NotTo(BeNil())
	g.Expect(events[0].Series.Count).To(Equal(int32(11)))
	g.Expect(events[0].Series.LastObservedTime.Time).To(BeTemporally("==", time.Date(2026, 1, 2, 3, 0, 11, 0, time.UTC)))
	g.Expect(*f.writes).To(Equal(11), "one patch per count change")

	// An update that does not change the count (a resync) writes nothing.
	g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off pulling image", 11))).To(Succeed())
	g.Expect(*f.writes).To(Equal(11))
}

func TestMirrorKeepsDistinctMemberEventsApart(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	m := f.mirror(0)
	for _, ev := range []struct {
		cluster string
		ev      *corev1.Event
	}{
		{"m1", podWarning("u1", "web-1", "BackOff", "Back-off pulling image", 1)},
		{"m1", podWarning("u2", "web-2", "BackOff", "Back-off pulling image", 1)}, // same reason, another Pod
		{"m2", podWarning("u1", "web-1", "BackOff", "Back-off pulling image", 1)}, // same UID, another cluster
		{"m1", podWarning("u3", "theirs-1", "BackOff", "not ours", 1)},
	} {
		g.Expect(m.mirror(t.Context(), ev.cluster, f.member, ev.ev)).To(Succeed())
	}
	var notes []string
	for _, e := range f.hubEvents(t, g) {
		notes = append(notes, e.Note)
	}
	g.Expect(notes).To(ConsistOf(
		"[cluster m1] Pod/web-1: Back-off pulling image",
		"[cluster m1] Pod/web-2: Back-off pulling image",
		"[cluster m2] Pod/web-1: Back-off pulling image",
	))
}

func TestMirrorAfterRestartUpdatesTheSameHubEvent(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	g.Expect(f.mirror(0).mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off", 3))).To(Succeed())
	// A new process (or leader) knows nothing of what was mirrored.
	g.Expect(f.mirror(0).mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off", 4))).To(Succeed())
	events := f.hubEvents(t, g)
	g.Expect(events).To(HaveLen(1))
	g.Expect(events[0].Series.Count).To(Equal(int32(4)))
}

func TestMirrorRecreatesAnExpiredHubEvent(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	m := f.mirror(0)
	g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off", 1))).To(Succeed())
	// The hub's event TTL may run out before the member's.
	g.Expect(f.hub.DeleteAllOf(t.Context(), &eventsv1.Event{}, client.InNamespace("team-a"))).To(Succeed())
	g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off", 2))).To(Succeed())
	events := f.hubEvents(t, g)
	g.Expect(events).To(HaveLen(1))
	g.Expect(events[0].Series.Count).To(Equal(int32(2)))
}

func TestMirrorNewMessageIsANewHubEvent(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	m := f.mirror(0)
	g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "Failed", "first message", 1))).To(Succeed())
	// events.k8s.io notes are immutable: a changed message cannot be patched in.
	g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "Failed", "second message", 2))).To(Succeed())
	g.Expect(f.hubEvents(t, g)).To(HaveLen(2))
}

func TestMirrorWithoutItsMyResourceRecordsNothing(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	g.Expect(f.hub.Delete(t.Context(), &hubv1.MyResource{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"}})).To(Succeed())
	g.Expect(f.mirror(0).mirror(t.Context(), "m1", f.member, podWarning("u1", "web-1", "BackOff", "Back-off", 1))).To(Succeed())
	g.Expect(f.hubEvents(t, g)).To(BeEmpty())
}

func TestMirrorRateLimitPerMyResource(t *testing.T) {
	g := NewWithT(t)
	f := newMirrorFixture(t)
	m := f.mirror(3)
	send := func(uid string, count int32) {
		g.Expect(m.mirror(t.Context(), "m1", f.member, podWarning(uid, "web-1", "BackOff", "Back-off "+uid, count))).To(Succeed())
	}
	for i := range 5 {
		send(fmt.Sprintf("u%d", i), 1)
	}
	g.Expect(f.hubEvents(t, g)).To(HaveLen(3), "a burst of 3, the rest dropped")

	// A dropped event stays dropped: the same count again is not retried.
	send("u3", 1)
	g.Expect(f.hubEvents(t, g)).To(HaveLen(3))

	f.now = f.now.Add(10 * time.Second)
	send("u3", 2) // counted again: new, and a token has come back
	send("u4", 2) // no token left
	g.Expect(f.hubEvents(t, g)).To(HaveLen(4))

	// Another MyResource has a bucket of its own.
	g.Expect(m.allow(types.NamespacedName{Namespace: "team-a", Name: "api"})).To(BeTrue())
}
