package member

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	hubv1 "example.com/hub-operator/api/v1"
)

var ownerLabels = map[string]string{
	hubv1.ManagedByLabel: hubv1.ManagedByValue, hubv1.OwnerNamespaceLabel: "team-a", hubv1.OwnerNameLabel: "web",
}

func warning(kind, apiVersion, name string, mutate ...func(*corev1.Event)) *corev1.Event {
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "team-a", Name: name + ".17a", UID: "ev-uid"},
		Type:           corev1.EventTypeWarning,
		Reason:         "BackOff",
		Message:        "Back-off pulling image",
		InvolvedObject: corev1.ObjectReference{Kind: kind, APIVersion: apiVersion, Namespace: "team-a", Name: name},
		Count:          1,
	}
	for _, m := range mutate {
		m(ev)
	}
	return ev
}

func TestIsMirrorCandidate(t *testing.T) {
	tests := []struct {
		name string
		ev   *corev1.Event
		want bool
	}{
		{name: "a Warning about a Pod", ev: warning("Pod", "v1", "web-abc-123"), want: true},
		{name: "a Warning about a ReplicaSet", ev: warning("ReplicaSet", "apps/v1", "web-abc"), want: true},
		{name: "a Warning about a Deployment", ev: warning("Deployment", "apps/v1", "web"), want: true},
		{name: "an involved object without apiVersion is judged by kind", ev: warning("Pod", "", "web-abc-123"), want: true},
		{name: "Normal events are not mirrored", ev: warning("Pod", "v1", "web-abc-123", func(e *corev1.Event) { e.Type = corev1.EventTypeNormal })},
		{name: "a Service is not a workload object", ev: warning("Service", "v1", "web")},
		{name: "a Node is not owned", ev: warning("Node", "v1", "node-1")},
		{name: "a Deployment of another group is not ours", ev: warning("Deployment", "example.org/v1", "web")},
		{name: "a cluster-scoped reference is not ours", ev: warning("Pod", "v1", "web", func(e *corev1.Event) { e.InvolvedObject.Namespace = "" })},
		{name: "nil", ev: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			NewWithT(t).Expect(IsMirrorCandidate(tt.ev)).To(Equal(tt.want))
		})
	}
}

func TestOwnedEvent(t *testing.T) {
	meta := func(name string, uid types.UID, l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: uid, Labels: l}
	}
	objects := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(
		&appsv1.Deployment{ObjectMeta: meta("web", "dep-uid", ownerLabels)},
		&appsv1.ReplicaSet{ObjectMeta: meta("web-abc", "rs-uid", ownerLabels)},
		&corev1.Pod{ObjectMeta: meta("web-abc-123", "pod-uid", ownerLabels)},
		&corev1.Pod{ObjectMeta: meta("theirs-abc-123", "their-uid", map[string]string{"app": "theirs"})},
		&corev1.Pod{ObjectMeta: meta("half-abc-123", "half-uid", map[string]string{hubv1.ManagedByLabel: hubv1.ManagedByValue})},
	).Build()

	tests := []struct {
		name  string
		ev    *corev1.Event
		owned bool
	}{
		{name: "an owned Pod's event maps to its MyResource", ev: warning("Pod", "v1", "web-abc-123"), owned: true},
		{name: "an owned ReplicaSet's event maps to its MyResource", ev: warning("ReplicaSet", "apps/v1", "web-abc"), owned: true},
		{name: "the owned Deployment's event maps to its MyResource", ev: warning("Deployment", "apps/v1", "web"), owned: true},
		{name: "a matching involved UID is ours", ev: warning("Pod", "v1", "web-abc-123", func(e *corev1.Event) { e.InvolvedObject.UID = "pod-uid" }), owned: true},
		{name: "an event about an earlier object of the same name is not", ev: warning("Pod", "v1", "web-abc-123", func(e *corev1.Event) { e.InvolvedObject.UID = "old-uid" })},
		{name: "a Pod without our labels is not ours", ev: warning("Pod", "v1", "theirs-abc-123")},
		{name: "a managed-by label without owner labels names no owner", ev: warning("Pod", "v1", "half-abc-123")},
		{name: "an object missing from the cache is not ours", ev: warning("Pod", "v1", "gone-abc-123")},
		{name: "a Normal event is not mirrored", ev: warning("Pod", "v1", "web-abc-123", func(e *corev1.Event) { e.Type = corev1.EventTypeNormal })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			e, ok, err := OwnedEvent(t.Context(), objects, tt.ev)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ok).To(Equal(tt.owned))
			if !tt.owned {
				return
			}
			g.Expect(e.Owner).To(Equal(types.NamespacedName{Namespace: "team-a", Name: "web"}))
			g.Expect(e.UID).To(Equal(types.UID("ev-uid")))
			g.Expect(e.Kind).To(Equal(tt.ev.InvolvedObject.Kind))
			g.Expect(e.Name).To(Equal(tt.ev.InvolvedObject.Name))
			g.Expect(e.Reason).To(Equal("BackOff"))
			g.Expect(e.Message).To(Equal("Back-off pulling image"))
		})
	}
}

func TestEventCountAndTimes(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name        string
		ev          *corev1.Event
		count       int32
		first, last time.Time
	}{
		{
			name: "legacy events count with count and timestamps",
			ev: &corev1.Event{Count: 7, FirstTimestamp: metav1.NewTime(t0), LastTimestamp: metav1.NewTime(t0.Add(time.Minute)),
				ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0.Add(time.Hour))}},
			count: 7, first: t0, last: t0.Add(time.Minute),
		},
		{
			name: "events.k8s.io events count with their series",
			ev: &corev1.Event{EventTime: metav1.NewMicroTime(t0),
				Series: &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(t0.Add(2 * time.Minute))}},
			count: 4, first: t0, last: t0.Add(2 * time.Minute),
		},
		{
			name:  "an event without count or times happened once, when it was created",
			ev:    &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0)}},
			count: 1, first: t0, last: t0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(EventCount(tt.ev)).To(Equal(tt.count))
			first, last := eventTimes(tt.ev)
			g.Expect(first).To(BeTemporally("==", tt.first))
			g.Expect(last).To(BeTemporally("==", tt.last))
		})
	}
}

func TestEventNoteAndReason(t *testing.T) {
	g := NewWithT(t)
	e := Event{Kind: "Pod", Name: "web-abc-123", Reason: "BackOff", Message: "Back-off pulling image"}
	g.Expect(e.Note("m1")).To(Equal("[cluster m1] Pod/web-abc-123: Back-off pulling image"))
	g.Expect(e.HubReason()).To(Equal("BackOff"))

	// A member may write more than events.k8s.io/v1 accepts on the hub.
	e.Message = strings.Repeat("é", NoteLimit)
	e.Reason = strings.Repeat("R", 2*ReasonLimit)
	note := e.Note("m1")
	g.Expect(len(note)).To(BeNumerically("<=", NoteLimit))
	g.Expect(utf8.ValidString(note)).To(BeTrue(), "a cut never splits a character")
	g.Expect(note).To(HavePrefix("[cluster m1] Pod/web-abc-123: éé"))
	g.Expect(note).To(HaveSuffix("..."))
	g.Expect(e.HubReason()).To(HaveLen(ReasonLimit))

	e.Reason = ""
	g.Expect(e.HubReason()).To(Equal("MemberWarning"), "events.k8s.io/v1 requires a reason")
}
